from django.db.models import QuerySet

from actions.models import Action
from tenants.models import Organization


def action_list(*, organization: Organization) -> QuerySet[Action]:
    return Action.objects.filter(organization=organization)


def action_palette(*, organization: Organization) -> QuerySet[Action]:
    return action_list(organization=organization).filter(status=Action.Status.ACTIVE)


def action_usage(*, action: Action) -> list[dict]:
    """The journeys that use the action ("used in"); filled once journeys exist."""
    return []
