from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from tenants.middleware import LANGUAGE_SESSION_KEY, SESSION_KEY, active_membership
from tenants.models import UserSettings
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
    return HttpResponseRedirect(_back(request))


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "/admin/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/admin/"
    return target


@require_POST
def choose_language(request: HttpRequest) -> HttpResponse:
    """The admin header's language: kept for this browser (cookie) and, once logged in, for the user."""
    language = request.POST.get("language", "")
    response = HttpResponseRedirect(_back(request))
    if language not in dict(settings.LANGUAGES):
        return response
    translation.activate(language)
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite="Lax")
    if request.user.is_authenticated:
        UserSettings.objects.update_or_create(user=request.user, defaults={"language": language})
        request.session[LANGUAGE_SESSION_KEY] = language
    return response
