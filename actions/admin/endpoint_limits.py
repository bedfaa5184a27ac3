"""Host limits: all calls of an organization to one host share them, checked by the same service as the API's."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from actions.models import EndpointLimit
from actions.services import endpoint_limits
from tenants.admin_scoping import OrgScopedAdminMixin, adopt_saved_row
from tenants.middleware import active_organization
from tenants.roles import Capability


class EndpointLimitForm(forms.ModelForm):
    """Checked by `endpoint_limits.endpoint_limit_validate`, the same function as the API's."""

    class Meta:
        model = EndpointLimit
        fields = ["organization", "host", "calls", "period_s"]
        labels = {"period_s": "Period (seconds)"}
        help_texts = {"period_s": "1 to 86400 seconds.", "calls": "Calls allowed per period, at least 1."}

    request: HttpRequest

    def _organization(self):
        if self.request.user.is_superuser:
            return self.cleaned_data.get("organization")
        return active_organization(self.request)

    def clean(self) -> dict:
        data = super().clean()
        organization = self._organization()
        if organization is None:
            return data
        values = {name: data[name] for name in ("host", "calls", "period_s") if name in data}
        try:
            cleaned = endpoint_limits.endpoint_limit_validate(
                organization=organization, data=values, instance=self.instance if self.instance.pk else None
            )
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                if name not in self.errors:  # a field that failed already keeps its first error
                    self.add_error(name if name in self.fields else None, errors)
        else:
            data.update(cleaned)
        return data


@admin.register(EndpointLimit)
class EndpointLimitAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    """Host limits: all calls of the organization to one host share them (300,000 per 60 s by default)."""

    view_capability = Capability.MANAGE_ACTIONS
    change_capability = Capability.MANAGE_ACTIONS
    form = EndpointLimitForm
    list_display = ["host", "calls", "period_s"]
    search_fields = ["host"]

    def save_model(self, request: HttpRequest, obj: EndpointLimit, form: EndpointLimitForm, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in ("host", "calls", "period_s")}
        if change:
            saved = endpoint_limits.endpoint_limit_update(endpoint_limit=obj, data=data)
        else:
            saved = endpoint_limits.endpoint_limit_create(organization=form._organization(), data=data)
        adopt_saved_row(obj, saved)

    def delete_model(self, request: HttpRequest, obj: EndpointLimit) -> None:
        endpoint_limits.endpoint_limit_delete(endpoint_limit=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for limit in queryset:
            endpoint_limits.endpoint_limit_delete(endpoint_limit=limit)
