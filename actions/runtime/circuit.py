"""Circuit breaker per organization and endpoint host (SPEC section 2).

Closed: calls flow and are counted over a window. When at least CIRCUIT_MIN_CALLS calls
in the window failed more than CIRCUIT_FAILURE_RATIO of the time, the circuit opens and
calls are held for a cool-down. Then it is half-open: one trial call at a time; a success
closes it, a failure opens it again.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, F, Q, Value, When

from actions.models import CircuitBreaker

State = CircuitBreaker.State


def _cooldown() -> timedelta:
    return timedelta(seconds=settings.CONDUIT_CIRCUIT_COOLDOWN_S)


def circuit_admit(*, organization_id: int, host: str, now: datetime, lease_s: float) -> tuple[str, datetime | None]:
    """("allow", None), ("trial", None) or ("hold", until)."""
    circuit = CircuitBreaker.objects.filter(organization_id=organization_id, host=host).first()
    if circuit is None or circuit.state == State.CLOSED:
        return "allow", None
    if circuit.state == State.OPEN and circuit.opened_at and now < circuit.opened_at + _cooldown():
        return "hold", circuit.opened_at + _cooldown()
    # Cool-down over: let exactly one trial call through (a conditional update claims it).
    claimed = (
        CircuitBreaker.objects.filter(pk=circuit.pk, state__in=[State.OPEN, State.HALF_OPEN])
        .exclude(trial_until__gt=now)
        .update(state=State.HALF_OPEN, trial_until=now + timedelta(seconds=lease_s))
    )
    if claimed:
        return "trial", None
    return "hold", now + timedelta(seconds=1)


def circuit_record(
    *, organization_id: int, host: str, calls: int, failures: int, trial_failed: bool | None, now: datetime
) -> None:
    """Count a batch of finished calls to a host; `trial_failed` is the trial call's result, if one ran."""
    circuits = CircuitBreaker.objects.filter(organization_id=organization_id, host=host)
    if trial_failed is not None:
        if trial_failed:
            circuits.update(state=State.OPEN, opened_at=now, trial_until=None)
        else:
            circuits.update(state=State.CLOSED, trial_until=None, calls=0, failures=0, window_started_at=now)
        return
    window_start = now - timedelta(seconds=settings.CONDUIT_CIRCUIT_WINDOW_S)
    # One statement: a window that ended restarts the counts, else the calls are added to them.
    expired = Q(window_started_at__lt=window_start)
    counted = circuits.filter(state=State.CLOSED).update(
        window_started_at=Case(When(expired, then=Value(now)), default=F("window_started_at")),
        calls=Case(When(expired, then=Value(calls)), default=F("calls") + calls),
        failures=Case(When(expired, then=Value(failures)), default=F("failures") + failures),
    )
    if not counted and not circuits.exists():
        CircuitBreaker.objects.get_or_create(
            organization_id=organization_id, host=host,
            defaults={"calls": calls, "failures": failures, "window_started_at": now},
        )  # fmt: skip
    if failures:
        circuit = circuits.filter(state=State.CLOSED).first()
        if (
            circuit
            and circuit.calls >= settings.CONDUIT_CIRCUIT_MIN_CALLS
            and circuit.failures > circuit.calls * settings.CONDUIT_CIRCUIT_FAILURE_RATIO
        ):
            circuits.filter(state=State.CLOSED).update(state=State.OPEN, opened_at=now)


def circuit_release_trial(*, organization_id: int, host: str) -> None:
    """A trial call that was never sent (rate limited): free the slot, stay half-open."""
    CircuitBreaker.objects.filter(organization_id=organization_id, host=host, state=State.HALF_OPEN).update(
        trial_until=None
    )
