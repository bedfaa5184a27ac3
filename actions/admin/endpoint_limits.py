"""Host limits: all calls of an organization to one host share them, checked by the same service as the API's.
The list also shows the calls open now to each host, per worker process."""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy

from actions.models import EndpointLimit
from actions.selectors import calls_in_flight
from actions.services import endpoint_limits
from tenants.admin_scoping import OrgScopedAdminMixin, adopt_saved_row, checked_by_service
from tenants.audit.admin import AuditHistoryAdminMixin
from tenants.middleware import active_organization
from tenants.models import Organization
from tenants.roles import Capability

FIELDS = ("host", "calls", "period_s", "max_concurrent")


class EndpointLimitForm(forms.ModelForm):
    """Checked by `endpoint_limits.endpoint_limit_validate`, the same function as the API's."""

    class Meta:
        model = EndpointLimit
        fields = ["organization", *FIELDS]
        labels = {
            "organization": gettext_lazy("Organization"),
            "host": gettext_lazy("Host"),
            "calls": gettext_lazy("Calls"),
            "period_s": gettext_lazy("Period (seconds)"),
            "max_concurrent": gettext_lazy("Calls open at once"),
        }
        help_texts = {
            "period_s": gettext_lazy("1 to 86400 seconds."),
            "calls": gettext_lazy("Calls allowed per period, at least 1."),
            "max_concurrent": gettext_lazy(
                "Calls open to the host at the same time, across every worker: 1 to 100000."
            ),
        }

    request: HttpRequest

    def _organization(self):
        if self.request.user.is_superuser:
            return self.cleaned_data.get("organization")
        return active_organization(self.request)

    def clean(self) -> dict:
        data = super().clean()
        cleaned = checked_by_service(self, self._organization(), FIELDS, endpoint_limits.endpoint_limit_validate)
        if cleaned is not None:
            data.update(cleaned)
        return data


@admin.register(EndpointLimit)
class EndpointLimitAdmin(AuditHistoryAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """Host limits: all calls of the organization to one host share them (300,000 per 60 s and 400 open at
    once by default); the list shows the calls open now."""

    view_capability = Capability.MANAGE_ACTIONS
    change_capability = Capability.MANAGE_ACTIONS
    form = EndpointLimitForm
    list_display = ["host", "calls", "period_s", "calls_open_at_once"]
    search_fields = ["host"]
    change_list_template = "admin/actions/endpointlimit/change_list.html"

    @admin.display(description=gettext_lazy("Calls open at once"), ordering="max_concurrent")
    def calls_open_at_once(self, limit: EndpointLimit) -> int:
        return limit.max_concurrent

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = {
            "calls_open": _calls_open(request),
            "with_organization": request.user.is_superuser,
            "max_in_flight": settings.CONDUIT_MAX_IN_FLIGHT,
            "default_max_concurrent": settings.CONDUIT_DEFAULT_MAX_CONCURRENT,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)

    def save_model(self, request: HttpRequest, obj: EndpointLimit, form: EndpointLimitForm, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in FIELDS}
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


def _calls_open(request: HttpRequest) -> list[dict]:
    """The open calls the page shows: the active organization's; every organization's for platform staff."""
    if request.user.is_superuser:
        organizations = list(Organization.objects.order_by("slug"))
    else:
        organizations = [o for o in [active_organization(request)] if o is not None]
    return [
        {**row, "organization": organization}
        for organization in organizations
        for row in calls_in_flight(organization=organization)
    ]
