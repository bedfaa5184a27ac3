"""Limits on the calls an organization makes to one host (SPEC sections 3 and 10), set by people: calls per
period and calls open at once (`max_concurrent`)."""

import ipaddress
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from actions.models import EndpointLimit
from tenants.models import Organization

__all__ = [
    "endpoint_host_clean", "endpoint_limit_create", "endpoint_limit_delete", "endpoint_limit_update",
    "endpoint_limit_validate",
]  # fmt: skip

HOST_LABEL = re.compile(r"^(?!-)[a-z0-9\u00a1-\uffff-]{1,63}(?<!-)$")
BARE_HOST = gettext_lazy(
    "Give the bare host name, as in the action's URL (e.g. api.example.com): no scheme, path or port."
)
MAX_PERIOD_S = 86_400
MAX_CONCURRENT = 100_000
# The numbers of a limit: name, lowest, highest (None: no bound) and the message over the highest (None: the usual).
NUMBERS = (
    ("calls", 1, None, None),
    ("period_s", 1, MAX_PERIOD_S, gettext_lazy("Ensure this value is less than or equal to %(high)s (one day).")),
    ("max_concurrent", 1, MAX_CONCURRENT, None),
)


def endpoint_host_clean(value: str) -> str:
    """The host lowercased, as the runtime keys host limits; ValidationError on `host` otherwise."""
    host = (value or "").strip().lower()
    if not host:
        raise ValidationError({"host": [_("This field is required.")]})
    try:
        return str(ipaddress.ip_address(host.strip("[]")))  # an IP literal, v4 or v6
    except ValueError:
        pass
    labels = host.split(".")
    if len(host) > 253 or any(c in host for c in ":/?#@ ") or not all(HOST_LABEL.match(lb) for lb in labels):
        raise ValidationError({"host": [BARE_HOST]})
    return host


def endpoint_limit_validate(
    *, organization: Organization, data: dict[str, Any], instance: EndpointLimit | None = None
) -> dict[str, Any]:
    """The one check of a host limit, for the API and the admin: the cleaned fields, or ValidationError.

    On create, a number not given takes its default (300,000 calls per 60 s, 400 open at once)."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    host = data.get("host", instance.host if instance else "")
    try:
        cleaned["host"] = endpoint_host_clean(host)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    for name, low, high, too_high in NUMBERS:
        # Absent on create: the model's default, so a limit may set only some of its numbers.
        value = data.get(name, getattr(instance, name) if instance else EndpointLimit._meta.get_field(name).default)
        if value is None or isinstance(value, bool) or not isinstance(value, int):
            errors[name] = [_("A whole number is required.")]
        elif value < low:
            errors[name] = [_("Ensure this value is greater than or equal to %(low)s.") % {"low": low}]
        elif high is not None and value > high:
            message = too_high or _("Ensure this value is less than or equal to %(high)s.")
            errors[name] = [str(message) % {"high": high}]
        else:
            cleaned[name] = value
    if "host" in cleaned:
        taken = EndpointLimit.objects.filter(organization=organization, host=cleaned["host"])
        if instance is not None:
            taken = taken.exclude(pk=instance.pk)
        if taken.exists():
            errors["host"] = [_("%(host)s already has a limit; change that one instead.") % {"host": cleaned["host"]}]
    if errors:
        raise ValidationError(errors)
    return cleaned


def _save_limit(limit: EndpointLimit) -> EndpointLimit:
    try:
        with transaction.atomic():
            limit.save()
    except IntegrityError:  # the same host saved concurrently
        taken = _("%(host)s already has a limit; change that one instead.") % {"host": limit.host}
        raise ValidationError({"host": [taken]}) from None
    return limit


def endpoint_limit_create(*, organization: Organization, data: dict[str, Any]) -> EndpointLimit:
    cleaned = endpoint_limit_validate(organization=organization, data=data)
    return _save_limit(EndpointLimit(organization=organization, **cleaned))


def endpoint_limit_update(*, endpoint_limit: EndpointLimit, data: dict[str, Any]) -> EndpointLimit:
    cleaned = endpoint_limit_validate(organization=endpoint_limit.organization, data=data, instance=endpoint_limit)
    for name, value in cleaned.items():
        setattr(endpoint_limit, name, value)
    return _save_limit(endpoint_limit)


def endpoint_limit_delete(*, endpoint_limit: EndpointLimit) -> None:
    endpoint_limit.delete()
