"""The journey engine (SPEC sections 5 and 8): events start runs, workers move runs step by step.

Every unit of work is a row: an unprocessed Event, a JourneyRun whose `due_at` has come, an
Invocation. Workers claim rows in batches, decide in memory, and write everything a batch decided
in one transaction, only for the runs they still hold; a step's side effect (its invocation) is
written in that same transaction, so a step never runs twice. Celery messages only wake workers;
the sweeper wakes what a lost message left behind.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from actions.models import Invocation
from actions.runtime import invocations_enqueue
from config.common.db import update_rows
from journeys import steps
from journeys.entries import enter_jumped, exclusive_key
from journeys.event_waits import runs_resume_on_events
from journeys.expressions import charged_to
from journeys.frequency_caps.counting import call_capped
from journeys.models import Event, Journey, JourneyRun, StepRun
from journeys.run_endings import runs_exit, runs_time_out
from journeys.selectors import profiles_seen
from journeys.steps import CompiledJourney, compiled, steps_of

logger = logging.getLogger(__name__)
RunStatus, StepStatus = JourneyRun.Status, StepRun.Status
BATCH_SIZE = 100
# Woken by name: the engine never imports its Celery door (journeys.tasks).
PROCESS_EVENTS_TASK = "journeys.process_events"
ADVANCE_RUNS_TASK = "journeys.advance_runs"
EVENT_BATCH_SIZE = 500
MAX_STEPS_PER_PASS = 50  # a safety net: publishing already refuses loops without a wait
RUN_LEASE_S = 10  # a pass is computation and one write: seconds at most; a dead worker's runs wait this long


# --- events start runs --------------------------------------------------------------


def events_process(*, batch: int = EVENT_BATCH_SIZE) -> int:
    """Start the runs of a batch of stored events, and mark them processed, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        events = list(
            Event.objects.filter(processed_at=None)
            .select_for_update(skip_locked=True)
            .order_by("pk")
            .only("pk", "organization_id", "name", "profile_id")[:batch]
        )
        if not events:
            return 0
        runs_exit(events=events, now=now)  # before any start: an exit and an entry in one batch leave a new run
        resumed = runs_resume_on_events(events=events, now=now)  # wait_event steps waiting for these
        live = Journey.objects.filter(
            status=Journey.Status.LIVE,
            organization_id__in={e.organization_id for e in events},
            entry_event__in={e.name for e in events},
        )
        by_entry = defaultdict(list)
        for journey in live:
            by_entry[(journey.organization_id, journey.entry_event)].append(journey)
        runs, keys = [], set()
        for event in events:
            for journey in by_entry.get((event.organization_id, event.name), []):
                key = exclusive_key(journey, event.profile_id)
                if key is not None:
                    if key in keys:
                        continue
                    keys.add(key)
                runs.append(
                    JourneyRun(
                        organization_id=event.organization_id, journey=journey, profile_id=event.profile_id,
                        event_id=event.pk, current_step=journey.start, due_at=now, exclusive_key=key,
                        started_at=now,
                    )
                )  # fmt: skip
        # A profile already in (or through, for `never`) the journey holds its key: the insert is skipped.
        JourneyRun.objects.bulk_create(runs, ignore_conflicts=True)
        Event.objects.filter(pk__in=[e.pk for e in events]).update(processed_at=now)
        started = len(runs) + resumed
        if started:
            transaction.on_commit(lambda: wake_runs(started))
    return len(events)


# --- runs move ----------------------------------------------------------------------


def wake_events() -> None:
    try:
        current_app.send_task(PROCESS_EVENTS_TASK)
    except Exception:  # the broker is down: the events are stored, the sweeper wakes them later
        logger.warning("Could not reach the broker to process events; the sweeper will.")


