"""Roles and what each may do (SPEC section 1). The one table every door consults."""

from enum import StrEnum

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    TECHNICAL = "technical", _("Technical")
    MARKETER = "marketer", _("Marketer")
    VIEWER = "viewer", _("Viewer")


class Capability(StrEnum):
    MANAGE_MEMBERS = "manage_members"  # members and API keys
    MANAGE_ACTIONS = "manage_actions"  # create/edit/delete/test actions, see configuration
    VIEW_PALETTE = "view_palette"  # action name, description, parameters
    EDIT_JOURNEYS = "edit_journeys"  # create/edit/publish/stop journeys
    VIEW_JOURNEYS = "view_journeys"  # journeys, reports, invocation statuses
    VIEW_INVOCATION_BODIES = "view_invocation_bodies"
    # Where calls go (host, IP, port) in errors and on the circuit breakers: action configuration.
    VIEW_DESTINATIONS = "view_destinations"
    WRITE_EVENTS = "write_events"
    VIEW_AUDIT_LOG = "view_audit_log"  # who changed what in the configuration, and when
    WRITE_PROFILES = "write_profiles"


_EVERYONE = {Capability.VIEW_PALETTE, Capability.VIEW_JOURNEYS}

ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.ADMIN: frozenset(Capability),
    Role.TECHNICAL: frozenset(
        _EVERYONE
        | {
            Capability.MANAGE_ACTIONS,
            Capability.EDIT_JOURNEYS,
            Capability.VIEW_INVOCATION_BODIES,
            Capability.VIEW_DESTINATIONS,
            Capability.WRITE_EVENTS,
            Capability.WRITE_PROFILES,
            Capability.VIEW_AUDIT_LOG,
        }
    ),
    Role.MARKETER: frozenset(_EVERYONE | {Capability.EDIT_JOURNEYS}),
    Role.VIEWER: frozenset(_EVERYONE),
}


class Scope(models.TextChoices):
    EVENTS_WRITE = "events:write", _("Send events")
    PROFILES_WRITE = "profiles:write", _("Write profiles")
    READ = "read", _("Read")


# What an organization API key may do, by scope. Keys never manage members or actions.
SCOPE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Scope.EVENTS_WRITE: frozenset({Capability.WRITE_EVENTS}),
    Scope.PROFILES_WRITE: frozenset({Capability.WRITE_PROFILES}),
    Scope.READ: frozenset(_EVERYONE),
}


def role_can(role: str | None, capability: Capability) -> bool:
    return role is not None and capability in ROLE_CAPABILITIES.get(role, frozenset())


def scopes_can(scopes: list[str], capability: Capability) -> bool:
    return any(capability in SCOPE_CAPABILITIES.get(scope, frozenset()) for scope in scopes)
