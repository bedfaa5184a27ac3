"""wait_event steps: a run waits until its profile sends an event (with an optional condition), or times out.

The run waits as WAITING with `awaiting_event` set and `due_at` at its timeout (the engine takes the
timeout path then). Here, inside the transaction that processes a batch of events, each event resumes
the runs of its profile waiting for its name whose condition holds; the event is then what
expressions see as steps.<key>.event. A run a worker holds at that moment (its timeout came) is left
to the worker: the timeout wins.
"""

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db.models import Q

from config.common.db import update_rows
from journeys import steps
from journeys.expressions import EvaluationError, charged_to, evaluate
from journeys.models import Event, JourneyRun, StepRun
from journeys.selectors import profiles_seen

logger = logging.getLogger(__name__)
RunStatus, StepStatus = JourneyRun.Status, StepRun.Status
RESUMED_RUN_FIELDS = ["status", "current_step", "current_step_run", "due_at", "awaiting_event", "context",
                      "ended_at", "error", "exclusive_key", "updated_at"]  # fmt: skip


def _shown(event: Event) -> dict[str, Any]:
    return {"name": event.name, "data": event.data, "occurred_at": event.occurred_at.isoformat()}


def runs_resume_on_events(*, events: list[Event], now: datetime) -> int:
    """Resume the runs these events were waited for by; returns how many went on."""
    waiting = list(
        JourneyRun.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(
            status=RunStatus.WAITING,
            awaiting_event__in={e.name for e in events},
            profile_id__in={e.profile_id for e in events},
        )  # fmt: skip
        .filter(Q(claimed_until=None) | Q(claimed_until__lt=now))
        .select_related("journey", "current_step_run")
    )
    if not waiting:
        return 0
    by_profile: dict[tuple[int, str], list[Event]] = defaultdict(list)
    full = Event.objects.filter(pk__in=[e.pk for e in events]).order_by("pk")
    for event in full:
        by_profile[(event.profile_id, event.name)].append(event)
    profiles = profiles_seen({r.profile_id for r in waiting})
    resumed_runs, closed_steps = [], []
    for run in waiting:
        step = steps.steps_of(run.journey).get(run.current_step)
        if step is None or step.get("type") != "wait_event":
            continue
        for event in by_profile.get((run.profile_id, run.awaiting_event), []):
            if event.organization_id != run.organization_id:
                continue
            scope = {"profile": profiles.get(run.profile_id, {}), "event": _shown(event),
                     "steps": dict(run.context), "now": now}  # fmt: skip
            try:
                with charged_to(run.organization_id):
                    matches = not step.get("condition") or evaluate(step["condition"], scope) is True
            except EvaluationError as exc:
                logger.info("The condition of step %s of run %s failed: %s", step["key"], run.pk, exc)
                matches = False  # an event that cannot be judged does not resume; the timeout still comes
            if matches:
                _resume(run, step, event, now, closed_steps)
                resumed_runs.append(run)
                break
    update_rows(closed_steps, ["status", "outcome", "next_step", "finished_at"])
    update_rows(resumed_runs, RESUMED_RUN_FIELDS, guard={"status": RunStatus.WAITING})
    return len(resumed_runs)


def _resume(run: JourneyRun, step: dict, event: Event, now: datetime, closed_steps: list[StepRun]) -> None:
    run.context = {**run.context, step["key"]: {"status": "received", "event": _shown(event)}}
    open_step = run.current_step_run
    if open_step is not None:
        open_step.status, open_step.outcome, open_step.finished_at = StepStatus.SUCCEEDED, "received", now
        open_step.next_step = step.get("next") or ""
        closed_steps.append(open_step)
    run.awaiting_event, run.current_step_run, run.updated_at = "", None, now
    if step.get("next"):
        run.current_step, run.status, run.due_at = step["next"], RunStatus.ACTIVE, now
    else:  # publishing asks for a next step; a draft's test run may lack one
        run.status, run.due_at, run.ended_at = RunStatus.COMPLETED, None, now
