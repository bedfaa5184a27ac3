"""Every write to an organization's secret values ({{secrets.NAME}} in action templates)."""

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

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
        add(errors, "name", "letters, digits and _ (not starting with a digit), at most 64, e.g. SLACK_WEBHOOK")
    value = data.get("value")
    if instance is None or "value" in data:
        if not isinstance(value, str) or not value:
            add(errors, "value", "the secret's value is required")
        elif len(value) > SECRET_VALUE_MAX or "\x00" in value:
            add(errors, "value", f"at most {SECRET_VALUE_MAX} characters of text")
        elif len(value) < 4:  # shorter ones could not be masked in records without masking everything
            add(errors, "value", "at least 4 characters")
    if not isinstance(data.get("description", ""), str) or len(data.get("description", "")) > 200:
        add(errors, "description", "at most 200 characters of text")
    taken = SecretValue.objects.filter(organization=organization, name=name).exclude(pk=getattr(instance, "pk", None))
    if isinstance(name, str) and taken.exists():
        add(errors, "name", f"this organization already has a secret value named {name}")
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
            raise Conflict(f"The actions {', '.join(used)} use {{{{secrets.{instance.name}}}}}: change them first.",
                           {"name": [f"Used by actions: {', '.join(used)}."]})  # fmt: skip
    for field in ("name", "value", "description"):
        if field in data:
            setattr(secret, field, data[field])
    try:
        with transaction.atomic():
            secret.save()
    except IntegrityError:
        raise ValidationError({"name": [f"this organization already has a secret value named {secret.name}"]}) from None
    return secret


def secret_value_delete(*, secret: SecretValue) -> None:
    used = secret_value_usage(organization=secret.organization, name=secret.name)
    if used:
        raise Conflict(f"The actions {', '.join(used)} use {{{{secrets.{secret.name}}}}}: change them first.",
                       {"secret": [f"Used by actions: {', '.join(used)}."]})  # fmt: skip
    secret.delete()
