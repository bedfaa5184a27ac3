"""Runs ended from outside their steps: the journey stopped, or an exit event arrived.

Either way the run's open step is stopped and its call, if not yet sent, is cancelled; a call
already on the wire ends on its invocation only (the engine sees the run ended and goes no further).
Both lock the runs first, so a worker's pass on them either commits before or writes nothing.
"""

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from actions.models import Invocation
from journeys.models import Event, Journey, JourneyRun, StepRun

RunStatus, StepStatus = JourneyRun.Status, StepRun.Status


def _end_open_runs(run_ids: list, now: datetime, *, cancelled_because: str, **fields) -> int:
    """Inside the caller's transaction: stop the open steps of these (locked) runs, cancel their unsent
    calls, and write `fields` on the runs still open."""
    open_runs = JourneyRun.objects.filter(pk__in=run_ids, status__in=JourneyRun.OPEN)
    open_steps = list(
        StepRun.objects.filter(run__in=open_runs, status__in=[StepStatus.RUNNING, StepStatus.WAITING]).values_list(
            "pk", flat=True
        )
    )
    Invocation.objects.filter(
        origin=Invocation.Origin.JOURNEY,
        status=Invocation.Status.PENDING,
        origin_ref__in=[str(pk) for pk in open_steps],
    ).update(status=Invocation.Status.FAILED, outcome="error", finished_at=now, error=cancelled_because)
    StepRun.objects.filter(pk__in=open_steps).update(status=StepStatus.STOPPED, finished_at=now)
    return open_runs.update(
        ended_at=now, due_at=None, claimed_until=None, current_step_run=None, updated_at=now, **fields
    )


def runs_stop(*, journey: Journey, now: datetime) -> int:
    """End the open runs of a journey (inside the caller's transaction); their unsent calls are cancelled."""
    locked = list(
        JourneyRun.objects.select_for_update()
        .filter(journey=journey, status__in=JourneyRun.OPEN)
        .values_list("pk", flat=True)
    )
    return _end_open_runs(
        locked, now, cancelled_because="The journey was stopped before this call was sent.",
        status=RunStatus.STOPPED, exclusive_key=None, error="The journey was stopped.",
    )  # fmt: skip


def runs_exit(*, events: list[Event], now: datetime) -> int:
    """Inside the transaction that processes `events`: each one named in a journey's exit_events ends its
    profile's open runs of that journey as `exited`, recorded with the event. Returns how many ended."""
    names = {e.name for e in events}
    journeys = [
        journey
        for journey in Journey.objects.filter(
            organization_id__in={e.organization_id for e in events},
            status__in=[Journey.Status.LIVE, Journey.Status.PAUSED],
        ).exclude(exit_events=[])
        if names & set(journey.exit_events)
    ]
    if not journeys:
        return 0
    wanted = Q()
    first_event: dict[tuple[int, int], Event] = {}  # (journey, profile) -> the first exit event of the batch
    for journey in journeys:
        for event in events:
            if event.organization_id == journey.organization_id and event.name in journey.exit_events:
                first_event.setdefault((journey.pk, event.profile_id), event)
                wanted |= Q(journey=journey, profile_id=event.profile_id)
    locked = JourneyRun.objects.select_for_update().filter(wanted, status__in=JourneyRun.OPEN)
    by_ending: dict[tuple[int, bool], list] = defaultdict(list)  # (event, profile may enter again) -> runs
    reentry = {journey.pk: journey.reentry for journey in journeys}
    for pk, journey_id, profile_id in locked.values_list("pk", "journey_id", "profile_id"):
        event = first_event[(journey_id, profile_id)]
        by_ending[(event.pk, reentry[journey_id] == Journey.Reentry.AFTER_EXIT)].append(pk)
    ended = 0
    for (event_id, may_enter_again), run_ids in by_ending.items():
        fields = {"exclusive_key": None} if may_enter_again else {}
        ended += _end_open_runs(
            run_ids, now, cancelled_because="The profile left the journey (exit event) before this call was sent.",
            status=RunStatus.EXITED, exit_event_id=event_id, **fields,
        )  # fmt: skip
    return ended


def runs_time_out(*, now: datetime) -> int:
    """End the runs still open past their journey's max_run_days as `timed_out` (the sweeper, each pass)."""
    ended = 0
    lifetimes = Journey.objects.filter(runs__status__in=JourneyRun.OPEN).values_list("max_run_days", flat=True)
    for days in set(lifetimes):
        too_old = JourneyRun.objects.filter(
            journey__max_run_days=days, status__in=JourneyRun.OPEN, started_at__lt=now - timedelta(days=days)
        )
        with transaction.atomic():
            locked = list(too_old.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True)[:1000])
            ended += _end_open_runs(
                locked, now, cancelled_because="The run reached its journey's longest run before this call was sent.",
                status=RunStatus.TIMED_OUT, exclusive_key=None,
                error=f"Still open after {days} days, the journey's longest run.",
            )  # fmt: skip
    return ended
