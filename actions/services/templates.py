"""Actions created from a template of the catalogue, asking only for credentials (see template_catalogue)."""

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from actions.models import Action, SecretValue
from actions.services import secret_values
from actions.services.actions import action_create, free_action_name
from actions.services.template_catalogue import TEMPLATES, Credential, Refused, Template
from tenants.models import Organization

__all__ = ["TEMPLATES", "Credential", "Template", "action_from_template", "template_summary"]


def _secret_keeper(organization: Organization) -> Callable[[str, str], str]:
    """A function that keeps a value as a secret of the organization and gives its name.

    The same value under the same prefix is kept once; another value gets the next free name.
    """

    def keep(prefix: str, value: str) -> str:
        existing = {s.name: s for s in SecretValue.objects.filter(organization=organization, name__startswith=prefix)}
        for secret in existing.values():
            if secret.value == value:
                return secret.name
        name, n = prefix, 1
        while name in existing:
            n += 1
            name = f"{prefix}_{n}"
        secret_values.secret_value_save(organization=organization, data={"name": name, "value": value})
        return name

    return keep


def _credential_problems(template: Template, credentials: Any) -> dict[str, str]:
    if not isinstance(credentials, dict):
        return {"credentials": _("must be an object of credential name to value")}
    known = {c.name for c in template.credentials}
    unknown = _("not a credential of this template")
    errors = {f"credentials.{name}": unknown for name in credentials if name not in known}
    for credential in template.credentials:
        value = credentials.get(credential.name)
        if value is not None and not isinstance(value, str):
            errors[f"credentials.{credential.name}"] = _("must be text")
        elif credential.required and not (value or "").strip():
            errors[f"credentials.{credential.name}"] = _("%(label)s is required") % {"label": credential.label}
    return errors


ERROR_FIELD = {"auth": "credentials", "signing_secret": "credentials.signing_secret"}


@transaction.atomic
def action_from_template(
    *, organization: Organization, key: Any, credentials: Any, name: str | None = None,
    status: str = Action.Status.DRAFT, user: Any = None,
) -> Action:  # fmt: skip
    """Create an ordinary action from a template; ValidationError naming the credential at fault."""
    template = TEMPLATES.get(key) if isinstance(key, str) else None
    if template is None:
        problem = _("no template %(key)s; choose one of %(keys)s") % {"key": repr(key), "keys": ", ".join(TEMPLATES)}
        raise ValidationError({"template": [problem]})
    errors = _credential_problems(template, credentials)
    if errors:
        raise ValidationError({k: [v] for k, v in errors.items()})
    keep = _secret_keeper(organization)
    try:
        data = template.build({k: v for k, v in credentials.items() if isinstance(v, str)}, keep)
    except Refused as exc:
        raise ValidationError({k: [v] for k, v in exc.errors.items()}) from None
    data.update(
        name=free_action_name(organization, name or template.name),
        description=template.description,
        status=status,
        parameters=[{**p, "description": str(p["description"])} for p in template.parameters],
    )
    try:
        return action_create(organization=organization, data=data, user=user)
    except ValidationError as exc:
        shown: dict[str, list[str]] = {}
        named = {**ERROR_FIELD, "url": f"credentials.{template.url_from}" if template.url_from else "credentials"}
        for field_name, messages in exc.message_dict.items():
            shown.setdefault(named.get(field_name, field_name), []).extend(messages)
        raise ValidationError(shown) from None


def template_summary(template: Template) -> dict[str, Any]:
    """A template as the API and the admin list it."""
    return {
        "key": template.key,
        "name": template.name,
        "provider": template.provider,
        "category": template.category,
        "description": template.description,
        "docs_url": template.docs_url,
        "request": template.request,
        "credentials": [
            {"name": c.name, "label": c.label, "secret": c.secret, "required": c.required, "help": c.help}
            for c in template.credentials
        ],
        "parameters": [dict(p) for p in template.parameters],
    }
