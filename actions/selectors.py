from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from actions.delivery.auth import public_auth, value_at
from actions.delivery.rendering import PLACEHOLDER
from actions.models import Action, EmailSettings, EndpointLimit, Invocation
from actions.runtime import concurrency
from tenants.models import Organization

IN_USE = ("live", "paused")


def action_usage(*, action: Action) -> list[dict]:
    """The journeys that use the action ("used in"), closed versions left out."""
    journey_model = apps.get_model("journeys", "Journey")  # journeys depends on actions, not the reverse
    journeys = journey_model.objects.filter(actions=action).exclude(status="closed").order_by("name", "-version")
    return [{"id": j.pk, "name": j.name, "version": j.version, "status": j.status} for j in journeys]


def parameter_changes_that_break(before: list[dict], after: list[dict]) -> list[str]:
    """Edits a live journey cannot absorb: a parameter removed, its type changed, or newly required."""
    now = {p["name"]: p for p in after if isinstance(p, dict) and "name" in p}
    problems = []
    for old in before:
        new = now.get(old["name"])
        if new is None:
            problems.append(_("removes the parameter %(name)s") % {"name": old["name"]})
            continue
        if new.get("type") != old.get("type"):
            problems.append(
                _("changes the type of %(name)s from %(before)s to %(after)s")
                % {"name": old["name"], "before": old.get("type"), "after": new.get("type")}
            )
        was_required = old.get("required", True) and old.get("default") is None
        if not was_required and new.get("required", True) and new.get("default") is None:
            problems.append(_("makes %(name)s required") % {"name": old["name"]})
    return problems


def invocation_request_shown(invocation: Invocation) -> dict:
    """The rendered request as people see it: a secret value shows as {{secrets.NAME}} (it was stored so)."""
    return {key: value for key, value in (invocation.request or {}).items() if key != "secrets"}


def action_host(*, action: Action) -> str:
    """The host an HTTP action calls, its URL's placeholders filled with anything; "" when there is none."""
    try:
        return urlsplit(PLACEHOLDER.sub("x", action.url or "")).hostname or ""
    except ValueError:
        return ""


def action_destination(*, action: Action) -> str:
    """Where a call of the action goes: the host of an HTTP action, the SMTP server (host:port) of an email one."""
    if action.kind == Action.Kind.HTTP:
        return action_host(action=action)
    found = EmailSettings.objects.filter(organization_id=action.organization_id).first()
    return f"{found.host}:{found.port}" if found else ""


def action_auth_setting(*, action: Action, path: str) -> Any:
    """The stored value of one auth setting (a dotted path such as "inject.name"), None when unset; never a secret."""
    return value_at(action.auth_config or {}, path)


def action_auth_secret_is_set(*, action: Action, path: str) -> bool:
    """Whether the auth secret at `path` ("password", "request.headers") is stored; its value stays in the row."""
    return value_at(action.auth_secrets or {}, path) not in (None, "")


def action_auth_shown(*, action: Action) -> dict:
    """The action's auth as the API shows it: its settings, and for each secret only whether it is set."""
    return public_auth(action.auth_type, action.auth_config, action.auth_secrets)


def calls_in_flight(*, organization: Organization) -> list[dict]:
    """Calls of the organization open now, per host and worker process, each with the host's cap
    (`max_concurrent` of its endpoint limit, else the default); sorted by host, then worker."""
    opened = concurrency.open_calls(organization.pk)
    caps = dict(
        EndpointLimit.objects.filter(organization=organization, host__in={o.host for o in opened}).values_list(
            "host", "max_concurrent"
        )
    )
    return [
        {
            "host": o.host,
            "worker": o.worker,
            "calls": o.calls,
            "max_concurrent": caps.get(o.host, settings.CONDUIT_DEFAULT_MAX_CONCURRENT),
        }
        for o in sorted(opened, key=lambda o: (o.host, o.worker))
    ]


# --- what a call's outcome says to people who do not see where calls go ---------------------
# The transport's errors name the destination ("Connection refused by 203.0.113.5:443", "Refused:
# 10.0.0.1 is a private address"): action configuration. Without VIEW_DESTINATIONS a person reads
# the outcome in words instead; the stored text stays as it is, for technical users and admins.

OUTCOME_SENTENCES = {
    "timedout": gettext_lazy("The provider did not answer in time."),
    "refused": gettext_lazy("The call was refused: its destination is not allowed."),
    "rate_limited": gettext_lazy("The call was not made: a rate limit was reached."),
    "circuit_open": gettext_lazy("The call was not made: calls to this provider are paused after repeated failures."),
    "error": gettext_lazy("The call failed before the provider answered; technical users see why."),
}
OUTCOME_UNKNOWN = gettext_lazy("The call failed; technical users see why.")
HTTP_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def outcome_sentence(outcome: str) -> str:
    """A call's outcome (SPEC section 3) in a sentence that names no host, address or port."""
    kind, _sep, code = outcome.partition("_")
    if kind == "http" and code.isdigit():
        phrase = HTTP_PHRASES.get(int(code))
        if phrase:
            return _("The provider answered %(code)s (%(phrase)s).") % {"code": code, "phrase": phrase}
        return _("The provider answered %(code)s.") % {"code": code}
    if kind == "smtp" and code.isdigit():
        return _("The email server answered %(code)s.") % {"code": code}
    return str(OUTCOME_SENTENCES.get(outcome, OUTCOME_UNKNOWN))


def error_shown(error: str, outcome: str, *, sees_destinations: bool, attempted: bool = True) -> str:
    """A call's error as this person may see it: the stored text with VIEW_DESTINATIONS, else its outcome
    in words. A call never attempted that ended `error` failed on its values (a parameter that does not
    fit, a stopped journey): no destination was reached, and its text says what to fix."""
    if not error or sees_destinations or (outcome == "error" and not attempted):
        return error
    return outcome_sentence(outcome)


def invocation_error_shown(invocation: Invocation, *, sees_destinations: bool) -> str:
    return error_shown(
        invocation.error, invocation.outcome, sees_destinations=sees_destinations, attempted=invocation.attempts > 0
    )
