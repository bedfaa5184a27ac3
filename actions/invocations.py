"""The runtime: every call of an action is an Invocation row moved through its states.

pending -> running -> succeeded | failed | rate_limited, and running -> pending for a
retry, a delay or a hold. The database is the truth; Celery only wakes workers
(`tasks.send_invocation`), and the sweeper re-wakes what a lost message left behind.
"""

import email.utils
import logging
import random
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from actions import ratelimit
from actions.calling import CallResult, call_action, render
from actions.circuit import circuit_admit, circuit_record
from actions.hooks import invocation_finished
from actions.models import Action, EndpointLimit, Invocation, InvocationAttempt
from actions.rendering import RenderedRequest, RenderError
from actions.signing import signature_headers

logger = logging.getLogger(__name__)
Status = Invocation.Status
RETRIED_STATUSES = {408, 429}
HOST_FAILURE_OUTCOMES = {"timedout", "error"}


# --- enqueue ------------------------------------------------------------------------


def _request_record(rendered: RenderedRequest) -> dict:
    return {
        "method": rendered.method,
        "url": rendered.url,
        "headers": [list(pair) for pair in rendered.headers],
        "body": rendered.body.decode() if rendered.body is not None else None,
    }


def invocation_enqueue(
    *, action: Action, values: dict[str, Any], origin: str = Invocation.Origin.API, origin_ref: str = ""
) -> Invocation:
    """Write the invocation in the caller's transaction; a worker is woken once it commits.

    Values that do not fit the action end the invocation at once as failed (outcome `error`).
    """
    now = timezone.now()
    invocation = Invocation(
        organization_id=action.organization_id, action=action, origin=origin, origin_ref=origin_ref,
        next_attempt_at=now, created_at=now,
    )  # fmt: skip
    invocation.idempotency_key = invocation.id
    try:
        invocation.request = _request_record(render(action, values))
    except RenderError as exc:
        invocation.status, invocation.outcome, invocation.error = Status.FAILED, "error", str(exc)
        invocation.finished_at = now
        invocation.save(force_insert=True)
        return invocation
    invocation.save(force_insert=True)
    transaction.on_commit(lambda: wake(invocation.pk, now))
    return invocation


def wake(invocation_id: Any, at: datetime) -> None:
    """Ask a worker to look at the row at `at`. Losing this message loses nothing: the sweeper re-wakes."""
    from actions.tasks import send_invocation

    delay = max((at - timezone.now()).total_seconds(), 0.0)
    if delay > settings.CONDUIT_COUNTDOWN_MAX_S:
        return  # long waits are never broker ETAs; the sweeper picks the row up when due
    try:
        send_invocation.apply_async(args=[str(invocation_id)], countdown=delay or None)
    except Exception:  # the broker is down: the row is pending, the sweeper sends it later
        logger.warning("Could not reach the broker for invocation %s; the sweeper will retry.", invocation_id)


# --- send ---------------------------------------------------------------------------


def _lease_seconds(action: Action) -> float:
    # A token fetch, the call and one refresh on 401, each up to the timeout, plus a margin.
    return 3 * action.timeout_ms / 1000 + 10


def _limits(invocation: Invocation, host: str) -> list[ratelimit.Limit]:
    action = invocation.action
    limits = []
    if action.rate_limit_calls and action.rate_limit_period_s:
        limits.append(
            ratelimit.Limit(f"action:{action.pk}", action.rate_limit_calls, action.rate_limit_period_s)
        )
    configured = EndpointLimit.objects.filter(organization_id=invocation.organization_id, host=host).first()
    calls, period = (
        (configured.calls, configured.period_s) if configured else settings.CONDUIT_DEFAULT_HOST_LIMIT
    )
    limits.append(ratelimit.Limit(f"host:{invocation.organization_id}:{host}", calls, period))
    return limits


