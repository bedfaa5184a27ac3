"""What a run's steps show to each person."""

from actions.selectors import error_shown
from journeys.models import StepRun


def step_error_shown(step: StepRun, *, sees_destinations: bool) -> str:
    """A step's error as this person may see it: a call's error (the step has an invocation) as
    `actions.selectors.error_shown` shows it; a step that made no call failed on its own expressions."""
    if step.invocation_id is None:
        return step.error
    attempts = getattr(step, "call_attempts", None)  # annotated by RunViewSet's queryset
    attempted = (step.invocation.attempts if attempts is None else attempts) > 0
    return error_shown(step.error, step.outcome, sees_destinations=sees_destinations, attempted=attempted)
