"""Who may enter a journey, and runs started other than by its entry event (a jump from another journey)."""

from datetime import datetime

from journeys.models import Journey, JourneyRun


def exclusive_key(journey: Journey, profile_id: int) -> str | None:
    """The key that holds a reentry rule: unique while the profile may not enter again (None: always may)."""
    if journey.reentry == Journey.Reentry.ALWAYS:
        return None
    return f"{journey.pk}:{profile_id}"


def enter_jumped(jumps: list[tuple[JourneyRun, int]], now: datetime) -> int:
    """Profiles that reached a jump enter its journey, if it is live and the organization's, as its reentry
    rule allows (a profile already in it stays where it is). Returns how many runs started."""
    targets = Journey.objects.filter(pk__in={t for _, t in jumps}, status=Journey.Status.LIVE).in_bulk()
    started = [
        JourneyRun(
            organization_id=run.organization_id,
            journey=journey,
            profile_id=run.profile_id,
            event_id=run.event_id,
            current_step=journey.start,
            due_at=now,
            started_at=now,
            exclusive_key=exclusive_key(journey, run.profile_id),
        )  # fmt: skip
        for run, target in jumps
        if (journey := targets.get(target)) is not None and journey.organization_id == run.organization_id
    ]
    JourneyRun.objects.bulk_create(started, ignore_conflicts=True)
    return len(started)  # at most: one skipped by its reentry rule is a message with nothing to do
