"""The organization's SMTP settings, which every email action sends through."""

import copy
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from actions.delivery import emails
from actions.models import EmailSettings
from actions.services import credential_hosts
from config.common.problems import add_problems as add
from tenants.models import Organization

__all__ = ["email_settings_problems", "email_settings_save"]

LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){LABEL}(\.{LABEL})*$")


def _email_settings_apply(settings_: EmailSettings, data: dict[str, Any]) -> dict[str, list[str]]:
    """Copy `data` onto the settings; return every problem, by field."""
    before = credential_hosts.email_destination(settings_) if settings_.pk else None
    stored_password = settings_.password
    for field in ("host", "port", "security", "username", "default_from", "timeout_s"):
        if field in data:
            setattr(settings_, field, data[field])
    if data.get("password"):
        settings_.password = data["password"]
    if data.get("clear_password"):
        settings_.password = ""
    errors: dict[str, list[str]] = {}
    if not isinstance(settings_.host, str) or not HOST_NAME.match(settings_.host):
        add(errors, "host", _("a host name or IP address, without scheme or port, e.g. smtp.example.com"))
    for field, problems in emails.default_from_problems(settings_.default_from).items():
        add(errors, field, problems)
    try:
        settings_.full_clean(exclude=["organization", "host", "default_from"])
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            add(errors, field, messages)
    if before is not None:
        moved = credential_hosts.moved_password_problems(
            before=before, settings_=settings_, data=data, stored_password=stored_password
        )
        for field, messages in moved.items():
            add(errors, field, messages)
    return errors


def email_settings_problems(*, organization: Organization, data: dict[str, Any]) -> dict[str, list[str]]:
    """What saving `data` would refuse, by field (the admin form asks before saving)."""
    current = EmailSettings.objects.filter(organization=organization).first()
    return _email_settings_apply(copy.deepcopy(current) if current else EmailSettings(organization=organization), data)


@transaction.atomic
def email_settings_save(*, organization: Organization, data: dict[str, Any]) -> EmailSettings:
    """Set the organization's SMTP connection; a password left out keeps the stored one."""
    settings_ = EmailSettings.objects.select_for_update().filter(organization=organization).first()
    settings_ = settings_ or EmailSettings(organization=organization)
    errors = _email_settings_apply(settings_, data)
    if errors:
        raise ValidationError(errors)
    settings_.save()
    return settings_
