"""What a run's steps show to each person, and the event names an organization has received."""

from typing import Any

from django.db.models import F, Max

from actions.selectors import error_shown
from actions.send_windows import window_wait_shown
from journeys.models import Event, Profile, StepRun
from tenants.models import Organization

EVENT_NAMES_LISTED = 50
# What a run's page reads of each step's call, in the query of its steps.
STEP_CALL_FIELDS = {
    "call_attempts": F("invocation__attempts"),
    "call_window_wait_until": F("invocation__window_wait_until"),
    "call_time_zone": F("invocation__time_zone"),
}


def step_error_shown(step: StepRun, *, sees_destinations: bool) -> str:
    """A step's error as this person may see it: a call's error (the step has an invocation) as
    `actions.selectors.error_shown` shows it; a step that made no call failed on its own expressions."""
    if step.invocation_id is None:
        return step.error
    attempts = getattr(step, "call_attempts", None)  # annotated by RunViewSet's queryset
    attempted = (step.invocation.attempts if attempts is None else attempts) > 0
    return error_shown(step.error, step.outcome, sees_destinations=sees_destinations, attempted=attempted)


def step_window_wait(step: StepRun) -> dict[str, Any]:
    """A running call step held outside its send window: until when, and the run's words for it."""
    until, zone = getattr(step, "call_window_wait_until", None), getattr(step, "call_time_zone", "")
    if step.invocation_id is not None and not hasattr(step, "call_window_wait_until"):  # not annotated
        until, zone = step.invocation.window_wait_until, step.invocation.time_zone
    if step.status != StepRun.Status.RUNNING:
        until = None
    return {"window_wait_until": until, "waiting": window_wait_shown(until, zone or "")}


def recent_event_names(organization: Organization | None, limit: int = EVENT_NAMES_LISTED) -> list[str]:
    """The names of the events this organization has received, the most recently received first
    (at most `limit`): what the entry event's input offers."""
    if organization is None:
        return []
    names = (
        Event.objects.filter(organization=organization)
        .values("name")
        .annotate(last=Max("received_at"))
        .order_by("-last", "name")
        .values_list("name", flat=True)
    )
    return list(names[:limit])


def profiles_seen(profile_ids: set[int]) -> dict[int, dict]:
    """What expressions see as `profile`, by id: the attributes, and external_id as external systems
    name the customer, whatever the attributes say."""
    rows = Profile.objects.filter(pk__in=profile_ids).values_list("pk", "external_id", "attributes")
    return {pk: {**attributes, "external_id": external_id} for pk, external_id, attributes in rows}
