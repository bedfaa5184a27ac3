from django.contrib import admin

from journeys.models import Event, Journey, Profile
from tenants.admin_scoping import OrgScopedAdminMixin, ReadOnlyAdminMixin
from tenants.roles import Capability


@admin.register(Profile)
class ProfileAdmin(ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    view_capability = Capability.VIEW_JOURNEYS
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


@admin.register(Journey)
class JourneyAdmin(ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """Visible and scoped; the builder for marketers comes with the admin journey editor."""

    view_capability = Capability.VIEW_JOURNEYS
    list_display = ["name", "version", "status", "entry_event", "reentry", "updated_at"]
    list_filter = ["status", "reentry"]
    search_fields = ["name", "entry_event"]
    fields = ["name", "version", "status", "description", "entry_event", "reentry", "start", "steps", "published_at"]
