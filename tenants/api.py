from django.contrib.auth import logout
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.common.parsers import StrictJSONParser
from config.common.serializers import StrictSerializer
from config.common.time_zones import is_time_zone
from tenants.models import ApiKey, Invitation, Membership, Organization
from tenants.roles import Capability, Role, Scope
from tenants.scoping import OrgScopedViewSet
from tenants.services import (
    api_key_create,
    api_key_revoke,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_change_role,
    membership_remove,
    organization_settings_update,
    user_token_expires_at,
    user_token_issue,
    user_tokens_revoke,
)
from tenants.throttling import LoginRateThrottle


class OrganizationSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text=_("Your role here; null for an API key."))

    class Meta:
        model = Organization
        fields = ["slug", "name", "allow_http", "default_time_zone", "time_zone_attribute", "role"]

    def get_role(self, obj: Organization) -> str | None:
        return self.context.get("role")


class OrganizationSettingsSerializer(StrictSerializer):
    """What the organization's admins change themselves (the slug and plain-http calls are platform staff's)."""

    name = serializers.CharField(max_length=200, required=False)
    default_time_zone = serializers.CharField(
        max_length=64,
        required=False,
        help_text=_("IANA name, e.g. Europe/Paris: send windows for profiles without a time zone of their own."),
    )
    time_zone_attribute = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text=_("The profile attribute that holds a profile's time zone (an IANA name)."),
    )

    def validate_default_time_zone(self, value: str) -> str:
        if not is_time_zone(value.strip()):
            raise serializers.ValidationError(_("Not a time zone: give an IANA name such as Europe/Paris or UTC."))
        return value.strip()


class OrganizationViewSet(OrgScopedViewSet):
    """The organization itself, and the caller's role in it (any member, or a `read` key)."""

    queryset = Organization.objects.all()
    serializer_class = OrganizationSerializer
    read_capability = Capability.VIEW_JOURNEYS

    @extend_schema(responses=OrganizationSerializer)
    def retrieve(self, request: Request, org_slug: str) -> Response:
        return Response(OrganizationSerializer(self.organization, context={"role": self.role}).data)

    @extend_schema(request=OrganizationSettingsSerializer, responses=OrganizationSerializer)
    def partial_update(self, request: Request, org_slug: str) -> Response:
        """Change the organization's name and time-zone settings (admin role)."""
        data = OrganizationSettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organization = organization_settings_update(organization=self.organization, data=data.validated_data)
        return Response(OrganizationSerializer(organization, context={"role": self.role}).data)


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]


class MembershipUpdateSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, OrgScopedViewSet):
    """Members of the organization and their roles (admin role only). People join by invitation."""

    queryset = Membership.objects.select_related("user")
    serializer_class = MembershipSerializer
    read_capability = Capability.MANAGE_MEMBERS
    write_capability = Capability.MANAGE_MEMBERS
    http_method_names = ["get", "patch", "delete", "head", "options"]

    @extend_schema(request=MembershipUpdateSerializer, responses=MembershipSerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = MembershipUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = membership_change_role(membership=self.get_object(), **data.validated_data)
        return Response(MembershipSerializer(membership).data)

    def perform_destroy(self, instance: Membership) -> None:
        membership_remove(membership=instance)


class InvitationSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=Invitation.Status.choices, read_only=True)
    invited_by = serializers.CharField(source="invited_by.username", read_only=True, default=None)

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "username",
            "role",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
        ]


class InvitationCreateSerializer(StrictSerializer):
    email = serializers.CharField(max_length=254, required=False, allow_blank=True, help_text=_("The invitee's email."))
    username = serializers.CharField(
        max_length=150, required=False, allow_blank=True, help_text=_("Or their username.")
    )
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationCreatedSerializer(InvitationSerializer):
    token = serializers.CharField(
        help_text=_("Give it to the invitee, who accepts with POST /api/v1/invitations/accept/. Shown only now.")
    )

    class Meta(InvitationSerializer.Meta):
        fields = [*InvitationSerializer.Meta.fields, "token"]


