"""The circuit to each host, as the runtime keeps it: read-only in the admin."""

from django.contrib import admin
from django.http import HttpRequest

from actions.models import CircuitBreaker
from tenants.admin_scoping import OrgScopedAdminMixin, ReadOnlyAdminMixin
from tenants.roles import Capability


@admin.register(CircuitBreaker)
class CircuitBreakerAdmin(ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """The circuit to each host, as the runtime keeps it: read-only."""

    # A circuit is kept per host: where calls go is action configuration (tenants/roles.py).
    view_capability = Capability.VIEW_DESTINATIONS
    change_capability = Capability.MANAGE_ACTIONS
    list_display = ["host", "state", "calls", "failures", "opened_at", "updated_at"]
    list_filter = ["state"]
    search_fields = ["host"]
    actions = None

    def get_fields(self, request: HttpRequest, obj: CircuitBreaker | None = None) -> list[str]:
        fields = ["host", "state", "window_started_at", "calls", "failures", "opened_at", "updated_at"]
        return (["organization"] if request.user.is_superuser else []) + fields

    def get_readonly_fields(self, request: HttpRequest, obj: CircuitBreaker | None = None) -> list[str]:
        return self.get_fields(request, obj)
