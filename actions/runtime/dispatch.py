"""Deciding about due invocations: claim a batch, pass the circuit and the rate limits, record what a
call gave, write back in one transaction. `inflight` keeps the calls themselves open together."""

import email.utils
import logging
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone

from actions.delivery.calls import CallResult, call_action
from actions.delivery.rendering import RenderedRequest
from actions.delivery.secret_references import LEGACY_SEALED
from actions.models import Action, EndpointLimit, Invocation, InvocationAttempt
from actions.runtime import ratelimit
from actions.runtime.circuit import circuit_admit, circuit_record, circuit_release_trial
from actions.runtime.invocations import BATCH_SIZE, wake
from actions.runtime.signals import invocations_finished
from config.common.db import update_rows

logger = logging.getLogger(__name__)
Status = Invocation.Status
RETRIED_STATUSES = {408, 429}
HOST_FAILURE_OUTCOMES = {"timedout", "error"}
CALLS_PER_ATTEMPT = 4  # a token fetch, the call, a fresh token after a 401, the call again


def lease_s(timeout_ms: int, *, whole_batch: bool) -> float:
    """How long a claim holds a row before the sweeper may hand it to another worker.

    A batch's claim also covers the batch's budget; a circuit's trial lease covers one attempt.
    """
    budget = settings.CONDUIT_BATCH_BUDGET_S if whole_batch else 0.0
    return budget + CALLS_PER_ATTEMPT * timeout_ms / 1000 + settings.CONDUIT_LEASE_MARGIN_S


