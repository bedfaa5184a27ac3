"""Read-only admins of what journeys act on and leave behind: profiles, events, and runs with their steps."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from journeys.admin.profile_import import ProfileImportMixin
from journeys.models import Event, JourneyRun, Profile, StepRun
from journeys.selectors import STEP_CALL_FIELDS, step_error_shown, step_window_wait
from tenants.admin_scoping import OrgScopedAdminMixin, ReadOnlyAdminMixin
from tenants.roles import Capability


@admin.register(Profile)
class ProfileAdmin(ProfileImportMixin, ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    view_capability = Capability.VIEW_JOURNEYS
    change_list_template = "admin/journeys/profile/change_list.html"  # with the CSV import for who writes profiles
    list_display = ["external_id", "updated_at", "created_at"]
    search_fields = ["external_id"]
    fields = ["external_id", "attributes", "created_at", "updated_at"]


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    view_capability = Capability.VIEW_JOURNEYS
    list_display = ["name", "profile", "occurred_at", "received_at", "processed_at"]
    list_filter = ["name", "received_at"]
    search_fields = ["name", "client_id", "profile__external_id"]
    list_select_related = ["profile"]
    fields = ["name", "client_id", "profile", "data", "occurred_at", "received_at", "processed_at"]


class StepRunInline(ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.TabularInline):
    model = StepRun
    view_capability = Capability.VIEW_JOURNEYS
    fields = ["sequence", "step_key", "step_type", "status", "outcome", "next_step", "call", "wake_at", "error",
              "entered_at", "finished_at"]  # fmt: skip
    ordering = ["sequence"]
    extra = 0

    def get_fields(self, request: HttpRequest, obj: JourneyRun | None = None) -> list[str]:
        fields = list(self.fields)
        if not self._can(request, Capability.VIEW_DESTINATIONS):
            fields[fields.index("error")] = "error_outcome"  # a call's error names where it went
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: JourneyRun | None = None) -> list[str]:
        return self.get_fields(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(**STEP_CALL_FIELDS)

    @admin.display(description=gettext_lazy("error"))
    def error_outcome(self, obj: StepRun) -> str:
        return step_error_shown(obj, sees_destinations=False)

    @admin.display(description=gettext_lazy("call"))
    def call(self, obj: StepRun) -> str:
        if obj.invocation_id is None:
            return "-"
        url = reverse("admin:actions_invocation_change", args=[obj.invocation_id])
        waiting = step_window_wait(obj)["waiting"]
        if waiting:  # held outside its send window: the run says until when
            return format_html('<a href="{}">{}</a>: {}', url, _("invocation"), waiting)
        return format_html('<a href="{}">{}</a>', url, _("invocation"))


@admin.register(JourneyRun)
class JourneyRunAdmin(ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """Each run with its steps in order, and a link to each call."""

    view_capability = Capability.VIEW_JOURNEYS
    list_display = ["journey", "profile", "status", "current_step", "started_at", "ended_at"]
    # Choices come from the scoped queryset only: another organization's journeys never show.
    list_filter = ["status", ("journey", admin.RelatedOnlyFieldListFilter), "started_at"]
    search_fields = ["=id", "profile__external_id"]
    list_select_related = ["journey", "profile"]
    fields = ["journey", "profile", "event", "status", "current_step", "due_at", "error", "started_at", "ended_at"]
    inlines = [StepRunInline]
