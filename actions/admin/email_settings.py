"""The admin of an organization's SMTP settings, through the same service as the API; the password is write-only."""

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from actions.admin.forms import SECRET_KEPT, ServiceForm, write_only_field
from actions.models import EmailSettings
from actions.services import email_settings
from tenants.admin_scoping import OrgScopedAdminMixin, adopt_saved_row
from tenants.audit.admin import AuditHistoryAdminMixin
from tenants.roles import Capability


class EmailSettingsForm(ServiceForm):
    password = write_only_field(gettext_lazy("Password"))
    clear_password = forms.BooleanField(required=False, label=gettext_lazy("Remove the password"))

    class Meta:
        model = EmailSettings
        fields = ["organization", "host", "port", "security", "username", "password", "default_from", "timeout_s"]
        labels = {
            "organization": gettext_lazy("Organization"),
            "host": gettext_lazy("Host"),
            "port": gettext_lazy("Port"),
            "security": gettext_lazy("Security"),
            "username": gettext_lazy("Username"),
            "timeout_s": gettext_lazy("Timeout (seconds)"),
            "default_from": gettext_lazy("Default sender"),
        }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        is_set = bool(self.instance.pk and self.instance.password)
        self.fields["password"].help_text = (
            SECRET_KEPT if is_set else _("Optional: only if the server asks for a login.")
        )

    def service_data(self) -> dict[str, Any]:
        keys = ("host", "port", "security", "username", "password", "clear_password", "default_from", "timeout_s")
        return {key: self.cleaned_data[key] for key in keys if key in self.cleaned_data}

    def service_problems(self, organization: Any, data: dict[str, Any]) -> dict[str, list[str]]:
        return email_settings.email_settings_problems(organization=organization, data=data)


@admin.register(EmailSettings)
class EmailSettingsAdmin(AuditHistoryAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """The organization's SMTP server, used by every email action."""

    view_capability = Capability.MANAGE_ACTIONS
    change_capability = Capability.MANAGE_ACTIONS
    form = EmailSettingsForm
    list_display = ["host", "port", "security", "default_from", "updated_at"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        if not super().has_add_permission(request):
            return False
        # One per organization: a second one is edited, not added.
        return request.user.is_superuser or not self.get_queryset(request).exists()

    def save_model(self, request: HttpRequest, obj: EmailSettings, form: EmailSettingsForm, change: bool) -> None:
        saved = email_settings.email_settings_save(organization=form.organization(), data=form.service_data())
        adopt_saved_row(obj, saved)
