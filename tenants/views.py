from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from tenants.middleware import SESSION_KEY, active_membership
from tenants.selectors import memberships_of


def admin_context(request: HttpRequest) -> dict:
    """The organization switcher shown in the admin header."""
    if not request.path.startswith("/admin/") or not request.user.is_authenticated:
        return {}
    membership = active_membership(request)
    return {
        "conduit_membership": membership,
        "conduit_memberships": memberships_of(user=request.user),
    }


@require_POST
def switch_organization(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return HttpResponseRedirect("/admin/login/")
    membership = (
        memberships_of(user=request.user).filter(organization__slug=request.POST.get("organization", "")).first()
    )
    if membership is not None:
        request.session[SESSION_KEY] = membership.organization_id
    target = request.POST.get("next", "/admin/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/admin/"
    return HttpResponseRedirect(target)