def _retry_after(headers: dict[str, str], now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), None if absent or unreadable."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), "").strip()
    if re.fullmatch(r"[0-9]{1,9}", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: base * 2^(attempt-1), +-25%, capped."""
    delay = min(settings.CONDUIT_RETRY_BASE_S * 2 ** (attempt - 1), settings.CONDUIT_RETRY_MAX_S)
    return delay * random.uniform(0.75, 1.25)  # noqa: S311  (jitter, not cryptography)


def _is_retried(result: CallResult) -> bool:
    if result.outcome.startswith("smtp_"):  # an SMTP server's 4xx is temporary, its 5xx final
        return result.outcome.startswith("smtp_4")
    if result.status_code is not None:
        return result.status_code in RETRIED_STATUSES or result.status_code >= 500
    return result.outcome in ("timedout", "error")  # never "refused": a blocked destination stays blocked


def host_of(invocation: Invocation) -> str:
    return urlsplit(invocation.request["url"]).hostname or ""


def claim_batch(first_id: Any, limit: int = BATCH_SIZE) -> list[Invocation]:
    """Claim up to `limit` due invocations, the message's own first; rows others hold are skipped."""
    now = timezone.now()
    with transaction.atomic():
        due = Invocation.objects.filter(status=Status.PENDING, next_attempt_at__lte=now).select_for_update(
            skip_locked=True, of=("self",)
        )
        first = Case(When(pk=first_id, then=Value(0)), default=Value(1)) if first_id else Value(1)
        rows = list(due.order_by(first, "next_attempt_at").values_list("pk", "action__timeout_ms")[:limit])
        if not rows:
            return []
        ids = [pk for pk, _ in rows]
        lease = lease_s(max(t for _, t in rows), whole_batch=True)
        Invocation.objects.filter(pk__in=ids, status=Status.PENDING).update(
            status=Status.RUNNING, claimed_until=now + timedelta(seconds=lease)
        )
    # claimed_until doubles as this claim's token: the results are written only where it still holds.
    invocations = list(Invocation.objects.filter(pk__in=ids).order_by())
    # One Action per action for the batch, not one per row: each row's copy decoded its JSON fields
    # and decrypted its secrets again (a batch is mostly one campaign's action). A batch of 50 of
    # one action took 29 ms to load joined, 11 ms so (SQLite, a bearer token and a signing secret).
    actions = Action.objects.select_related("organization").order_by().in_bulk({i.action_id for i in invocations})
    for invocation in invocations:
        invocation.action = actions[invocation.action_id]
    return invocations


class Batch:
    """What a batch decided, written back in one transaction."""

    FIELDS = [
        "status", "outcome", "attempts", "response_status", "response_headers", "response_body", "error",
        "latency_ms", "next_attempt_at", "claimed_until", "held_since", "finished_at", "window_wait_until",
    ]  # fmt: skip

    def __init__(self) -> None:
        self.changed: list[Invocation] = []
        self.attempts: list[InvocationAttempt] = []
        self.wake: list[Invocation] = []
        self.new_requests: list[Invocation] = []  # rows whose retry sends a narrower request
        self.circuits: dict[tuple[int, str], list] = defaultdict(lambda: [0, 0, None])  # calls, failures, trial

    def finish(self, invocation: Invocation, status: str, outcome: str, now: datetime, error: str = "") -> None:
        invocation.status, invocation.outcome, invocation.finished_at = status, outcome, now
        invocation.claimed_until = None
        if error:
            invocation.error = error
        self.changed.append(invocation)

    def reschedule(self, invocation: Invocation, at: datetime, wake: bool = True) -> None:
        invocation.status, invocation.next_attempt_at, invocation.claimed_until = Status.PENDING, at, None
        self.changed.append(invocation)
        if wake:
            self.wake.append(invocation)

    @transaction.atomic
    def save(self, claims: dict[Any, datetime], now: datetime) -> None:
        """Write what this worker still owns: a row whose lease ran out belongs to whoever took it since."""
        owned = set(
            Invocation.objects.select_for_update()
            .filter(pk__in=list(claims), status=Status.RUNNING)
            .values_list("pk", "claimed_until")
        )
        owned_ids = {pk for pk, lease in owned if claims.get(pk) == lease}
        InvocationAttempt.objects.bulk_create([a for a in self.attempts if a.invocation_id in owned_ids])
        changed = [i for i in self.changed if i.pk in owned_ids]
        for invocation in changed:
            invocation.updated_at = now
        update_rows(changed, [*self.FIELDS, "updated_at"], guard={"status": Status.RUNNING})
        narrowed = [i for i in self.new_requests if i.pk in owned_ids]
        if narrowed:  # rare (an email some recipients refused for now): not in every batch's UPDATE
            update_rows(narrowed, ["request"])
        for (organization_id, host), (calls, failures, trial_failed) in self.circuits.items():
            circuit_record(
                organization_id=organization_id, host=host, calls=calls, failures=failures,
                trial_failed=trial_failed, now=now,
            )  # fmt: skip
        finished = [i for i in changed if i.status in Invocation.FINAL]
        if finished:
            invocations_finished.send(sender=Invocation, invocations=finished)
        # One message per BATCH_SIZE rows due within the same tenth of a second, sent for the last
        # of them: a worker takes a batch of due rows per message.
        due: dict[int, list[Invocation]] = defaultdict(list)
        for invocation in self.wake:
            if invocation.pk in owned_ids:
                due[int(invocation.next_attempt_at.timestamp() * 10)].append(invocation)
        for group in due.values():
            for start in range(0, len(group), BATCH_SIZE):
                chunk = group[start : start + BATCH_SIZE]
                last = max(i.next_attempt_at for i in chunk)
                transaction.on_commit(lambda first=chunk[0].pk, last=last: wake(first, last))


def admit(batch: Batch, invocations: list[Invocation], now: datetime) -> list[tuple[Invocation, bool]]:
    """Pass the circuit of each host: (invocation, is the trial call) for those let through."""
    admitted = []
    by_host: dict[tuple[int, str], list[Invocation]] = defaultdict(list)
    for invocation in invocations:
        by_host[(invocation.organization_id, host_of(invocation))].append(invocation)
    for (organization_id, host), group in by_host.items():
        trial_lease = lease_s(max(i.action.timeout_ms for i in group), whole_batch=False)
        decision, until = circuit_admit(organization_id=organization_id, host=host, now=now, lease_s=trial_lease)
        if decision == "allow":
            admitted += [(i, False) for i in group]
            continue
        if decision == "trial":  # one call tries the host; the others wait a moment
            admitted.append((group[0], True))
            group, until = group[1:], now + timedelta(seconds=1)
        for invocation in group:
            held_since = invocation.held_since or now
            if (now - held_since).total_seconds() > settings.CONDUIT_CIRCUIT_MAX_HOLD_S:
                batch.finish(invocation, Status.FAILED, "circuit_open", now, f"The circuit to {host} stayed open.")
            else:
                invocation.held_since = held_since
                batch.reschedule(invocation, until)
    for invocation, _ in admitted:
        invocation.held_since = None  # let through: a later outage starts its own count
    return admitted


def hold_back(
    batch: Batch, invocation: Invocation, trial: bool, retry_at: float | None, now: datetime, spread_s: float = 0.0
) -> None:
    """A call the limits did not let through: rejected or delayed, as its action says.

    With `spread_s`, the delayed call is due at a random time over that many seconds after
    `retry_at` and no message is sent for it: a backlog behind a limit then comes due at about
    the rate the limit lets through, instead of every waiting row being claimed again each time
    capacity frees (the soak test's workers spent their time re-claiming 47,000 rows).
    """
    if trial:  # the trial never ran: free the slot so that the next call tries the host
        circuit_release_trial(organization_id=invocation.organization_id, host=host_of(invocation))
    if invocation.action.on_rate_limit == Action.OnRateLimit.REJECT:
        batch.finish(invocation, Status.RATE_LIMITED, "rate_limited", now, "The rate limit was reached.")
        return
    at = (retry_at or time.time() + 1) + random.uniform(0, spread_s)  # noqa: S311  (spreading, not secrets)
    batch.reschedule(invocation, datetime.fromtimestamp(at, tz=UTC), wake=not spread_s)


def endpoint_limits(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], EndpointLimit]:
    """The limits people set on these (organization, host) pairs."""
    if not pairs:
        return {}
    query = Q()
    for organization_id, host in pairs:
        query |= Q(organization_id=organization_id, host=host)
    return {(e.organization_id, e.host): e for e in EndpointLimit.objects.filter(query)}


