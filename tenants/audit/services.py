"""Restoring an object to a version its audit trail kept, for the admin's History page and the API alike."""

from django.db import models
from django.utils.translation import gettext as _

from config.common.exceptions import Conflict
from tenants.audit.registry import audited
from tenants.models import AuditRecord


def audit_record_object(*, record: AuditRecord) -> models.Model | None:
    """The object a record is about, if it still exists, in the record's organization."""
    model = record.content_type.model_class()
    entry = audited(model) if model is not None else None
    if entry is None or record.object_id is None:
        return None
    obj = model._default_manager.filter(pk=record.object_id).first()
    return obj if obj is not None and entry.organization_id(obj) == record.organization_id else None


def audit_restore(*, obj: models.Model, record: AuditRecord) -> models.Model:
    """Put `obj` back as `record` kept it, through the model's own service so that its rules apply (a journey:
    into its draft). Returns what was written to; a Conflict where there is nothing to restore."""
    entry = audited(type(obj))
    if entry is None or entry.restore is None:
        raise Conflict(_("Only an action or a journey can be restored to an earlier version."))
    if record.action == AuditRecord.Action.DELETE or not record.snapshot:
        raise Conflict(_("This record keeps no version to restore."))
    return entry.restore(obj, record.snapshot)
