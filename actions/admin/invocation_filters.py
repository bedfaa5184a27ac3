"""The action filter of the invocation log, and the actions an admin user may pick in it and in metrics."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy

from actions.models import Action
from tenants.middleware import active_organization

ACTION_PARAMETER = "action__id__exact"


def actions_of(request: HttpRequest) -> QuerySet[Action]:
    """The actions the admin user may pick: the active organization's (all of them for superusers)."""
    actions = Action.objects.select_related("organization")
    if request.user.is_superuser:
        return actions
    return actions.filter(organization=active_organization(request))


class ActionListFilter(admin.SimpleListFilter):
    """The action filter, with the active organization's actions only."""

    title = gettext_lazy("action")
    parameter_name = ACTION_PARAMETER

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[Any, str]]:
        actions = actions_of(request).order_by("name", "pk")
        if request.user.is_superuser:
            return [(a.pk, f"{a.name} ({a.organization.slug})") for a in actions]
        return [(a.pk, a.name) for a in actions]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(action_id=self.value()) if self.value() else queryset
