"""The audit trail in the admin: each audited object's History page (with a restore button where the model
has one), and the organization's whole trail, read only."""

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.common.exceptions import Conflict
from tenants.admin_scoping import OrgScopedAdminMixin, ReadOnlyAdminMixin, messages_by_field, problem_lines
from tenants.audit.registry import SECRET_CHANGED, audited
from tenants.audit.selectors import audit_records_of
from tenants.audit.services import audit_restore
from tenants.middleware import active_organization, active_role
from tenants.models import AuditRecord
from tenants.roles import Capability, role_can

RECORDS_PER_PAGE = 50
CHANGE_WORDS = {
    AuditRecord.Action.CREATE: gettext_lazy("created"),
    AuditRecord.Action.UPDATE: gettext_lazy("updated"),
    AuditRecord.Action.DELETE: gettext_lazy("deleted"),
}


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def change_rows(record: AuditRecord, model: type[models.Model]) -> list[dict[str, str]]:
    """The record's diff as rows a person reads: the field's label, before, after; a secret only as changed."""
    rows = []
    for name, pair in (record.changes or {}).items():
        try:
            label = capfirst(model._meta.get_field(name).verbose_name)
        except FieldDoesNotExist:
            label = name
        old, new = (list(pair) + [None, None])[:2]
        if new == SECRET_CHANGED and old is None:
            rows.append({"field": label, "old": "—", "new": _("changed (secret, not shown)")})
        else:
            rows.append({"field": label, "old": _shown(old), "new": _shown(new)})
    return rows


def may_see_audit(request: HttpRequest) -> bool:
    return request.user.is_superuser or role_can(active_role(request), Capability.VIEW_AUDIT_LOG)


class AuditHistoryAdminMixin:
    """An audited model's History page shows its audit records (who, when, door, the diff), only within the
    organization of the person looking; where the model can be restored, each record has a restore button."""

    object_history_template = "admin/audit/object_history.html"

    def get_urls(self) -> list:
        name = f"{self.opts.app_label}_{self.opts.model_name}_audit_restore"
        restore = self.admin_site.admin_view(self.audit_restore_view)
        return [path("<path:object_id>/history/<int:record_id>/restore/", restore, name=name), *super().get_urls()]

    def _audited_object(self, request: HttpRequest, object_id: str) -> models.Model:
        obj = self.get_object(request, unquote(object_id))
        entry = audited(self.model)
        if obj is None or entry is None:
            raise Http404(_("Not found in your organization."))
        if not request.user.is_superuser and entry.organization_id(obj) != getattr(
            active_organization(request), "pk", None
        ):
            raise Http404(_("Not found in your organization."))  # an organization of theirs, but not the active one
        if not (self.has_view_permission(request, obj) and may_see_audit(request)):
            raise PermissionDenied
        return obj

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        obj = self._audited_object(request, object_id)
        entry = audited(self.model)
        page = Paginator(audit_records_of(organization_id=entry.organization_id(obj), obj=obj), RECORDS_PER_PAGE)
        records = page.get_page(request.GET.get("p"))
        can_restore = entry.restore is not None and self.has_change_permission(request, obj)
        rows = [
            {
                "record": record,
                "change": CHANGE_WORDS.get(record.action, ""),
                "diff": change_rows(record, self.model),
                "restorable": can_restore and record.action != AuditRecord.Action.DELETE and bool(record.snapshot),
            }
            for record in records
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": _("History: %(object)s") % {"object": obj},
            "module_name": capfirst(self.opts.verbose_name_plural),
            "object": obj,
            "opts": self.opts,
            "rows": rows,
            "page": records,
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.object_history_template, context)

    def audit_restore_view(self, request: HttpRequest, object_id: str, record_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self._audited_object(request, object_id)
        entry = audited(self.model)
        if entry.restore is None or not self.has_change_permission(request, obj):
            raise PermissionDenied
        record = audit_records_of(organization_id=entry.organization_id(obj), obj=obj).filter(pk=record_id).first()
        if record is None:
            raise Http404(_("No such version of this object."))
        history = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_history", args=[obj.pk])
        try:
            restored = audit_restore(obj=obj, record=record)
        except Conflict as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(history)
        except ValidationError as exc:
            lines = "; ".join(problem_lines(messages_by_field(exc)))
            self.message_user(request, _("This version cannot be restored: %(problems)s") % {"problems": lines},
                              messages.ERROR)  # fmt: skip
            return HttpResponseRedirect(history)
        when = record.timestamp.strftime("%Y-%m-%d %H:%M:%S")
        self.message_user(
            request, _("Restored %(object)s as it was at %(when)s UTC.") % {"object": restored, "when": when}
        )
        return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                                            args=[restored.pk]))  # fmt: skip


class AuditRecordAdmin(ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """The organization's whole trail: filter by object type, door and change; never added, edited or deleted."""

    view_capability = Capability.VIEW_AUDIT_LOG
    change_capability = Capability.VIEW_AUDIT_LOG
    list_display = ["timestamp", "object_type", "object_repr", "change", "door", "actor_name"]
    list_filter = ["object_type", "door", "action"]
    search_fields = ["object_repr", "actor_name"]
    date_hierarchy = "timestamp"
    actions = None
    fields = ["timestamp", "object_type", "object_id", "object_repr", "change", "door", "actor_name", "diff"]
    readonly_fields = fields

    @admin.display(description=gettext_lazy("change"))
    def change(self, obj: AuditRecord) -> str:
        return CHANGE_WORDS.get(obj.action, "")

    @admin.display(description=gettext_lazy("what changed"))
    def diff(self, obj: AuditRecord) -> str:  # escaped by format_html_join
        model = obj.content_type.model_class()
        rows = change_rows(obj, model) if model is not None else []
        lines = ((row["field"], row["old"], row["new"]) for row in rows)
        return format_html_join(mark_safe("<br>"), "{}: {} → {}", lines) or "—"


# django-auditlog registers a page of its own for the record model: unscoped, and it lets records be deleted.
if admin.site.is_registered(AuditRecord):
    admin.site.unregister(AuditRecord)
admin.site.register(AuditRecord, AuditRecordAdmin)
