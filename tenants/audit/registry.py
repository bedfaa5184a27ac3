"""Which models the audit trail records, under which object type, and which of their fields are secret."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auditlog.registry import auditlog
from django.db import models

from config.encryption import EncryptedJSONField, EncryptedTextField

# What a record shows of a secret field that changed: never its value, encrypted or not.
SECRET_CHANGED = "changed"
# The record itself says these (its organization, object id and time), or they change with every save.
NEVER_RECORDED = ("id", "organization", "created_at", "updated_at")


@dataclass(frozen=True)
class Audited:
    model: type[models.Model]
    object_type: str
    secret_fields: frozenset[str]
    # (object, snapshot) -> the object restored: the model's own service, so that its rules apply.
    restore: Callable[[models.Model, dict[str, Any]], models.Model] | None

    def organization_id(self, instance: models.Model) -> int | None:
        if self.model._meta.label == "tenants.Organization":
            return instance.pk
        return getattr(instance, "organization_id", None)


_by_model: dict[type[models.Model], Audited] = {}


def hidden(value: Any) -> str:
    """django-auditlog's mask (AUDITLOG_MASK_CALLABLE): a secret's value is replaced whole, not in part,
    and an empty one stays empty (no secret was set)."""
    return "" if value in ("", "None", "{}") else SECRET_CHANGED


def audit_register(
    model: type[models.Model],
    *,
    object_type: str,
    exclude: tuple[str, ...] = (),
    restore: Callable[[models.Model, dict[str, Any]], models.Model] | None = None,
) -> None:
    """Record every create, update and delete of `model`. Encrypted fields are secret by construction:
    recorded as "changed", never snapshotted. A model with a `restore` keeps a snapshot of its other fields."""
    secrets = frozenset(
        f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField | EncryptedJSONField)
    )
    # Its own columns only: reverse relations and many-to-many lists are other objects' changes.
    recorded = [f.name for f in model._meta.concrete_fields if f.name not in (*NEVER_RECORDED, *exclude)]
    options: dict[str, Any] = {}
    if restore is not None:
        options = {"serialize_data": True, "serialize_kwargs": {"fields": [n for n in recorded if n not in secrets]}}
    auditlog.register(model, include_fields=recorded, mask_fields=sorted(secrets), **options)
    _by_model[model] = Audited(model=model, object_type=object_type, secret_fields=secrets, restore=restore)


def audited(model: type[models.Model]) -> Audited | None:
    return _by_model.get(model)


def object_types() -> dict[str, type[models.Model]]:
    """Object type name -> model, for filters and for what a record names."""
    return {entry.object_type: entry.model for entry in _by_model.values()}


def scrubbed_changes(changes: dict[str, Any] | None, entry: Audited) -> dict[str, Any] | None:
    """The diff with every secret field that was set or cleared as [None, "changed"], whatever the mask gave."""
    if not changes:
        return changes
    kept = {}
    for name, pair in changes.items():
        if name not in entry.secret_fields:
            kept[name] = pair
        elif any(value not in (None, "", "None", {}) for value in pair):
            kept[name] = [None, SECRET_CHANGED]
    return kept or None


def scrubbed_snapshot(data: dict[str, Any] | None, entry: Audited) -> dict[str, Any] | None:
    if not data:
        return data
    fields = {name: value for name, value in data.get("fields", {}).items() if name not in entry.secret_fields}
    return {**data, "fields": fields}
