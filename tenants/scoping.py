"""Scoping by construction for the API (SPEC section 1).

Every organization-scoped viewset derives from `OrgScopedViewSet`: it resolves the
organization from the URL, authenticates, checks membership (or the API key's
organization) and the capability the view declares. Subclasses only name their
model's queryset and capabilities; the base filters it by organization, so a view
cannot forget the organization.
"""

from functools import cached_property
from typing import Any, TypeVar

from django.db import models
from django.http import Http404
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions, serializers, viewsets
from rest_framework.request import Request

from tenants.models import ApiKey, Membership, Organization
from tenants.roles import Capability, role_can, scopes_can
from tenants.selectors import membership_get, organization_get_active

M = TypeVar("M", bound=models.Model)


def get_object_in_org(queryset: models.QuerySet[M], organization: Organization, **lookup: Any) -> M:
    """Fetch one row of `organization` or raise 404, whether it is missing or foreign."""
    try:
        return queryset.get(organization=organization, **lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404(_("%(model)s not found.") % {"model": capfirst(queryset.model._meta.verbose_name)}) from None


class OrganizationAccess(permissions.BasePermission):
    """Anonymous: 401. Not a member, or another organization's key: 404. No capability: 403.

    It only reads what the view resolved (`view.organization`, `view.membership`); it assigns nothing.
    """

    def has_permission(self, request: Request, view: "OrgScopedViewSet") -> bool:
        if not isinstance(request.auth, ApiKey) and not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        organization = view.organization
        capability = view.required_capability()
        if isinstance(request.auth, ApiKey):
            if request.auth.organization_id != organization.pk:
                raise Http404(_("Organization not found."))
            if not scopes_can(request.auth.scopes, capability):
                raise exceptions.PermissionDenied(
                    _("This API key lacks the scope for this operation (%(capability)s).") % {"capability": capability}
                )
            return True
        if view.membership is None and not request.user.is_superuser:
            raise Http404(_("Organization not found."))
        if not role_can(view.role, capability):
            raise exceptions.PermissionDenied(
                _("Your role (%(role)s) does not allow this operation (%(capability)s).")
                % {"role": view.role, "capability": capability}
            )
        return True


ORG_SLUG_PARAMETER = OpenApiParameter(
    "org_slug", OpenApiTypes.STR, OpenApiParameter.PATH, description=gettext_lazy("The organization's slug.")
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
    # get_object's 404 detail; None keeps DRF's ("No <model> matches the given query.").
    not_found_detail: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a subclass that could lose the organization: it narrows, it never rebuilds the base."""
        super().__init_subclass__(**kwargs)
        for name, instead in (("get_queryset", "scope_queryset"), ("get_object", "lookup_field")):
            if name in cls.__dict__:
                raise TypeError(f"{cls.__name__} overrides {name}: use {instead}, which cannot lose the organization.")

    @cached_property
    def organization(self) -> Organization:
        """The organization of the URL, active, or 404."""
        return organization_get_active(slug=self.kwargs["org_slug"])

    @cached_property
    def membership(self) -> Membership | None:
        """The user's membership of the organization; None for an API key or a non-member."""
        if isinstance(self.request.auth, ApiKey):
            return None
        return membership_get(user=self.request.user, organization=self.organization)

    @cached_property
    def role(self) -> str | None:
        """The member's role; "admin" for a superuser who is not a member; None for an API key (and the schema)."""
        if getattr(self, "swagger_fake_view", False) or isinstance(self.request.auth, ApiKey):
            return None
        return self.membership.role if self.membership else "admin"

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

    def get_object(self) -> models.Model:
        """DRF's lookup by `lookup_field` among the organization's rows; 404 when missing or foreign, in the
        view's own words (`not_found_detail`) where it has them."""
        try:
            return super().get_object()
        except Http404:
            if self.not_found_detail is None:
                raise
            raise Http404(self.not_found_detail) from None

    def get_in_organization(self, model: type[M], **lookup: Any) -> M:
        """A row of the organization named by `lookup` (an id from the request body), or 404, missing or foreign."""
        return get_object_in_org(model._default_manager.all(), self.organization, **lookup)

    def validated_input(self, *, partial: bool = False) -> dict[str, Any]:
        """The request body checked by the view's serializer (400 naming fields), for a service to write."""
        serializer = self.get_serializer(data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["organization"] = None if getattr(self, "swagger_fake_view", False) else self.organization
        return context


class OrgScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related field whose choices are the rows of the request's organization only."""

    def get_queryset(self) -> models.QuerySet:
        queryset = super().get_queryset()
        organization = self.context.get("organization")
        if organization is None:
            return queryset.none()
        return queryset.filter(organization=organization)
