"""An organization's secret values, its SMTP settings and the action template catalogue.

Technical users and admins only: each holds or creates credentials. Secret values and the
SMTP password are write-only; answers say only that they are set.
"""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from actions.api.actions import ActionSerializer
from actions.models import Action, EmailSettings, SecretValue
from actions.services import email_settings, secret_values
from actions.services import templates as catalogue
from tenants.api import StrictSerializer
from tenants.roles import Capability
from tenants.scoping import OrgScopedViewSet

# --- secret values ------------------------------------------------------------------


class SecretValueSerializer(StrictSerializer, serializers.ModelSerializer):
    value = serializers.CharField(
        write_only=True, required=False, trim_whitespace=False,
        help_text="Write-only. Required to create; leave out on update to keep the stored value.",
    )  # fmt: skip
    reference = serializers.SerializerMethodField(help_text="What to write in a template: {{secrets.NAME}}.")
    used_by = serializers.SerializerMethodField(help_text="Actions whose templates reference it.")

    class Meta:
        model = SecretValue
        fields = ["id", "name", "value", "description", "reference", "used_by", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators = []  # name form and uniqueness: the service, in the admin's words
        extra_kwargs = {"name": {"validators": []}}

    def get_reference(self, obj: SecretValue) -> str:
        return "{{secrets." + obj.name + "}}"

    def get_used_by(self, obj: SecretValue) -> list[str]:
        # Read once per answer, not once per secret of a list.
        if "secret_values_used" not in self.context:
            self.context["secret_values_used"] = secret_values.secret_values_used(organization=obj.organization)
        return self.context["secret_values_used"].get(obj.name, [])


class SecretValueViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, OrgScopedViewSet):
    """Named, encrypted constants that actions reference as `{{secrets.NAME}}` in their URL path, query,
    headers or body (e.g. a Slack webhook's path). Values are never answered; requests show the
    reference, never the value."""

    queryset = SecretValue.objects.all()
    serializer_class = SecretValueSerializer
    read_capability = Capability.MANAGE_ACTIONS
    write_capability = Capability.MANAGE_ACTIONS

    @extend_schema(request=SecretValueSerializer, responses={201: SecretValueSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        data = self.validated_input()
        secret = secret_values.secret_value_save(organization=self.organization, data=data)
        return Response(SecretValueSerializer(secret).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SecretValueSerializer, responses=SecretValueSerializer)
    def update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = self.validated_input()
        secret = secret_values.secret_value_save(organization=self.organization, data=data, instance=self.get_object())
        return Response(SecretValueSerializer(secret).data)

    @extend_schema(request=SecretValueSerializer, responses=SecretValueSerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = self.validated_input(partial=True)
        secret = secret_values.secret_value_save(organization=self.organization, data=data, instance=self.get_object())
        return Response(SecretValueSerializer(secret).data)

    def perform_destroy(self, instance: SecretValue) -> None:
        secret_values.secret_value_delete(secret=instance)


# --- email settings -----------------------------------------------------------------


class EmailSettingsSerializer(StrictSerializer, serializers.ModelSerializer):
    password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False,
        help_text="Write-only; leave out to keep the stored one.",
    )  # fmt: skip
    clear_password = serializers.BooleanField(write_only=True, required=False, help_text="Remove the password.")
    password_set = serializers.SerializerMethodField()

    class Meta:
        model = EmailSettings
        fields = [
            "host", "port", "security", "username", "password", "clear_password", "password_set",
            "default_from", "timeout_s", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["updated_at"]
        extra_kwargs = {"host": {"validators": []}, "port": {"validators": []}, "timeout_s": {"validators": []}}

    def get_password_set(self, obj: EmailSettings) -> bool:
        return bool(obj.password)


class EmailSettingsViewSet(OrgScopedViewSet):
    """The organization's SMTP connection, used by every email action (`kind: "email"`)."""

    queryset = EmailSettings.objects.all()
    serializer_class = EmailSettingsSerializer
    read_capability = Capability.MANAGE_ACTIONS
    write_capability = Capability.MANAGE_ACTIONS

    def dangerously_get_object(self) -> EmailSettings:
        """The organization's one row, found without a lookup in the URL: the documented exemption from
        the base's get_object (a singleton); it still reads the organization's own queryset."""
        found = self.get_queryset().first()
        if found is None:
            raise Http404("This organization has no email settings yet; PUT them first.")
        return found

    def retrieve(self, request: Request, org_slug: str) -> Response:
        return Response(EmailSettingsSerializer(self.dangerously_get_object()).data)

    @extend_schema(request=EmailSettingsSerializer, responses=EmailSettingsSerializer)
    def update(self, request: Request, org_slug: str) -> Response:
        data = self.validated_input(partial=request.method == "PATCH")
        saved = email_settings.email_settings_save(organization=self.organization, data=data)
        return Response(EmailSettingsSerializer(saved).data)

    @extend_schema(request=EmailSettingsSerializer, responses=EmailSettingsSerializer)
    def partial_update(self, request: Request, org_slug: str) -> Response:
        return self.update(request, org_slug)


# --- action templates ---------------------------------------------------------------


class CredentialSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    secret = serializers.BooleanField(help_text="Stored encrypted and never shown again.")
    required = serializers.BooleanField()
    help = serializers.CharField(allow_blank=True)


class ActionTemplateSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    provider = serializers.CharField()
    category = serializers.CharField(help_text="sms, email, push, chat, ads, analytics or webhook.")
    description = serializers.CharField()
    docs_url = serializers.URLField(help_text="The provider's documentation of the request.")
    request = serializers.CharField(help_text="The request the action sends, in one line.")
    credentials = CredentialSerializer(many=True, help_text="What to give to create an action from it.")
    parameters = serializers.ListField(child=serializers.DictField(), help_text="The action's parameters.")


class FromTemplateSerializer(StrictSerializer):
    template = serializers.CharField(help_text="The template's key, e.g. twilio_sms.")
    name = serializers.CharField(required=False, max_length=200, help_text="Defaults to the template's name.")
    status = serializers.ChoiceField(
        choices=[Action.Status.DRAFT, Action.Status.ACTIVE], required=False, default=Action.Status.DRAFT
    )
    credentials = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False, default=dict,
        help_text="The template's credentials by name.",
    )  # fmt: skip


class ActionTemplateViewSet(OrgScopedViewSet):
    """Ready templates for well-known providers (Twilio, SendGrid, Firebase, Slack, Teams, Meta,
    Segment, a generic webhook, built-in email). Creating from one asks only for credentials and
    gives an ordinary action, editable like any other."""

    read_capability = Capability.MANAGE_ACTIONS
    write_capability = Capability.MANAGE_ACTIONS
    serializer_class = ActionTemplateSerializer
    pagination_class = None
    queryset = Action.objects.none()  # templates are code, not rows
    lookup_field = "key"
    lookup_value_regex = "[a-z0-9_]+"

    @extend_schema(responses=ActionTemplateSerializer(many=True))
    def list(self, request: Request, org_slug: str) -> Response:
        return Response([catalogue.template_summary(t) for t in catalogue.TEMPLATES.values()])

    @extend_schema(
        responses=ActionTemplateSerializer,
        parameters=[OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="e.g. twilio_sms")],
    )
    def retrieve(self, request: Request, org_slug: str, key: str) -> Response:
        template = catalogue.TEMPLATES.get(key)
        if template is None:
            raise Http404("No such action template.")
        return Response(catalogue.template_summary(template))

    @extend_schema(request=FromTemplateSerializer, responses={201: ActionSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        """Create an action from a template and the credentials it asks for."""
        given = FromTemplateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        action = catalogue.action_from_template(
            organization=self.organization, key=data["template"], credentials=data["credentials"],
            name=data.get("name"), status=data["status"], user=request.user,
        )  # fmt: skip
        return Response(ActionSerializer(action).data, status=status.HTTP_201_CREATED)
