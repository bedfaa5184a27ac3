from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from tenants.selectors import memberships_of


def _may_use_admin(user) -> bool:
    return user.is_active and (user.is_superuser or memberships_of(user=user).exists())


class MemberAuthenticationForm(AdminAuthenticationForm):
    """Members of an organization use the admin; they need no `is_staff` flag."""

    def confirm_login_allowed(self, user) -> None:
        if not _may_use_admin(user):
            raise ValidationError("This account is not a member of any active organization.", code="invalid_login")


class ConduitAdminSite(admin.AdminSite):
    site_header = "Conduit"
    site_title = "Conduit"
    index_title = "Actions and journeys"
    login_form = MemberAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        return _may_use_admin(request.user)
