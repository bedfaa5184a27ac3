"""The admin's home page, one per role (issue 18): what each person comes to the admin for.

Marketers: their journeys with today's entries, completions and failures. Technical users: failing
actions, open circuits and the latest failed calls. Admins: both, and members and API keys. All of
it in the active organization only.
"""

from datetime import datetime, time, timedelta
from typing import Any

from django.db.models import Count, Q
from django.http import HttpRequest
from django.utils import timezone

from actions.models import Action, CircuitBreaker, Invocation
from journeys.models import Journey, JourneyRun
from tenants.middleware import active_organization, active_role
from tenants.models import ApiKey, Membership
from tenants.roles import Capability, Role, role_can

LISTED = 10


def _start_of_today() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def _journeys(organization, since: datetime) -> list[dict[str, Any]]:
    journeys = (
        Journey.objects.filter(organization=organization)
        .exclude(status=Journey.Status.CLOSED)
        .annotate(
            entered=Count("runs", filter=Q(runs__started_at__gte=since)),
            completed=Count("runs", filter=Q(runs__ended_at__gte=since, runs__status=JourneyRun.Status.COMPLETED)),
            failed=Count("runs", filter=Q(runs__ended_at__gte=since, runs__status=JourneyRun.Status.FAILED)),
        )
        .order_by("-updated_at")[: LISTED * 2]
    )
    return list(journeys)


def _technical(organization, now: datetime) -> dict[str, Any]:
    day_ago = now - timedelta(hours=24)
    failing = (
        Action.objects.filter(organization=organization)
        .annotate(
            failed=Count("invocations", filter=Q(invocations__created_at__gte=day_ago,
                                                 invocations__status=Invocation.Status.FAILED)),
            calls=Count("invocations", filter=Q(invocations__created_at__gte=day_ago)),
        )
        .filter(failed__gt=0)
        .order_by("-failed")[:LISTED]
    )  # fmt: skip
    return {
        "failing_actions": list(failing),
        "open_circuits": list(
            CircuitBreaker.objects.filter(organization=organization)
            .exclude(state=CircuitBreaker.State.CLOSED)
            .order_by("-opened_at")[:LISTED]
        ),
        "failed_invocations": list(
            Invocation.objects.filter(organization=organization, status=Invocation.Status.FAILED)
            .select_related("action")
            .order_by("-created_at")[:LISTED]
        ),
    }


def home_context(request: HttpRequest) -> dict[str, Any]:
    """What the home page shows this person, by their role in the active organization."""
    organization = active_organization(request)
    if organization is None:
        return {"home": None}
    role = "admin" if request.user.is_superuser else active_role(request)
    now = timezone.now()
    home: dict[str, Any] = {
        "organization": organization,
        "role": dict(Role.choices).get(role, role),
        "journeys": _journeys(organization, _start_of_today()),
        "can_edit_journeys": role_can(role, Capability.EDIT_JOURNEYS),
        "technical": role_can(role, Capability.MANAGE_ACTIONS),
        "admin": role_can(role, Capability.MANAGE_MEMBERS),
    }
    if home["technical"]:
        home |= _technical(organization, now)
    if home["admin"]:
        home["members"] = list(Membership.objects.filter(organization=organization).select_related("user"))
        home["api_keys"] = list(
            ApiKey.objects.filter(organization=organization, revoked_at__isnull=True).order_by("-created_at")[:LISTED]
        )
    return {"home": home}
