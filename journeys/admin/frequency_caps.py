"""Frequency caps in the admin: list, add, change and delete, checked by the same service as the API's."""

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from journeys.frequency_caps import services
from journeys.models import FrequencyCap
from tenants.admin_scoping import OrgScopedAdminMixin, adopt_saved_row, checked_by_service, form_organization
from tenants.audit.admin import AuditHistoryAdminMixin
from tenants.roles import Capability


class FrequencyCapForm(forms.ModelForm):
    """Checked by `services.frequency_cap_validate`, the same function as the API's."""

    class Meta:
        model = FrequencyCap
        fields = ["organization", *services.CAP_FIELDS]
        help_texts = {
            "category": _("The category of the actions it counts (an action's categories), e.g. marketing-sms."),
            "max_calls": _("Calls of the category one profile may get in the period, across every journey."),
            "period_days": _("A sliding period, 1 to 90 days: the calls of the last 7 days, for 7."),
        }

    request: HttpRequest

    def clean(self) -> dict:
        data = super().clean()
        organization = form_organization(getattr(self, "request", None), self)
        checked_by_service(self, organization, services.CAP_FIELDS, services.frequency_cap_validate)
        return data


@admin.register(FrequencyCap)
class FrequencyCapAdmin(AuditHistoryAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """Everyone sees the caps (marketers build journeys under them); admins and technical users edit them."""

    view_capability = Capability.VIEW_JOURNEYS
    change_capability = Capability.MANAGE_ACTIONS
    form = FrequencyCapForm
    list_display = ["category", "max_calls", "period_days", "updated_at"]
    search_fields = ["category"]
    readonly_fields = ["created_at", "updated_at"]

    def get_fields(self, request: HttpRequest, obj: FrequencyCap | None = None) -> list[str]:
        fields = [*(["organization"] if request.user.is_superuser else []), *services.CAP_FIELDS]
        return fields + (["created_at", "updated_at"] if obj is not None else [])

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        if self.get_object(request, unquote(object_id)) is None:  # missing or another organization's
            raise Http404(_("Frequency cap not found."))
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: FrequencyCap, form: FrequencyCapForm, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in services.CAP_FIELDS}
        if change:
            saved = services.frequency_cap_update(frequency_cap=obj, data=data)
        else:
            saved = services.frequency_cap_create(organization=form_organization(request, form), data=data)
        adopt_saved_row(obj, saved)

    def delete_model(self, request: HttpRequest, obj: FrequencyCap) -> None:
        services.frequency_cap_delete(frequency_cap=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for cap in queryset:
            services.frequency_cap_delete(frequency_cap=cap)
