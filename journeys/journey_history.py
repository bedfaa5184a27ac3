"""Restoring a journey to an earlier version kept by the audit trail (the History page's button)."""

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from config.common.exceptions import Conflict
from journeys.models import Journey
from journeys.services import JOURNEY_FIELDS, journey_new_version, journey_update


def _draft_of(journey: Journey) -> Journey:
    """The draft a restore writes into: the journey itself, the draft replacing it, or a new version of it."""
    if journey.status == Journey.Status.DRAFT:
        return journey
    newer = Journey.objects.filter(previous=journey).first()
    if newer is None:
        return journey_new_version(journey=journey)  # refuses an archived journey, in its own words
    if newer.status != Journey.Status.DRAFT:
        raise Conflict(
            _("Version %(version)s has replaced this one: restore from its history instead.")
            % {"version": newer.version}
        )
    return newer


@transaction.atomic
def journey_restore(*, journey: Journey, snapshot: dict[str, Any]) -> Journey:
    """Put an earlier version's settings and steps into the journey's draft (a live version never changes),
    checked as any edit is; returns the draft."""
    data = {name: snapshot[name] for name in JOURNEY_FIELDS if name in snapshot}
    return journey_update(journey=_draft_of(journey), data=data)
