from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from tenants.models import Membership, Organization


def organization_get_active(*, slug: str) -> Organization:
    try:
        return Organization.objects.get(slug=slug, is_active=True)
    except Organization.DoesNotExist:
        raise Http404(_("Organization not found.")) from None


def membership_get(*, user: AbstractBaseUser | AnonymousUser, organization: Organization) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organization=organization).first()


def memberships_of(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Membership]:
    """The user's memberships in active organizations: where they may work."""
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user=user, organization__is_active=True).select_related("organization")


def organizations_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Organization]:
    if not user.is_authenticated:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.filter(is_active=True)
    return Organization.objects.filter(is_active=True, memberships__user=user)
