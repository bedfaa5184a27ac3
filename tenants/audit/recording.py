"""How a change becomes a record: django-auditlog computes the diff, this manager adds who, where and which
organization, and takes secrets out before anything is written."""

from typing import Any

from auditlog.models import LogEntryManager
from django.db import models

from tenants.audit.context import current_actor
from tenants.audit.registry import audited, scrubbed_changes, scrubbed_snapshot


class AuditRecordManager(LogEntryManager):
    def log_create(self, instance: models.Model, force_log: bool = False, **kwargs: Any) -> Any:
        entry = audited(type(instance))
        if entry is None:
            return None  # only registered models have receivers; a proxy's save is not a change to record
        actor = current_actor()
        kwargs.update(
            organization_id=entry.organization_id(instance),
            object_type=entry.object_type,
            door=actor.door,
            actor=actor.user,
            api_key=actor.api_key,
            actor_type=actor.kind,
            actor_name=actor.name,
            changes=scrubbed_changes(kwargs.get("changes"), entry),
            serialized_data=scrubbed_snapshot(self._get_serialized_data_or_none(instance), entry),
        )
        return super().log_create(instance, force_log=force_log, **kwargs)
