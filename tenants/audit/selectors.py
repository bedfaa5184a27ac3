"""Reads of the audit trail, always within one organization."""

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from tenants.models import AuditRecord


def actor_is(name: str) -> Q:
    """Records made by `name`: a username, an API key's prefix, or the name a record kept of either."""
    return Q(actor__username=name) | Q(api_key__prefix=name) | Q(actor_name=name)


def audit_records_of(*, organization_id: int | None, obj: models.Model) -> models.QuerySet[AuditRecord]:
    """One object's records (its History), newest first, within its organization."""
    content_type = ContentType.objects.get_for_model(type(obj))
    return (
        AuditRecord.objects.filter(organization_id=organization_id, content_type=content_type, object_id=obj.pk)
        .select_related("actor", "api_key")
        .order_by("-timestamp", "-pk")
    )
