from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tenants.selectors import memberships_of


def _may_use_admin(user) -> bool:
    return user.is_active and (user.is_superuser or memberships_of(user=user).exists())


class MemberAuthenticationForm(AdminAuthenticationForm):
    """Members of an organization use the admin; they need no `is_staff` flag."""

    def confirm_login_allowed(self, user) -> None:
        if not _may_use_admin(user):
            raise ValidationError(_("This account is not a member of any active organization."), code="invalid_login")


class ConduitAdminSite(admin.AdminSite):
    site_header = "Conduit"
    site_title = "Conduit"
    index_title = gettext_lazy("Actions and journeys")
    index_template = "admin/conduit_home.html"
    login_form = MemberAuthenticationForm
    site_url = "/api/v1/docs/"  # "View site": the API documentation (Conduit has no other site)

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        from config.home import home_context  # the apps' models: loaded once the registry is ready

        return super().index(request, {**(extra_context or {}), **home_context(request)})

    def has_permission(self, request: HttpRequest) -> bool:
        return _may_use_admin(request.user)