def within_limits(
    batch: Batch, admitted: list[tuple[Invocation, bool]], now: datetime,
    configured: dict[tuple[int, str], EndpointLimit],
) -> list[tuple[Invocation, bool, list[ratelimit.Limit]]]:  # fmt: skip
    """The calls to send, each with the limits to take just before it is sent.

    Limits set by people (the action's, a host's) are taken one call at a time, right before the
    call: taken for a whole batch, calls sent seconds later would reach the provider in a later
    window than the one they were counted in (the soak test saw 262 calls in a second for 200).
    Only the default host cap, whose margin is seconds wide, is taken for the batch at once.
    """
    groups: dict[tuple[int, int, str], list[tuple[Invocation, bool]]] = defaultdict(list)
    for invocation, trial in admitted:
        groups[(invocation.action_id, invocation.organization_id, host_of(invocation))].append((invocation, trial))
    allowed = []
    for (_, organization_id, host), group in groups.items():
        action = group[0][0].action
        limits = []
        if action.rate_limit_calls and action.rate_limit_period_s:
            limits.append(ratelimit.Limit(f"action:{action.pk}", action.rate_limit_calls, action.rate_limit_period_s))
        endpoint = configured.get((organization_id, host))
        calls, period = (endpoint.calls, endpoint.period_s) if endpoint else settings.CONDUIT_DEFAULT_HOST_LIMIT
        limits.append(ratelimit.Limit(f"host:{organization_id}:{host}", calls, period))
        if action.rate_limit_calls or (calls, period) != tuple(settings.CONDUIT_DEFAULT_HOST_LIMIT):
            allowed += [(invocation, trial, limits) for invocation, trial in group]
            continue
        granted, retry_at = ratelimit.acquire(limits, time.time(), len(group))
        allowed += [(invocation, trial, []) for invocation, trial in group[:granted]]
        for invocation, trial in group[granted:]:
            hold_back(batch, invocation, trial, retry_at, now)
    return allowed


def stored_request(invocation: Invocation) -> RenderedRequest:
    """The request as rendered when the invocation was made, its secret values still out."""
    request = invocation.request
    body = request["body"].encode() if request["body"] is not None else None
    headers = [tuple(h) for h in request["headers"]]
    return RenderedRequest(request["method"], request["url"], headers, body, request.get("secrets") or [])


def call_invocation(invocation: Invocation, before_send: Callable[[], None] | None = None) -> CallResult:
    """The call itself, as stored: run in a thread of the worker's pool, so it touches no database."""
    key = str(invocation.idempotency_key)
    return call_action(invocation.action, stored_request(invocation), idempotency_key=key, before_send=before_send)


