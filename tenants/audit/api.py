"""GET /api/v1/orgs/{org}/audit-log/: the organization's configuration changes, read only (admin and technical)."""

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from config.common.filters import IdFilter, UtcDateTimeFilter
from tenants.audit.registry import audited, object_types
from tenants.audit.selectors import actor_is
from tenants.audit.services import audit_record_object, audit_restore
from tenants.models import AuditRecord
from tenants.roles import Capability
from tenants.scoping import OrgScopedViewSet

CHANGES = {
    AuditRecord.Action.CREATE: "created",
    AuditRecord.Action.UPDATE: "updated",
    AuditRecord.Action.DELETE: "deleted",
}


def _object_type_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(object_types())]


class AuditRecordFilter(django_filters.FilterSet):
    object_type = django_filters.ChoiceFilter(
        choices=_object_type_choices, help_text=_("action, secret_value, journey, member, api_key...")
    )
    object_id = IdFilter(help_text=_("The object's id (with object_type)."))
    actor = django_filters.CharFilter(
        method="filter_actor", max_length=200, help_text=_("A username, or an API key's prefix (cdt_...).")
    )
    since = UtcDateTimeFilter(field_name="timestamp", lookup_expr="gte", help_text=_("At or after (ISO 8601)."))
    until = UtcDateTimeFilter(field_name="timestamp", lookup_expr="lt", help_text=_("Before (ISO 8601)."))

    class Meta:
        model = AuditRecord
        fields = ["object_type", "object_id", "actor", "since", "until"]

    def filter_actor(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(actor_is(value)) if value else queryset


class AuditRecordSerializer(serializers.ModelSerializer):
    at = serializers.DateTimeField(source="timestamp", read_only=True)
    change = serializers.SerializerMethodField(help_text=_("created, updated or deleted."))
    actor = serializers.CharField(
        source="actor_name", read_only=True, help_text=_("The user's name or the API key's; empty for a command.")
    )
    actor_type = serializers.SerializerMethodField(help_text=_('"user", "api_key", or null for a command.'))
    changes = serializers.SerializerMethodField(
        help_text=_('Field -> [old, new]. A secret is never shown: [null, "changed"].')
    )

    class Meta:
        model = AuditRecord
        fields = ["id", "at", "object_type", "object_id", "object_repr", "change", "door", "actor", "actor_type",
                  "changes"]  # fmt: skip
        read_only_fields = fields

    def get_change(self, record: AuditRecord) -> str:
        return CHANGES.get(record.action, "updated")

    def get_actor_type(self, record: AuditRecord) -> str | None:
        return record.actor_type or None

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "array", "items": {}}})
    def get_changes(self, record: AuditRecord) -> dict[str, Any]:
        return record.changes or {}


class RestoredSerializer(serializers.Serializer):
    object_type = serializers.CharField()
    object_id = serializers.IntegerField(help_text=_("What was written to: for a journey, its draft."))
    object_repr = serializers.CharField()


class AuditRecordViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Every change to the organization's configuration: who (a user or an API key), when, from which door
    (admin, api, command) and what changed, field by field. Read only: records are never edited or deleted."""

    queryset = AuditRecord.objects.select_related("actor", "api_key").order_by("-timestamp", "-pk")
    serializer_class = AuditRecordSerializer
    filterset_class = AuditRecordFilter
    read_capability = Capability.VIEW_AUDIT_LOG
    write_capability = Capability.VIEW_AUDIT_LOG  # both roles that read the trail may edit actions and journeys
    not_found_detail = _("Audit record not found.")

    @extend_schema(request=None, responses=RestoredSerializer)
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, org_slug: str, pk: str) -> Response:
        """Put the action or journey back as this record kept it, checked as any edit is; a journey's version
        goes into its draft (a live version never changes). The restore is recorded too. 409: nothing to restore."""
        record = self.get_object()
        obj = audit_record_object(record=record)
        if obj is None:
            raise Http404(_("The object of this record no longer exists."))
        restored = audit_restore(obj=obj, record=record)
        entry = audited(type(restored))
        return Response({"object_type": entry.object_type, "object_id": restored.pk, "object_repr": str(restored)})
