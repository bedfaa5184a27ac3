"""The admin of an organization's secret values and SMTP settings, through the same services as the API.

Values and the SMTP password are write-only: the pages say whether they are set, never what they are.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from actions.models import EmailSettings, SecretValue
from actions.services import email_settings, secret_values
from config.common.exceptions import Conflict
from tenants.admin_scoping import OrgScopedAdminMixin, adopt_saved_row, form_organization
from tenants.roles import Capability

KEPT = "Set. Leave blank to keep it; type a new value to replace it."


def _write_only(label: str) -> forms.CharField:
    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
    return forms.CharField(required=False, strip=False, label=label, widget=widget)


class _ServiceForm(forms.ModelForm):
    """A form whose rules are the service's: its errors are put on the fields they name."""

    request: HttpRequest

    def organization(self):
        return form_organization(self.request, self)

    def service_data(self) -> dict[str, Any]:
        raise NotImplementedError

    def service_problems(self, organization: Any, data: dict[str, Any]) -> dict[str, list[str]]:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        organization = self.organization()
        if organization is None:
            self.add_error("organization" if "organization" in self.fields else None, "Choose an organization.")
            return cleaned
        # The service's own checks, run before it saves: what it would refuse is shown on the fields.
        for name, problems in self.service_problems(organization, self.service_data()).items():
            if name not in self.errors:
                for problem in problems:
                    self.add_error(name if name in self.fields else None, problem)
        return cleaned

    def _post_clean(self) -> None:
        pass  # the service validates and saves


class SecretValueForm(_ServiceForm):
    value = _write_only("Value")

    class Meta:
        model = SecretValue
        fields = ["organization", "name", "value", "description"]
        help_texts = {"name": "Letters, digits and _, e.g. SLACK_WEBHOOK. Templates use it as {{secrets.NAME}}."}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["value"].help_text = KEPT if self.instance.pk else "Required. Stored encrypted, never shown again."

    def service_data(self) -> dict[str, Any]:
        data = {"name": self.cleaned_data.get("name"), "description": self.cleaned_data.get("description") or ""}
        if self.cleaned_data.get("value") or not self.instance.pk:
            data["value"] = self.cleaned_data.get("value") or ""
        return data

    def service_problems(self, organization: Any, data: dict[str, Any]) -> dict[str, list[str]]:
        instance = self.instance if self.instance.pk else None
        return secret_values.secret_value_problems(organization=organization, data=data, instance=instance)


@admin.register(SecretValue)
class SecretValueAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    """Named secrets for templates ({{secrets.NAME}}): technical users and admins."""

    view_capability = Capability.MANAGE_ACTIONS
    change_capability = Capability.MANAGE_ACTIONS
    form = SecretValueForm
    list_display = ["name", "reference", "description", "used_by", "updated_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["used_by"]

    @admin.display(description="in a template")
    def reference(self, obj: SecretValue) -> str:
        return format_html("<code>{{{{secrets.{}}}}}</code>", obj.name)

    @admin.display(description="used by")
    def used_by(self, obj: SecretValue) -> str:
        if not obj.pk:
            return "-"
        return ", ".join(secret_values.secret_value_usage(organization=obj.organization, name=obj.name)) or "no action"

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


class EmailSettingsForm(_ServiceForm):
    password = _write_only("Password")
    clear_password = forms.BooleanField(required=False, label="Remove the password")

    class Meta:
        model = EmailSettings
        fields = ["organization", "host", "port", "security", "username", "password", "default_from", "timeout_s"]
        labels = {"timeout_s": "Timeout (seconds)", "default_from": "Default sender"}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        is_set = bool(self.instance.pk and self.instance.password)
        self.fields["password"].help_text = KEPT if is_set else "Optional: only if the server asks for a login."

    def service_data(self) -> dict[str, Any]:
        keys = ("host", "port", "security", "username", "password", "clear_password", "default_from", "timeout_s")
        return {key: self.cleaned_data[key] for key in keys if key in self.cleaned_data}

    def service_problems(self, organization: Any, data: dict[str, Any]) -> dict[str, list[str]]:
        return email_settings.email_settings_problems(organization=organization, data=data)


@admin.register(EmailSettings)
class EmailSettingsAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
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