def record_result(batch: Batch, invocation: Invocation, trial: bool, result: CallResult, started: datetime) -> None:
    """What a call gave: its attempt, the circuit's counts, and the invocation done, retried or failed."""
    action, attempt, finished = invocation.action, invocation.attempts + 1, timezone.now()
    batch.attempts.append(
        InvocationAttempt(
            invocation_id=invocation.pk, number=attempt, outcome=result.outcome,
            response_status=result.status_code, response_headers=result.response_headers,
            response_body=result.response_body, error=result.error, latency_ms=result.latency_ms, started_at=started,
        )
    )  # fmt: skip
    host_failed = not result.auth_failed and (
        result.outcome in HOST_FAILURE_OUTCOMES or (result.status_code or 0) >= 500
    )
    counts = batch.circuits[(invocation.organization_id, host_of(invocation))]
    if trial:
        counts[2] = host_failed
    else:
        counts[0] += 1
        counts[1] += int(host_failed)
    invocation.attempts, invocation.response_status = attempt, result.status_code
    invocation.response_headers, invocation.response_body = result.response_headers, result.response_body
    invocation.error, invocation.latency_ms, invocation.outcome = result.error, result.latency_ms, result.outcome
    if result.outcome == "succeeded":
        batch.finish(invocation, Status.SUCCEEDED, "succeeded", finished)
    elif _is_retried(result) and attempt <= action.max_retries:
        if result.next_request is not None:
            invocation.request = result.next_request
            batch.new_requests.append(invocation)
        delay = _retry_after(result.response_headers, finished)
        delay = _backoff(attempt) if delay is None else min(delay, settings.CONDUIT_RETRY_MAX_S * 12)
        batch.reschedule(invocation, finished + timedelta(seconds=delay))
    else:
        batch.finish(invocation, Status.FAILED, result.outcome, finished)


def unsendable(invocation: Invocation) -> str:
    """Why a claimed invocation cannot be sent as stored, or ""."""
    url = invocation.request.get("url") if isinstance(invocation.request, dict) else None
    if not url:
        return "This invocation has no rendered request to send."
    # Credentials are read at send time: never send them to a host the action no longer calls.
    # An email goes through the organization's SMTP settings as they are when it is sent.
    is_email = invocation.action.kind == Action.Kind.EMAIL
    if is_email != (invocation.request.get("method") == "SMTP"):
        return "The action is now of another kind; this call, made for the old one, was not sent."
    if not is_email and host_of(invocation) != (urlsplit(invocation.action.url).hostname or ""):
        return "The action now calls another host; this call, made for the old one, was not sent."
    if not invocation.request.get("secrets") and _has_legacy_marker(invocation.request):
        return "This call was rendered by an earlier version that marked secret values otherwise; it was not sent."
    return ""


def _has_legacy_marker(request: dict) -> bool:
    texts = [request["url"], request.get("body") or "", *(value for _, value in request.get("headers") or [])]
    return any("~secret." in text and LEGACY_SEALED.search(text) for text in texts)


BACKLOG_FOR_S = 1.0  # an action's count of waiting calls is used this long in a process
_backlog: dict[int, tuple[float, int]] = {}  # action id -> (counted at, waiting calls)


def backlog_s(invocation: Invocation, limits: list[ratelimit.Limit]) -> float:
    """How long the action's waiting calls take to go through its tightest limit.

    Counted at most once a second per action and process: a limit refuses every few tens of
    milliseconds while it is full, and counting 50,000 waiting rows each time kept PostgreSQL
    busy for the whole soak (8 processes, 110 calls/s to the provider for a limit of 200).
    """
    counted_at, waiting = _backlog.get(invocation.action_id, (0.0, 0))
    if time.monotonic() - counted_at > BACKLOG_FOR_S:
        pending = Invocation.objects.filter(
            organization_id=invocation.organization_id, action_id=invocation.action_id, status=Status.PENDING
        ).exclude(window_wait_until__gt=timezone.now())  # calls held for a send window not open yet wait apart
        waiting = pending[:100_000].count()
        _backlog[invocation.action_id] = (time.monotonic(), waiting)
    return max(waiting / (limit.calls / limit.period_s) for limit in limits)
