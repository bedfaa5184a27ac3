"""Scoping by construction for the API (SPEC section 1).

Every organization-scoped viewset derives from `OrgScopedViewSet`: it resolves the
organization from the URL, authenticates, checks membership (or the API key's
organization) and the capability the view declares. Subclasses only name their
model's queryset and capabilities; the base filters it by organization, so a view
cannot forget the organization.
"""

from typing import Any, TypeVar

from django.db import models
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions, serializers, viewsets
from rest_framework.request import Request

from tenants.models import ApiKey, Organization
from tenants.roles import Capability, role_can, scopes_can
from tenants.selectors import membership_get, organization_get_active

M = TypeVar("M", bound=models.Model)


def get_object_in_org(queryset: models.QuerySet[M], organization: Organization, **lookup: Any) -> M:
    """Fetch one row of `organization` or raise 404, whether it is missing or foreign."""
    try:
        return queryset.get(organization=organization, **lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404(f"{queryset.model._meta.verbose_name.capitalize()} not found.") from None


class OrganizationAccess(permissions.BasePermission):
    """Anonymous: 401. Not a member, or another organization's key: 404. No capability: 403."""

    def has_permission(self, request: Request, view: "OrgScopedViewSet") -> bool:
        if not isinstance(request.auth, ApiKey) and not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        organization = organization_get_active(slug=view.kwargs["org_slug"])
        capability = view.required_capability()
        if isinstance(request.auth, ApiKey):
            if request.auth.organization_id != organization.pk:
                raise Http404("Organization not found.")
            view.organization, view.role = organization, None
            if not scopes_can(request.auth.scopes, capability):
                raise exceptions.PermissionDenied(f"This API key lacks the scope for this operation ({capability}).")
            return True
        user = request.user
        membership = membership_get(user=user, organization=organization)
        if membership is None and not user.is_superuser:
            raise Http404("Organization not found.")
        view.organization = organization
        view.role = membership.role if membership else "admin"
        if not role_can(view.role, capability):
            raise exceptions.PermissionDenied(f"Your role ({view.role}) does not allow this operation ({capability}).")
        return True


ORG_SLUG_PARAMETER = OpenApiParameter(
    "org_slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="The organization's slug."
)


@extend_schema(parameters=[ORG_SLUG_PARAMETER])
class OrgScopedViewSet(viewsets.GenericViewSet):
    """Base of every viewset under /api/v1/orgs/{org_slug}/."""

    permission_classes = [OrganizationAccess]
    read_capability: Capability = Capability.VIEW_JOURNEYS
    write_capability: Capability = Capability.MANAGE_MEMBERS
    # An @action may set `capability=...` to override both.
    capability: Capability | None = None
    organization_field = "organization"

    organization: Organization
    role: str | None

    def required_capability(self) -> Capability:
        if self.capability is not None:
            return self.capability
        if self.request.method in permissions.SAFE_METHODS:
            return self.read_capability
        return self.write_capability

    def get_queryset(self) -> models.QuerySet:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset.none()
        return self.scope_queryset(queryset.filter(**{self.organization_field: self.organization}))

    def scope_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        """Hook for subclasses: narrow (never widen) the organization's rows."""
        return queryset

    def validated_input(self, *, partial: bool = False) -> dict[str, Any]:
        """The request body checked by the view's serializer (400 naming fields), for a service to write."""
        serializer = self.get_serializer(data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["organization"] = getattr(self, "organization", None)
        return context


class OrgScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related field whose choices are the rows of the request's organization only."""

    def get_queryset(self) -> models.QuerySet:
        queryset = super().get_queryset()
        organization = self.context.get("organization")
        if organization is None:
            return queryset.none()
        return queryset.filter(organization=organization)