def _retry_after(headers: dict[str, str], now: datetime) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - now).total_seconds(), 0.0)


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: base * 2^(attempt-1), +-25%, capped."""
    delay = min(settings.CONDUIT_RETRY_BASE_S * 2 ** (attempt - 1), settings.CONDUIT_RETRY_MAX_S)
    return delay * random.uniform(0.75, 1.25)  # noqa: S311  (jitter, not cryptography)


def _is_retried(result: CallResult) -> bool:
    if result.status_code is not None:
        return result.status_code in RETRIED_STATUSES or result.status_code >= 500
    return result.outcome in ("timedout", "error")  # never "refused": a blocked destination stays blocked


def _reschedule(invocation_id: Any, at: datetime, **fields: Any) -> None:
    Invocation.objects.filter(pk=invocation_id, status=Status.RUNNING).update(
        status=Status.PENDING, next_attempt_at=at, claimed_until=None, **fields
    )
    wake(invocation_id, at)


@transaction.atomic
def _finish(invocation_id: Any, status: str, outcome: str, now: datetime, **fields: Any) -> None:
    ended = Invocation.objects.filter(pk=invocation_id, status=Status.RUNNING).update(
        status=status, outcome=outcome, finished_at=now, claimed_until=None, **fields
    )
    if ended:
        invocation_finished.send(
            sender=Invocation, invocation_id=invocation_id, status=status, outcome=outcome
        )


def _claim(invocation_id: Any) -> Invocation | None:
    """The row, if this worker won it; None if it is not due, or claimed or finished by someone else."""
    now = timezone.now()
    invocation = (
        Invocation.objects.select_related("action", "action__organization")
        .filter(pk=invocation_id, status=Status.PENDING, next_attempt_at__lte=now)
        .first()
    )
    if invocation is None:
        return None
    lease = now + timedelta(seconds=_lease_seconds(invocation.action))
    won = Invocation.objects.filter(pk=invocation_id, status=Status.PENDING, next_attempt_at__lte=now).update(
        status=Status.RUNNING, claimed_until=lease
    )
    return invocation if won else None


def invocation_send(*, invocation_id: Any) -> None:
    """Claim the invocation, pass the circuit and the rate limits, call, record, decide what next."""
    invocation = _claim(invocation_id)
    if invocation is None:
        return
    action, now = invocation.action, timezone.now()
    request = invocation.request
    host = urlsplit(request["url"]).hostname or ""

    admission, hold_until = circuit_admit(
        organization_id=invocation.organization_id, host=host, now=now, lease_s=_lease_seconds(action)
    )
    if admission == "hold":
        held_since = invocation.held_since or now
        if (now - held_since).total_seconds() > settings.CONDUIT_CIRCUIT_MAX_HOLD_S:
            _finish(
                invocation.pk, Status.FAILED, "circuit_open", now, error=f"The circuit to {host} stayed open."
            )
        else:
            _reschedule(invocation.pk, hold_until, held_since=held_since)
        return

    retry_at = ratelimit.acquire(_limits(invocation, host), time.time())
    if retry_at is not None:
        if admission == "trial":
            circuit_record(
                organization_id=invocation.organization_id, host=host, failed=False, trial=False, now=now
            )
        if action.on_rate_limit == Action.OnRateLimit.REJECT:
            _finish(
                invocation.pk, Status.RATE_LIMITED, "rate_limited", now, error="The rate limit was reached."
            )
        else:
            _reschedule(invocation.pk, datetime.fromtimestamp(retry_at, tz=timezone.get_current_timezone()))
        return

    attempt = invocation.attempts + 1
    body = request["body"].encode() if request["body"] is not None else None
    rendered = RenderedRequest(
        request["method"], request["url"], [tuple(h) for h in request["headers"]], body
    )
    key = str(invocation.idempotency_key)
    headers = [("Idempotency-Key", key)]
    headers += signature_headers(
        [action.signing_secret, action.previous_signing_secret], key, int(time.time()), body
    )
    result = call_action(action, rendered, extra_headers=headers)
    finished = timezone.now()

    InvocationAttempt.objects.create(
        invocation_id=invocation.pk, number=attempt, outcome=result.outcome,
        response_status=result.status_code,
        response_headers=result.response_headers, response_body=result.response_body, error=result.error,
        latency_ms=result.latency_ms, started_at=now,
    )  # fmt: skip
    host_failed = result.outcome in HOST_FAILURE_OUTCOMES or (result.status_code or 0) >= 500
    circuit_record(
        organization_id=invocation.organization_id,
        host=host,
        failed=host_failed,
        trial=admission == "trial",
        now=finished,
    )
    record = {
        "attempts": attempt, "response_status": result.status_code,
        "response_headers": result.response_headers,
        "response_body": result.response_body, "error": result.error, "latency_ms": result.latency_ms,
        "outcome": result.outcome,
    }  # fmt: skip
    if result.outcome == "succeeded":
        _finish(
            invocation.pk,
            Status.SUCCEEDED,
            "succeeded",
            finished,
            **{k: v for k, v in record.items() if k != "outcome"},
        )
    elif _is_retried(result) and attempt <= action.max_retries:
        delay = _retry_after(result.response_headers, finished)
        delay = _backoff(attempt) if delay is None else min(delay, settings.CONDUIT_RETRY_MAX_S * 12)
        _reschedule(invocation.pk, finished + timedelta(seconds=delay), **record)
    else:
        fields = {k: v for k, v in record.items() if k != "outcome"}
        _finish(invocation.pk, Status.FAILED, result.outcome, finished, **fields)


# --- sweeper ------------------------------------------------------------------------


def invocations_sweep(*, now: datetime | None = None, batch: int = 1000) -> dict[str, int]:
    """Re-wake invocations that are due but were not picked up, and free those stuck running."""
    now = now or timezone.now()
    stuck_ids = list(
        Invocation.objects.filter(status=Status.RUNNING, claimed_until__lt=now).values_list("pk", flat=True)[
            :batch
        ]
    )
    if stuck_ids:
        # A worker died mid-call: the next attempt carries the same Idempotency-Key.
        Invocation.objects.filter(pk__in=stuck_ids, status=Status.RUNNING, claimed_until__lt=now).update(
            status=Status.PENDING, next_attempt_at=now, claimed_until=None
        )
    grace = now - timedelta(seconds=settings.CONDUIT_SWEEP_GRACE_S)
    due_ids = list(
        Invocation.objects.filter(
            Q(status=Status.PENDING) & (Q(next_attempt_at__lte=grace) | Q(pk__in=stuck_ids))
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:batch]
    )
    if due_ids:
        # Pushed forward so the next sweep does not wake them again while they wait in the queue.
        Invocation.objects.filter(pk__in=due_ids, status=Status.PENDING).update(next_attempt_at=now)
    for invocation_id in due_ids:
        wake(invocation_id, now)
    return {"stuck": len(stuck_ids), "woken": len(due_ids)}


# --- replay -------------------------------------------------------------------------


@transaction.atomic
def invocation_replay(*, invocation: Invocation) -> Invocation:
    """Send the same rendered request again, with the same Idempotency-Key, linked to the original."""
    now = timezone.now()
    original = Invocation.objects.select_for_update().get(pk=invocation.pk)
    replay = Invocation.objects.create(
        organization_id=original.organization_id, action_id=original.action_id,
        origin=Invocation.Origin.REPLAY,
        origin_ref=str(original.pk), replay_of=original, request=original.request, next_attempt_at=now,
        created_at=now, idempotency_key=original.idempotency_key,
    )  # fmt: skip
    transaction.on_commit(lambda: wake(replay.pk, now))
    return replay
