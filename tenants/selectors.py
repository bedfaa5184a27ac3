from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from tenants.models import ApiKey, Membership, Organization


def organization_get_active(*, slug: str) -> Organization:
    try:
        return Organization.objects.get(slug=slug, is_active=True)
    except Organization.DoesNotExist:
        raise Http404("Organization not found.") from None


def membership_get(*, user: AbstractBaseUser | AnonymousUser, organization: Organization) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organization=organization).first()


def organizations_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Organization]:
    if not user.is_authenticated:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.filter(is_active=True)
    return Organization.objects.filter(is_active=True, memberships__user=user)


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=organization).select_related("user")


def api_key_list(*, organization: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(organization=organization)