class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Invitations to join the organization (admin role only). The answer never says whether the invitee
    has an account: a person becomes a member only by accepting."""

    queryset = Invitation.objects.select_related("invited_by")
    serializer_class = InvitationSerializer
    read_capability = Capability.MANAGE_MEMBERS
    write_capability = Capability.MANAGE_MEMBERS
    not_found_detail = _("Invitation not found.")

    @extend_schema(request=InvitationCreateSerializer, responses={201: InvitationCreatedSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, raw_token = invitation_create(
            organization=self.organization, invited_by=request.user, **data.validated_data
        )
        invitation.token = raw_token
        return Response(InvitationCreatedSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=InvitationSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, org_slug: str, pk: str) -> Response:
        """Revoke a pending invitation: its token stops working."""
        return Response(InvitationSerializer(invitation_revoke(invitation=self.get_object())).data)


class InvitationAcceptSerializer(StrictSerializer):
    token = serializers.CharField(max_length=100, help_text=_("The token the organization's admin gave you."))


class InvitationAcceptView(APIView):
    """Accept an invitation addressed to you (your username, or your account's email): you become a member
    with the invited role. The token travels in the body, never in a URL that logs would keep."""

    @extend_schema(
        request=InvitationAcceptSerializer,
        responses={
            201: inline_serializer(
                "InvitationAccepted", {"organization": serializers.CharField(), "role": serializers.CharField()}
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = InvitationAcceptSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = invitation_accept(raw_token=data.validated_data["token"], user=request.user)
        return Response(
            {"organization": membership.organization.slug, "role": membership.role}, status=status.HTTP_201_CREATED
        )


class ApiKeySerializer(serializers.ModelSerializer):
    revoked = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "created_at",
            "expires_at",
            "revoked",
            "revoked_at",
            "last_used_at",
        ]

    def get_revoked(self, obj: ApiKey) -> bool:
        return obj.revoked_at is not None


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices), min_length=1)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text=_("The full key. Shown only in this answer; store it now."))

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Organization API keys for external systems (admin role only). Only a hash is stored."""

    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    read_capability = Capability.MANAGE_MEMBERS
    write_capability = Capability.MANAGE_MEMBERS

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        data = ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user if request.user.is_authenticated else None
        key, raw_key = api_key_create(organization=self.organization, created_by=user, **data.validated_data)
        key.key = raw_key
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, org_slug: str, pk: str) -> Response:
        """Revoke the key at once; it stays listed for the record."""
        return Response(ApiKeySerializer(api_key_revoke(api_key=self.get_object())).data)


class TokenRequestSerializer(StrictSerializer, AuthTokenSerializer):
    """DRF's, strict and bounded: a username past Django's 150 characters is no user's, and the
    lockout's own record of failed logins (django-axes) could not store it."""

    username = serializers.CharField(write_only=True, max_length=150)
    password = serializers.CharField(write_only=True, max_length=4096, trim_whitespace=False)


class TokenView(ObtainAuthToken):
    """Exchange a username and password for a user token (`Authorization: Token <token>`).

    The token expires `CONDUIT_USER_TOKEN_TTL_S` after it was issued (7 days by default), and ends
    earlier at a logout or a password change.
    """

    # Counted per client address, taken from the socket unless a trusted proxy forwards it (tenants.throttling).
    throttle_classes = [LoginRateThrottle]
    throttle_scope = "login"
    serializer_class = TokenRequestSerializer
    # ObtainAuthToken brings DRF's own parsers: JSON goes through the strict one, as everywhere.
    parser_classes = [StrictJSONParser, FormParser, MultiPartParser]

    @extend_schema(
        request=TokenRequestSerializer,
        responses=inline_serializer(
            "TokenResponse",
            {
                "token": serializers.CharField(),
                "expires_at": serializers.DateTimeField(help_text=_("Log in again after this.")),
            },
        ),
        auth=[],
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = user_token_issue(user=serializer.validated_data["user"])
        return Response({"token": token.key, "expires_at": user_token_expires_at(token=token)})


class LogoutView(APIView):
    """End the caller's login: the user token stops working at once (and a browser session closes)."""

    @extend_schema(request=None, responses={204: OpenApiResponse(description=_("Logged out."))})
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, Token):
            # One token per user (DRF's): every client that shares it logs in again.
            user_tokens_revoke(user=request.user)
        if isinstance(request.successful_authenticator, SessionAuthentication):
            logout(request)
        return Response(status=status.HTTP_204_NO_CONTENT)
