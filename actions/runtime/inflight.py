"""Many calls open at once per worker process: claim due invocations, keep up to CONDUIT_MAX_IN_FLIGHT
of their calls in flight, and write back what they gave in bulk.

Calls that need nothing blocking before they go are made on the process's event loop (loop_calls,
aiohttp); the others (token auth, client certificates, limits set by people, emails) in a pool of
threads over the one urllib3 pool manager. Claiming, the circuit, the limits and writing back stay
on the task's thread, which holds the database connection. A host gets at most HOST_SHARE of a
worker's calls and at most its `max_concurrent` across workers, so a host that hangs holds only its
own slots.
"""

import logging
import math
import queue
import random
import time
from collections import Counter, defaultdict, deque
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from actions.delivery import emails, secret_references
from actions.models import Action, Invocation
from actions.runtime import concurrency, loop_calls, ratelimit, thread_calls, windows
from actions.runtime.circuit import circuit_release_trial
from actions.runtime.dispatch import (
    CALLS_PER_ATTEMPT,
    Batch,
    admit,
    backlog_s,
    claim_batch,
    endpoint_limits,
    hold_back,
    host_of,
    lease_s,
    record_result,
    unsendable,
    within_limits,
)
from actions.runtime.invocations import BATCH_SIZE
from actions.runtime.signals import calls_open

logger = logging.getLogger(__name__)
Status = Invocation.Status
HOST_SHARE = 0.75  # of a worker's calls in flight, at most this part to one host: a hanging host leaves the rest
STALL_S = 0.5  # a call whose host had no free slot for this long goes back to the queue, due again in a second
SAVE_EVERY_S = 0.05  # results are written in bulk at most this long after they came
POLL_S = 0.1  # with calls open and nothing else to do, due rows are looked for this often
CHUNK_S = 0.01  # a thread takes several calls of a fast host in a row, for about this long
MEANWHILE_S = 0.1  # with calls open, other due work is done this often (signals.calls_open)
WAKE_EVERY_S = 0.01  # with calls open, the task takes what ended at most this often (CPU a call 1.14 -> 0.94 ms)
INLINE_BELOW_S = 0.005  # a host answering faster than this is called from the task's thread (see _started)
_latency_s: dict[str, float] = {}  # slot key -> its calls' recent time (moving average), for the process


@dataclass
class _Call:
    invocation: Invocation
    trial: bool
    limits: list[ratelimit.Limit]


def _other_due_work() -> float:
    """Other due work, while calls are open (signals.calls_open): with a provider at 100 ms, events
    waited for a process to leave its call loop (p95 3.0 s from event to call at 200 events/s)."""
    if settings.CONDUIT_MAX_IN_FLIGHT > 1:  # one call at a time, the loop never waits long
        for receiver, failure in calls_open.send_robust(sender=CallLoop):
            if isinstance(failure, Exception):
                logger.error("Work done while calls were open failed (%s).", receiver, exc_info=failure)
    return time.monotonic()


def _started(starting: list[_Call], latency: float) -> list[tuple[list[_Call], Future]]:
    """These calls of one host started, each group with the future of its results.

    Under 5 ms, a host's calls are sent from this thread (at 0 ms, 1,450-1,590 calls/s against
    960-1,020 through threads), as one group: should the host turn slow, one call holds the loop for
    its latency (a timeout at worst), once, and the group's others go again (thread_calls.send_calls).
    In groups of 16, a fast host turned 300 ms slow held the loop 1.2 s for 50 calls.
    Slower calls go on the event loop a future each, or to threads a few in a row (~10 ms of calls).
    """
    if latency < INLINE_BELOW_S:
        calls = [(call.invocation, call.limits) for call in starting]
        return [(starting, thread_calls.start_calls(calls, inline=True))] if starting else []
    on_loop, threaded = [], []
    for call in starting:
        (on_loop if loop_calls.fits(call.invocation, call.limits) else threaded).append(call)
    started = [
        ([call], future)
        for call, future in zip(on_loop, loop_calls.start([c.invocation for c in on_loop]), strict=True)
    ]
    chunk = max(min(int(CHUNK_S / latency), 16), 1)
    for start in range(0, len(threaded), chunk):
        group = threaded[start : start + chunk]
        started.append((group, thread_calls.start_calls([(c.invocation, c.limits) for c in group], inline=False)))
    return started