def wake_runs(count: int = 1, countdown: float | None = None) -> None:
    """One message per batch of due runs. Losing one loses nothing: the sweeper re-wakes."""
    for _ in range(max(1, -(-count // BATCH_SIZE))):
        try:
            current_app.send_task(ADVANCE_RUNS_TASK, countdown=countdown)
        except Exception:
            logger.warning("Could not reach the broker to advance runs; the sweeper will.")
            return


def _due_runs(now: datetime) -> QuerySet[JourneyRun]:
    return (
        JourneyRun.objects.filter(status__in=JourneyRun.OPEN, due_at__lte=now)
        .filter(Q(claimed_until=None) | Q(claimed_until__lt=now))
        .exclude(journey__status=Journey.Status.PAUSED)  # a paused journey holds its runs where they are
    )


def _claim_runs() -> list[JourneyRun]:
    now = timezone.now()
    with transaction.atomic():
        due = _due_runs(now).select_for_update(skip_locked=True, of=("self",)).order_by("due_at")
        ids = list(due.values_list("pk", flat=True)[:BATCH_SIZE])
        if not ids:
            return []
        JourneyRun.objects.filter(pk__in=ids).update(claimed_until=now + timedelta(seconds=RUN_LEASE_S))
    return list(JourneyRun.objects.select_related("journey", "current_step_run").filter(pk__in=ids))


@dataclass
class _Pass:
    """What one batch decided, written back in one transaction."""

    now: datetime
    new_steps: list[StepRun] = field(default_factory=list)
    closed_steps: list[StepRun] = field(default_factory=list)
    calls: dict[int, list[tuple[StepRun, dict, tuple]]] = field(default_factory=lambda: defaultdict(list))
    wake_now: int = 0
    wake_later: list[datetime] = field(default_factory=list)
    jumps: list[tuple[JourneyRun, int]] = field(default_factory=list)  # (run, the journey its profile enters)


def _end(run: JourneyRun, status: str, now: datetime, error: str = "") -> None:
    run.status, run.ended_at, run.due_at, run.current_step_run = status, now, None, None
    run.awaiting_event = ""
    run.error = error or run.error
    if run.journey.reentry == Journey.Reentry.AFTER_EXIT:
        run.exclusive_key = None  # the profile may enter again


def _follow(run: JourneyRun, target: str | None, now: datetime, *, failed_step: str = "") -> None:
    """Go on to `target`, or end the run: failed after a failed step with nowhere to go."""
    if target:
        run.current_step, run.status, run.due_at, run.current_step_run = target, RunStatus.ACTIVE, now, None
        run.awaiting_event = ""
    elif failed_step:
        _end(run, RunStatus.FAILED, now, f"Step {failed_step!r} failed and has no branch for its outcome.")
    else:
        _end(run, RunStatus.COMPLETED, now)


def _step_run(run: JourneyRun, step: dict, status: str, now: datetime) -> StepRun:
    run.steps_done += 1
    return StepRun(
        organization_id=run.organization_id, journey_id=run.journey_id, run=run, sequence=run.steps_done,
        step_key=step["key"], step_type=step["type"], status=status, entered_at=now,
    )  # fmt: skip


def _advance(work: _Pass, run: JourneyRun, plan: CompiledJourney, scope: dict[str, Any]) -> None:
    """Run steps of one run until it must wait (a wait, a call) or ends; `steps.decide` says what each does."""
    now = work.now
    if run.journey.status == Journey.Status.STOPPED:  # started as the journey was being stopped
        _end(run, RunStatus.STOPPED, now, "The journey was stopped.")
        return
    if run.status == RunStatus.WAITING:  # the wait is over
        open_step = run.current_step_run
        if open_step is not None:
            open_step.status, open_step.finished_at = StepStatus.SUCCEEDED, now
            work.closed_steps.append(open_step)
        step = plan.steps[run.current_step]
        if step["type"] == "wait_event":  # its event did not come in time (event_waits resumes those that did)
            if open_step is not None:
                open_step.outcome, open_step.next_step = "timedout", step.get("on_timeout") or ""
            run.context[step["key"]] = {"status": "timedout", "event": None}
            _follow(run, step.get("on_timeout"), now)
        else:
            _follow(run, steps.route(step, "succeeded"), now)
    for _ in range(MAX_STEPS_PER_PASS):
        if run.status != RunStatus.ACTIVE:
            return
        step = plan.steps.get(run.current_step)
        if step is None:
            _end(run, RunStatus.FAILED, now, f"The journey has no step {run.current_step!r}.")
            return
        record = _step_run(run, step, StepStatus.SUCCEEDED, now)
        work.new_steps.append(record)
        decision = steps.decide(step, scope, now=now, actions=plan.actions, seed=str(run.journey_id))
        if decision.kind == steps.CALL and call_capped(run, record, decision.action, now):
            decision = steps.after_cap(step, scope["steps"])  # not made: on to on_capped (or next)
            record.status = StepStatus.CAPPED
        if decision.kind in (steps.END, steps.JUMP):
            record.finished_at, record.outcome = now, decision.outcome
            if decision.kind == steps.JUMP:
                work.jumps.append((run, decision.journey))
            _end(run, RunStatus.COMPLETED, now)
            return
        if decision.kind == steps.CALL:
            record.status = StepStatus.RUNNING
            run.due_at, run.current_step_run = None, record
            work.calls[decision.action.pk].append((record, decision.values, decision.window))
            return
        record.outcome, record.next_step, record.wake_at = decision.outcome, decision.next, decision.wake_at
        if decision.kind == steps.WAIT:
            record.status = StepStatus.WAITING
            run.status, run.due_at, run.current_step_run = RunStatus.WAITING, decision.wake_at, record
            run.awaiting_event = step["event"] if step["type"] == "wait_event" else ""
            work.wake_later.append(decision.wake_at)
            return
        record.finished_at = now
        if decision.failed:
            record.status, record.error = StepStatus.FAILED, decision.error
        if decision.entry is not None:  # a failed or capped step: later steps see its status
            run.context[step["key"]] = decision.entry
        _follow(run, decision.next, now, failed_step=step["key"] if decision.failed else "")
    # Publishing refuses loops without a wait; a run still here is due again, not lost.
    work.wake_now += 1


RUN_FIELDS = [
    "status", "current_step", "current_step_run", "due_at", "claimed_until", "steps_done", "context",
    "exclusive_key", "error", "ended_at", "updated_at", "awaiting_event",
]  # fmt: skip
STEP_FIELDS = ["status", "outcome", "next_step", "invocation", "error", "finished_at"]


def runs_advance() -> int:
    """Claim a batch of due runs, run their steps, write what was decided. Returns how many were claimed."""
    runs = _claim_runs()
    if not runs:
        return 0
    claims = {r.pk: r.claimed_until for r in runs}
    now = timezone.now()
    plans = compiled(list({r.journey_id: r.journey for r in runs}.values()))
    profiles = profiles_seen({r.profile_id for r in runs})
    events = {
        pk: {"name": name, "data": data, "occurred_at": occurred_at}
        for pk, name, data, occurred_at in Event.objects.filter(
            pk__in={r.event_id for r in runs if r.event_id}
        ).values_list("pk", "name", "data", "occurred_at")
    }
    work = _Pass(now=now)
    for run in runs:
        scope = {
            "profile": profiles.get(run.profile_id, {}),
            "event": events.get(run.event_id) or {"name": "", "data": {}},
            "steps": dict(run.context),
            "now": now,
        }
        try:
            with charged_to(run.organization_id):  # its loops spend its own budget, not the batch's
                _advance(work, run, plans[run.journey_id], scope)
        except Exception:  # one broken run must not hold back the batch
            logger.exception("Journey run %s failed in the engine.", run.pk)
            _end(run, RunStatus.FAILED, now, "Conduit could not run this step.")
    try:
        _save_pass(work, runs, claims, plans)
    except DatabaseError:
        # One run's write must not hold back its batch, nor the batch come back failing forever.
        logger.exception("A batch of journey runs could not be written; writing them one by one.")
        for run in runs:
            try:
                _save_pass(_only(work, run), [run], {run.pk: claims[run.pk]}, plans)
            except DatabaseError:
                logger.exception("Journey run %s could not be written; it ends as failed.", run.pk)
                _fail_alone(run, claims[run.pk])
    return len(runs)


def _only(work: _Pass, run: JourneyRun) -> _Pass:
    """The part of a pass that concerns one run."""
    part = _Pass(now=work.now)
    part.new_steps = [s for s in work.new_steps if s.run_id == run.pk]
    part.closed_steps = [s for s in work.closed_steps if s.run_id == run.pk]
    for action_id, calls in work.calls.items():
        mine = [call for call in calls if call[0].run_id == run.pk]
        if mine:
            part.calls[action_id] = mine
    part.wake_now = int(run.status == RunStatus.ACTIVE and run.due_at is not None)
    part.wake_later = [run.due_at] if run.status == RunStatus.WAITING and run.due_at else []
    return part


def _fail_alone(run: JourneyRun, claim: datetime) -> None:
    fields = {
        "status": RunStatus.FAILED, "ended_at": timezone.now(), "claimed_until": None, "due_at": None,
        "current_step_run": None, "error": "Conduit could not record this run's next step (see the worker log).",
    }  # fmt: skip
    if run.journey.reentry == Journey.Reentry.AFTER_EXIT:
        fields["exclusive_key"] = None
    JourneyRun.objects.filter(pk=run.pk, claimed_until=claim, status__in=JourneyRun.OPEN).update(**fields)


@transaction.atomic
def _save_pass(
    work: _Pass, runs: list[JourneyRun], claims: dict[Any, datetime], plans: dict[int, CompiledJourney]
) -> None:
    """Write what this worker still holds: a run stopped or re-claimed meanwhile is left as it is."""
    held = set(
        JourneyRun.objects.select_for_update()
        .filter(pk__in=list(claims), status__in=JourneyRun.OPEN)
        .values_list("pk", "claimed_until")
    )
    owned = {pk for pk, lease in held if claims[pk] == lease}
    new_steps = [s for s in work.new_steps if s.run_id in owned]
    by_step = {s.pk: s for s in new_steps}
    actions = {pk: a for plan in plans.values() for pk, a in plan.actions.items()}
    for action_id, calls in work.calls.items():
        calls = [call for call in calls if call[0].pk in by_step]
        if not calls:
            continue
        invocations = invocations_enqueue(
            action=actions[action_id], values_list=[v for _, v, _ in calls], origin=Invocation.Origin.JOURNEY,
            origin_refs=[str(s.pk) for s, _, _ in calls], windows=[w for _, _, w in calls],
        )  # fmt: skip
        for (record, _, _), invocation in zip(calls, invocations, strict=True):
            record.invocation = invocation
            if invocation.status in Invocation.FINAL:  # the values did not fit the action: failed at once
                _apply_outcome(record.run, record, invocation, work.now)
                work.wake_now += 1
    StepRun.objects.bulk_create(new_steps)
    update_rows([s for s in work.closed_steps if s.run_id in owned], STEP_FIELDS)
    work.wake_now += enter_jumped([(run, target) for run, target in work.jumps if run.pk in owned], work.now)
    changed = [r for r in runs if r.pk in owned]
    for run in changed:
        run.claimed_until, run.updated_at = None, work.now
    update_rows(changed, RUN_FIELDS)
    due_now = work.wake_now
    if due_now:
        transaction.on_commit(lambda: wake_runs(due_now))
    # A short wait gets a message at its time (one per distinct second); longer waits are the sweeper's.
    horizon = work.now + timedelta(seconds=settings.CONDUIT_COUNTDOWN_MAX_S)
    seconds = {at.replace(microsecond=0) + timedelta(seconds=1) for at in work.wake_later if at <= horizon}
    for at in sorted(seconds)[:10]:
        transaction.on_commit(lambda at=at: wake_runs(1, max((at - timezone.now()).total_seconds(), 0)))


# --- an invocation ended: its run goes on ------------------------------------------


def _apply_outcome(run: JourneyRun, record: StepRun, invocation: Invocation, now: datetime) -> None:
    step = steps_of(run.journey).get(record.step_key, {"key": record.step_key})
    context = dict(run.context)
    decision = steps.after_call(step, steps.outcome_entry(invocation), context)
    run.context = context
    record.status = StepStatus.FAILED if decision.failed else StepStatus.SUCCEEDED
    record.outcome, record.finished_at, record.next_step = decision.outcome, now, decision.next
    record.error = (invocation.error or f"The call ended as {decision.outcome}.") if decision.failed else ""
    _follow(run, record.next_step, now, failed_step=record.step_key if decision.failed else "")


def on_calls_open(sender: Any, **kwargs: Any) -> None:
    """While a worker's calls are open: one batch of stored events and one of due runs.

    Asked ten times a second by each worker with calls open, mostly to find nothing: one plain query
    each first, not a locking transaction's three round trips (2-3% of a worker's time at 300 ms)."""
    if Event.objects.filter(processed_at=None).exists():
        events_process()
    if _due_runs(timezone.now()).exists():
        runs_advance()


def on_invocations_finished(sender: Any, invocations: list[Invocation], **kwargs: Any) -> None:
    """Inside the transaction that ended the invocations: their step runs end and their runs become due."""
    refs = [i.origin_ref for i in invocations if i.origin == Invocation.Origin.JOURNEY and i.origin_ref]
    if not refs:
        return
    now = timezone.now()
    records = {
        str(s.pk): s
        for s in StepRun.objects.select_related("run", "run__journey").filter(pk__in=refs, status=StepStatus.RUNNING)
    }
    changed_steps, changed_runs = [], []
    for invocation in invocations:
        record = records.get(invocation.origin_ref)
        if record is None or record.run.status != RunStatus.ACTIVE or record.run.current_step_run_id != record.pk:
            continue  # the run was stopped meanwhile: the outcome is kept on the invocation only
        _apply_outcome(record.run, record, invocation, now)
        changed_steps.append(record)
        record.run.updated_at = now
        changed_runs.append(record.run)
    update_rows(changed_steps, STEP_FIELDS, guard={"status": StepStatus.RUNNING})
    update_rows(changed_runs, RUN_FIELDS, guard={"status": RunStatus.ACTIVE})
    going_on = len(changed_runs)
    if going_on:
        transaction.on_commit(lambda: wake_runs(going_on))


# --- pause, resume, stop ------------------------------------------------------------


def runs_resume(*, journey: Journey) -> None:
    """After a resume: wake workers for the runs the pause held (after the commit)."""
    count = JourneyRun.objects.filter(journey=journey, status__in=JourneyRun.OPEN, due_at__lte=timezone.now()).count()
    if count:
        transaction.on_commit(lambda: wake_runs(count))


# --- sweeper ------------------------------------------------------------------------


def journeys_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Wake what is due and was not picked up: stored events, runs whose step or wait is due, expired leases."""
    now = now or timezone.now()
    grace = now - timedelta(seconds=settings.CONDUIT_SWEEP_GRACE_S)
    events = Event.objects.filter(processed_at=None, received_at__lte=grace).count()
    if events:
        wake_events()
    free = Q(claimed_until=None) | Q(claimed_until__lt=now)
    runs = (
        JourneyRun.objects.filter(free)
        .filter(
            Q(status=RunStatus.ACTIVE, due_at__lte=grace)
            | Q(status=RunStatus.WAITING, due_at__lte=now)  # a wait is resumed on time
            | Q(status__in=JourneyRun.OPEN, claimed_until__lt=now, due_at__lte=now)  # a worker died mid-pass
        )
        .exclude(journey__status=Journey.Status.PAUSED)
        .count()
    )
    if runs:
        wake_runs(runs)
    return {"events": events, "runs": runs, "timed_out": runs_time_out(now=now)}
