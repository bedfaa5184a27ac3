"""The organization the admin works in.

A user in several organizations works in one at a time (switched in the admin
header) with the role they have there. Superusers are platform staff: no scoping.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from tenants.models import Membership, Organization
from tenants.selectors import memberships_of

SESSION_KEY = "conduit_organization_id"
LANGUAGE_SESSION_KEY = "conduit_language"  # the user's own choice, copied from UserSettings at login
_CACHE_ATTR = "_conduit_membership"


def active_membership(request: HttpRequest) -> Membership | None:
    """The membership chosen in the session, else the user's first; cached per request."""
    if hasattr(request, _CACHE_ATTR):
        return getattr(request, _CACHE_ATTR)
    membership = None
    user = request.user
    if user.is_authenticated:
        memberships = memberships_of(user=user)
        chosen = request.session.get(SESSION_KEY)
        if chosen is not None:
            membership = memberships.filter(organization_id=chosen).first()
        if membership is None:
            membership = memberships.order_by("organization__slug").first()
    setattr(request, _CACHE_ATTR, membership)
    return membership


def active_organization(request: HttpRequest) -> Organization | None:
    membership = active_membership(request)
    return membership.organization if membership else None


def active_role(request: HttpRequest) -> str | None:
    membership = active_membership(request)
    return membership.role if membership else None


class UserLanguageMiddleware:
    """A language the user chose (admin header) wins over the browser's Accept-Language, on every browser.

    LocaleMiddleware has already chosen from the cookie or Accept-Language; the user's choice is
    kept in their session at login (tenants.signals), so no query is made per request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        chosen = request.session.get(LANGUAGE_SESSION_KEY) if hasattr(request, "session") else None
        if chosen in dict(settings.LANGUAGES) and request.user.is_authenticated:
            translation.activate(chosen)
            request.LANGUAGE_CODE = chosen
        return self.get_response(request)