class CallLoop:
    """One task's run: claims while there is room and time, starts calls as their hosts allow, writes back."""

    def __init__(self, first_id: Any):
        self.first_id = first_id
        self.began = time.monotonic()
        self.worker = concurrency.worker_name()
        self.capacity = BATCH_SIZE if settings.CONDUIT_MAX_IN_FLIGHT <= 1 else settings.CONDUIT_MAX_IN_FLIGHT
        self.batch = Batch()  # decided, not yet written
        self.claims: dict[Any, datetime] = {}  # row -> its claim, until written
        self.running: dict[Future, tuple[str, list[_Call]]] = {}  # calls of one host, one after the other
        self.done: queue.SimpleQueue[Future] = queue.SimpleQueue()
        self.waiting: dict[str, deque[_Call]] = defaultdict(deque)  # slot key -> admitted calls not started
        self.blocked: dict[str, float] = {}  # slot key -> since when none of its calls could start
        self.open: Counter[str] = Counter()  # slot key -> calls open from this loop
        # slot key -> slots this worker holds of the host's cap: its open calls, and a few more kept for
        # the next calls (`_reserve`): taking and giving back per call would cost a round trip each.
        self.held: Counter[str] = Counter()
        self.caps: dict[str, int] = {}
        self.timeouts: dict[str, int] = {}  # slot key -> longest timeout of its calls, for the slots' expiry
        self.exhausted: dict[tuple[str, ...], tuple[float, float]] = {}  # limits that refused: (retry at, spread)
        self.more = True
        self.claimed, self.claimed_at = 0, time.monotonic()
        self.saved_at = self.meanwhile_at = self.woke_at = time.monotonic()

    def run(self) -> int:
        with secret_references.batch_cache(), emails.connection_pool():
            try:
                while self._step():
                    pass
            finally:
                while self.running:  # an error above: the calls already open still end and are recorded
                    self._ended(self.done.get())
                self._give_back_waiting(everything=True)  # after the calls' end: a group may give some back
                self._save()
                for key, count in self.held.items():
                    concurrency.change(key, self.worker, give_back=count, ttl_s=self._ttl_s(key))
        if self.claimed:  # before the process takes its next message, maybe one of many wake-ups
            self.meanwhile_at = _other_due_work()
        return self.claimed

    # -- the loop ---------------------------------------------------------------------------

    def _budget_left(self) -> bool:
        return time.monotonic() - self.began < settings.CONDUIT_BATCH_BUDGET_S

    def _room(self) -> int:
        return self.capacity - self._open_calls() - sum(len(q) for q in self.waiting.values())

    def _open_calls(self) -> int:
        return sum(self.open.values())

    def _may_claim(self) -> bool:
        # While calls are open, look again for due rows now and then: this process takes no other
        # task until its loop ends, so rows that came due meanwhile would otherwise wait for it.
        again = self.more or (self.running and time.monotonic() - self.claimed_at >= POLL_S)
        return bool(again) and self._budget_left() and self._room() >= max(min(BATCH_SIZE, self.capacity) // 2, 1)

    def _step(self) -> bool:
        if self._may_claim():
            self._claim()
        self._start_waiting()
        if self.running:
            if self.done.empty() and (pause := WAKE_EVERY_S - (time.monotonic() - self.woke_at)) > 0:
                time.sleep(pause)  # woken at each call's end, the task took them one at a time
            self.woke_at = time.monotonic()
            try:
                self._ended(self.done.get(timeout=0.02 if self.waiting or self.batch.changed else POLL_S))
                while True:
                    self._ended(self.done.get_nowait())
            except queue.Empty:
                pass
        elif self.waiting:
            time.sleep(0.02)  # every slot of these hosts is held by other workers: look again shortly
        self._give_back_waiting(everything=not self._budget_left())
        if not self.running or time.monotonic() - self.saved_at >= SAVE_EVERY_S:
            self._save()
        if self.running and time.monotonic() - self.meanwhile_at >= MEANWHILE_S:
            self.meanwhile_at = _other_due_work()
        return bool(self.running or self.waiting or self._may_claim())

    def _claim(self) -> None:
        limit = min(BATCH_SIZE, self._room())
        invocations = claim_batch(self.first_id, limit)
        self.claimed_at = time.monotonic()
        self.first_id, self.more = None, len(invocations) == limit
        if not invocations:
            return
        self.claimed += len(invocations)
        now = timezone.now()
        sendable = []
        for invocation in invocations:
            self.claims[invocation.pk] = invocation.claimed_until
            if reason := unsendable(invocation):
                self.batch.finish(invocation, Status.FAILED, "error", now, reason)
            else:
                sendable.append(invocation)
        sendable = windows.hold_outside_window(self.batch, sendable, now)
        admitted = admit(self.batch, sendable, now)
        configured = endpoint_limits({(i.organization_id, host_of(i)) for i, _ in admitted})
        allowed = within_limits(self.batch, admitted, now, configured)
        self._preload([invocation for invocation, _, _ in allowed])
        for invocation, trial, limits in allowed:
            key = concurrency.key(invocation.organization_id, host_of(invocation))
            self.waiting[key].append(_Call(invocation, trial, limits))
            self.timeouts[key] = max(self.timeouts.get(key, 0), invocation.action.timeout_ms)
            endpoint = configured.get((invocation.organization_id, host_of(invocation)))
            self.caps[key] = endpoint.max_concurrent if endpoint else settings.CONDUIT_DEFAULT_MAX_CONCURRENT

    def _preload(self, invocations: list[Invocation]) -> None:
        """What the calls read from the database, read now on this thread: secret values, SMTP settings."""
        emails.smtp_preload({i.organization_id for i in invocations if i.action.kind == Action.Kind.EMAIL})
        names: dict[int, set[str]] = defaultdict(set)
        for invocation in invocations:
            names[invocation.organization_id].update(p["name"] for p in invocation.request.get("secrets") or [])
        for organization_id, found in names.items():
            secret_references.secrets_preload(organization_id, found)

    def _share(self, call: _Call) -> int:
        if call.invocation.action.kind == Action.Kind.EMAIL:
            return settings.CONDUIT_SMTP_CONNECTIONS  # each email holds one of the organization's SMTP connections
        return max(math.floor(self.capacity * HOST_SHARE), 1)

    def _reserve(self, key: str) -> int:
        """Slots kept beyond the open calls while the loop runs: a batch, or a quarter of a small cap."""
        return min(BATCH_SIZE, self.caps[key] // 4)

    def _ttl_s(self, key: str) -> float:
        return lease_s(self.timeouts.get(key, 30_000), whole_batch=True)

    def _start_waiting(self) -> None:
        for key in list(self.waiting):
            in_flight = self._open_calls()
            if in_flight >= self.capacity:
                return  # this worker is full: a call ending frees a place for any host
            calls = self.waiting[key]
            wanted = min(len(calls), self.capacity - in_flight, self._share(calls[0]) - self.open[key])
            if wanted <= 0:  # this host has its share of the worker's calls open
                self.blocked.setdefault(key, time.monotonic())
                continue
            spare = self.held[key] - self.open[key]
            if spare < wanted:
                share_left = self._share(calls[0]) - self.held[key]
                take = min(max(wanted - spare, self._reserve(key)), share_left)
                self.held[key] += concurrency.change(
                    key, self.worker, take=take, cap=self.caps[key], ttl_s=self._ttl_s(key)
                )
                spare = self.held[key] - self.open[key]
            if spare < wanted:
                self.blocked.setdefault(key, time.monotonic())  # other workers hold the host's slots
            else:
                self.blocked.pop(key, None)
            starting = []
            for _ in range(min(spare, wanted)):
                call = calls.popleft()
                if self._claim_holds(call) and (not call.limits or self._may_try(call)):
                    starting.append(call)
            for group, future in _started(starting, _latency_s.get(key, 1.0)):
                self.running[future] = (key, group)
                self.open[key] += len(group)
                future.add_done_callback(self.done.put)
            if not calls:
                del self.waiting[key]
                self.blocked.pop(key, None)

    def _claim_holds(self, call: _Call) -> bool:
        """False (and the call given back) when its claim could end before the call does: sent then,
        the row could also be sent by the worker that takes it over."""
        invocation = call.invocation
        claim = self.claims.get(invocation.pk)
        call_s = CALLS_PER_ATTEMPT * invocation.action.timeout_ms / 1000
        needed = timedelta(seconds=call_s + settings.CONDUIT_LEASE_MARGIN_S / 2)  # a fresh claim always holds
        if claim is None or claim - timezone.now() >= needed:
            return True
        self._give_back(call, timezone.now())
        return False

    def _give_back(self, call: _Call, at: datetime) -> None:
        """A claimed call not sent goes back to the queue, due at `at`; a circuit's trial slot is freed."""
        if call.trial:
            invocation = call.invocation
            circuit_release_trial(organization_id=invocation.organization_id, host=host_of(invocation))
        self.batch.reschedule(call.invocation, at)

    def _may_try(self, call: _Call) -> bool:
        """False (and the call held back) when its limits just refused another call: no need to ask."""
        keys = tuple(limit.key for limit in call.limits)
        if keys in self.exhausted and time.time() < self.exhausted[keys][0]:
            retry_at, spread_s = self.exhausted[keys]
            hold_back(self.batch, call.invocation, call.trial, retry_at, timezone.now(), spread_s)
            return False
        return True

    def _refused(self, call: _Call, retry_at: float | None) -> None:
        if not self._may_try(call):  # another call found the limit full already: held back like the others
            return
        keys = tuple(limit.key for limit in call.limits)
        hold_back(self.batch, call.invocation, call.trial, retry_at, timezone.now())  # this one is woken on time
        self.exhausted[keys] = (retry_at or time.time() + 1, backlog_s(call.invocation, call.limits))

    def _ended(self, future: Future) -> None:
        key, group = self.running.pop(future)
        self.open[key] -= len(group)
        again = []  # the group gave up before these (its host turned slow): started anew, as its latency says
        for call, (started, result) in zip(group, future.result(), strict=True):
            if result is None:
                again.append(call)
                continue
            if isinstance(result, thread_calls.LimitFull):
                self._refused(call, result.retry_at)
                continue
            if isinstance(result, Exception):  # one bad call must not hold back the others
                failed = "Conduit could not send this call."
                self.batch.finish(call.invocation, Status.FAILED, "error", timezone.now(), failed)
                continue
            record_result(self.batch, call.invocation, call.trial, result, started)
            seconds = result.latency_ms / 1000
            _latency_s[key] = 0.8 * _latency_s.get(key, seconds) + 0.2 * seconds
        if again:
            self.waiting[key].extendleft(reversed(again))

    def _give_back_waiting(self, *, everything: bool) -> None:
        """Calls not started in time go back to the queue: at once when the budget is spent (another
        worker takes them), in about a second when their host stayed full (a hanging host's backlog)."""
        now, stalled_before = timezone.now(), time.monotonic() - STALL_S
        for key in list(self.waiting):
            if not everything and self.blocked.get(key, time.monotonic()) > stalled_before:
                continue
            for call in self.waiting.pop(key):
                later = 0.0 if everything else random.uniform(0.5, 1.5)  # noqa: S311  (spreading, not secrets)
                self._give_back(call, now + timedelta(seconds=later))
            self.blocked.pop(key, None)

    def _save(self) -> None:
        for key in list(self.held):
            surplus = self.held[key] - self.open[key] - self._reserve(key)
            if surplus > 0:  # more than the host's next calls need: for other workers
                concurrency.change(key, self.worker, give_back=surplus, ttl_s=self._ttl_s(key))
                self.held[key] -= surplus
        if self.batch.changed:
            claims = {i.pk: self.claims.pop(i.pk) for i in self.batch.changed if i.pk in self.claims}
            self.batch.save(claims, timezone.now())
            self.batch = Batch()
        self.saved_at = time.monotonic()


def invocations_send_due(*, first_id: Any = None) -> int:
    """Send due invocations (the given one first), many at once, for up to CONDUIT_BATCH_BUDGET_S of claiming.

    Claiming and writing in batches keeps the database work per call small (MEASURED.md): a
    lone invocation costs eleven statements, a batch of fifty the same eleven.
    """
    return CallLoop(first_id).run()


def invocation_send(*, invocation_id: Any) -> None:
    """Send this invocation if it is due and nobody holds it (with other due ones)."""
    invocations_send_due(first_id=invocation_id)
