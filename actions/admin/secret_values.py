"""The admin of an organization's secret values ({{secrets.NAME}} in templates), through the same services as the API.

A value is write-only: the pages say whether it is set, never what it is.
"""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from actions.admin.forms import SECRET_KEPT, ServiceForm, write_only_field
from actions.models import SecretValue
from actions.services import secret_values
from config.common.exceptions import Conflict
from tenants.admin_scoping import OrgScopedAdminMixin, adopt_saved_row
from tenants.audit.admin import AuditHistoryAdminMixin
from tenants.roles import Capability


class SecretValueForm(ServiceForm):
    value = write_only_field(gettext_lazy("Value"))

    class Meta:
        model = SecretValue
        fields = ["organization", "name", "value", "description"]
        labels = {
            "organization": gettext_lazy("Organization"),
            "name": gettext_lazy("Name"),
            "description": gettext_lazy("Description"),
        }
        help_texts = {
            "name": gettext_lazy("Letters, digits and _, e.g. SLACK_WEBHOOK. Templates use it as {{secrets.NAME}}.")
        }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["value"].help_text = (
            SECRET_KEPT if self.instance.pk else _("Required. Stored encrypted, never shown again.")
        )

    def service_data(self) -> dict[str, Any]:
        data = {"name": self.cleaned_data.get("name"), "description": self.cleaned_data.get("description") or ""}
        if self.cleaned_data.get("value") or not self.instance.pk:
            data["value"] = self.cleaned_data.get("value") or ""
        return data

    def service_problems(self, organization: Any, data: dict[str, Any]) -> dict[str, list[str]]:
        instance = self.instance if self.instance.pk else None
        return secret_values.secret_value_problems(organization=organization, data=data, instance=instance)


@admin.register(SecretValue)
class SecretValueAdmin(AuditHistoryAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """Named secrets for templates ({{secrets.NAME}}): technical users and admins."""

    view_capability = Capability.MANAGE_ACTIONS
    change_capability = Capability.MANAGE_ACTIONS
    form = SecretValueForm
    list_display = ["name", "reference", "description", "used_by", "updated_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["used_by"]

    @admin.display(description=gettext_lazy("in a template"))
    def reference(self, obj: SecretValue) -> str:
        return format_html("<code>{{{{secrets.{}}}}}</code>", obj.name)

    @admin.display(description=gettext_lazy("used by"))
    def used_by(self, obj: SecretValue) -> str:
        if not obj.pk:
            return "-"
        return ", ".join(secret_values.secret_value_usage(organization=obj.organization, name=obj.name)) or _(
            "no action"
        )

    def save_model(self, request: HttpRequest, obj: SecretValue, form: SecretValueForm, change: bool) -> None:
        saved = secret_values.secret_value_save(
            organization=form.organization(), data=form.service_data(), instance=obj if change else None
        )
        adopt_saved_row(obj, saved)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except Conflict as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:actions_secretvalue_change", args=[object_id]))

    def delete_model(self, request: HttpRequest, obj: SecretValue) -> None:
        secret_values.secret_value_delete(secret=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for secret in queryset:
            secret_values.secret_value_delete(secret=secret)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        try:
            return super().changelist_view(request, extra_context)
        except Conflict as exc:  # the bulk delete action
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
