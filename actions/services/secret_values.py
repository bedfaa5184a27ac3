"""Every write to an organization's secret values ({{secrets.NAME}} in action templates)."""

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from actions.delivery import secret_references
from actions.models import Action, SecretValue
from config.common.exceptions import Conflict
from config.common.identifiers import NAME
from config.common.problems import add_problems as add
from tenants.models import Organization

__all__ = [
    "SECRET_VALUE_MAX", "secret_value_delete", "secret_value_problems", "secret_value_save", "secret_value_usage",
    "secret_values_used",
]  # fmt: skip


SECRET_VALUE_MAX = 8192


def secret_values_used(*, organization: Organization) -> dict[str, list[str]]:
    """Each secret value's name -> the names of the organization's actions whose templates reference it."""
    used: dict[str, list[str]] = {}
    actions = Action.objects.filter(organization=organization, kind=Action.Kind.HTTP)
    for name, url, query, headers, body in actions.values_list("name", "url", "query", "headers", "body"):
        for secret in sorted(secret_references.names_in(json.dumps([url, query, headers, body]))):
            used.setdefault(secret, []).append(name)
    return used


def secret_value_usage(*, organization: Organization, name: str) -> list[str]:
    """Names of the organization's actions whose templates reference {{secrets.NAME}}."""
    return secret_values_used(organization=organization).get(name, [])


def secret_value_problems(
    *, organization: Organization, data: dict[str, Any], instance: SecretValue | None
) -> dict[str, list[str]]:
    """What saving `data` would refuse, by field."""
    errors: dict[str, list[str]] = {}
    name = data.get("name", instance.name if instance else None)
    if not isinstance(name, str) or not NAME.match(name):
        add(errors, "name", _("letters, digits and _ (not starting with a digit), at most 64, e.g. SLACK_WEBHOOK"))
    value = data.get("value")
    if instance is None or "value" in data:
        if not isinstance(value, str) or not value:
            add(errors, "value", _("the secret's value is required"))
        elif len(value) > SECRET_VALUE_MAX or "\x00" in value:
            add(errors, "value", _("at most %(limit)s characters of text") % {"limit": SECRET_VALUE_MAX})
        elif len(value) < 4:  # shorter ones could not be masked in records without masking everything
            add(errors, "value", _("at least 4 characters"))
    if not isinstance(data.get("description", ""), str) or len(data.get("description", "")) > 200:
        add(errors, "description", _("at most %(limit)s characters of text") % {"limit": 200})
    taken = SecretValue.objects.filter(organization=organization, name=name).exclude(pk=getattr(instance, "pk", None))
    if isinstance(name, str) and taken.exists():
        add(errors, "name", _("this organization already has a secret value named %(name)s") % {"name": name})
    return errors


@transaction.atomic
def secret_value_save(
    *, organization: Organization, data: dict[str, Any], instance: SecretValue | None = None
) -> SecretValue:
    """Create, or update (a value left out keeps the stored one). Renaming a used secret is refused."""
    errors = secret_value_problems(organization=organization, data=data, instance=instance)
    if errors:
        raise ValidationError(errors)
    secret = instance or SecretValue(organization=organization)
    if instance is not None and data.get("name", instance.name) != instance.name:
        used = secret_value_usage(organization=organization, name=instance.name)
        if used:
            raise Conflict(_in_use(used, instance.name), {"name": [_used_by(used)]})
    for field in ("name", "value", "description"):
        if field in data:
            setattr(secret, field, data[field])
    try:
        with transaction.atomic():
            secret.save()
    except IntegrityError:
        taken = _("this organization already has a secret value named %(name)s") % {"name": secret.name}
        raise ValidationError({"name": [taken]}) from None
    return secret


def _in_use(used: list[str], name: str) -> str:
    return _("The actions %(actions)s use %(reference)s: change them first.") % {
        "actions": ", ".join(used), "reference": "{{secrets." + name + "}}",
    }  # fmt: skip


def _used_by(used: list[str]) -> str:
    return _("Used by actions: %(actions)s.") % {"actions": ", ".join(used)}


def secret_value_delete(*, secret: SecretValue) -> None:
    used = secret_value_usage(organization=secret.organization, name=secret.name)
    if used:
        raise Conflict(_in_use(used, secret.name), {"secret": [_used_by(used)]})
    secret.delete()
