"""Stored credentials are bound to the hosts they were given for (issue 16, item 11).

A write-only secret is kept when an edit leaves it out. That must not let it follow the action to
another host: an edit that moves the action's URL, its token URL or the SMTP server to another
origin (scheme, host and port, compared normalised) is refused, naming the field, unless the
credentials sent there are given again in the same edit (or removed).
"""

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from actions.delivery import auth as auth_module
from actions.models import Action, EmailSettings

__all__ = [
    "action_destinations",
    "email_destination",
    "moved_credential_problems",
    "moved_password_problems",
    "normal_host",
]

DEFAULT_PORTS = {"https": 443, "http": 80}
Origin = tuple[str, str, int | None]


def normal_host(host: str) -> str:
    """A host name as a resolver sees it: case, a trailing dot, Unicode against its IDNA form, IPv6 spelling."""
    host = host.strip().lower().removesuffix(".")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def url_origin(url: Any) -> Origin | None:
    """(scheme, host, port) of `url`, the default port filled in; None when there is no URL to go to."""
    if not isinstance(url, str) or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ("", url, None)  # not a URL: a change all the same (validation names the problem)
    scheme = parts.scheme.lower()
    return scheme, normal_host(parts.hostname or ""), port or DEFAULT_PORTS.get(scheme)


def action_destinations(action: Action) -> dict[str, Origin | None]:
    """Where the action's credentials go, by the setting that says it: its URL (the credential, or the
    token fetched with it) and the token endpoint's URL (the client secret, the token request's secrets)."""
    destinations = {"url": url_origin(action.url)}
    config = action.auth_config if isinstance(action.auth_config, dict) else {}
    if action.auth_type == Action.AuthType.OAUTH2_CLIENT_CREDENTIALS:
        destinations["token_url"] = url_origin(config.get("token_url"))
    elif action.auth_type == Action.AuthType.TOKEN_ENDPOINT:
        destinations["request.url"] = url_origin(auth_module.value_at(config, "request.url"))
    return destinations


def _kept_secrets(action: Action, data: dict[str, Any], stored_type: str, stored_secrets: dict) -> list[str]:
    """The secrets of `action` that come from storage rather than from this edit."""
    if action.auth_type != stored_type:
        return []  # another auth type keeps nothing of the old one
    given = data.get("auth") if isinstance(data.get("auth"), dict) else {}
    spec = auth_module.AUTH_SPECS.get(action.auth_type)
    return [
        path
        for path in (spec.all_secrets if spec else ())
        if auth_module.value_at(stored_secrets, path) not in (None, "", {})
        and auth_module.value_at(given, path) in (None, "")
    ]


def moved_credential_problems(
    *, before: dict[str, Origin | None], action: Action, data: dict[str, Any], stored_type: str, stored_secrets: dict
) -> dict[str, list[str]]:
    """Each setting that moves stored credentials to another origin, with what to give again."""
    kept = _kept_secrets(action, data, stored_type, stored_secrets)
    if not kept:
        return {}
    problems: dict[str, list[str]] = {}
    joiner = _("and")
    again = f" {joiner} ".join(kept)
    for setting, origin in action_destinations(action).items():
        if origin is None or origin == before.get(setting):
            continue
        if setting == "url":
            problems.setdefault("url", []).append(
                _(
                    "another host (scheme, host or port) than the stored credentials were given for: give "
                    "%(again)s again in the same change, or another auth type"
                )
                % {"again": again}
            )
        else:
            problems.setdefault("auth", []).append(
                _(
                    "%(setting)s: another host (scheme, host or port) than the stored credentials were given for: "
                    "give %(again)s again in the same change"
                )
                % {"setting": setting, "again": again}
            )
    return problems


def email_destination(settings_: EmailSettings) -> tuple[str, Any]:
    """(host, port) of the SMTP server, the host normalised as for URLs."""
    host = settings_.host if isinstance(settings_.host, str) else ""
    try:
        port = int(settings_.port)
    except (TypeError, ValueError):
        port = settings_.port
    return normal_host(host), port


def moved_password_problems(
    *, before: tuple[str, Any], settings_: EmailSettings, data: dict[str, Any], stored_password: str
) -> dict[str, list[str]]:
    """The stored SMTP password goes only to the server it was given for."""
    if not stored_password or data.get("password") or data.get("clear_password"):
        return {}
    host, port = email_destination(settings_)
    if (host, port) == before:
        return {}
    field = "host" if host != before[0] else "port"
    return {
        field: [
            _(
                "another SMTP server than the stored password was given for: give the password again in the same "
                "change, or remove it"
            )
        ]
    }
