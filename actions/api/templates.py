"""The API of the action template catalogue: list the templates, create an action from one."""

from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from actions.api.actions import ActionSerializer
from actions.models import Action
from actions.services import templates as catalogue
from config.common.serializers import StrictSerializer
from tenants.roles import Capability
from tenants.scoping import OrgScopedViewSet


class CredentialSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    secret = serializers.BooleanField(help_text=gettext_lazy("Stored encrypted and never shown again."))
    required = serializers.BooleanField()
    help = serializers.CharField(allow_blank=True)


class ActionTemplateSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    provider = serializers.CharField()
    category = serializers.CharField(help_text=gettext_lazy("sms, email, push, chat, ads, analytics or webhook."))
    description = serializers.CharField()
    docs_url = serializers.URLField(help_text=gettext_lazy("The provider's documentation of the request."))
    request = serializers.CharField(help_text=gettext_lazy("The request the action sends, in one line."))
    credentials = CredentialSerializer(many=True, help_text=gettext_lazy("What to give to create an action from it."))
    parameters = serializers.ListField(
        child=serializers.DictField(), help_text=gettext_lazy("The action's parameters.")
    )


class FromTemplateSerializer(StrictSerializer):
    template = serializers.CharField(help_text=gettext_lazy("The template's key, e.g. twilio_sms."))
    name = serializers.CharField(
        required=False, max_length=200, help_text=gettext_lazy("Defaults to the template's name.")
    )
    status = serializers.ChoiceField(
        choices=[Action.Status.DRAFT, Action.Status.ACTIVE], required=False, default=Action.Status.DRAFT
    )
    credentials = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False, default=dict,
        help_text=gettext_lazy("The template's credentials by name."),
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
        parameters=[
            OpenApiParameter(
                "key", OpenApiTypes.STR, OpenApiParameter.PATH, description=gettext_lazy("e.g. twilio_sms")
            )
        ],
    )
    def retrieve(self, request: Request, org_slug: str, key: str) -> Response:
        template = catalogue.TEMPLATES.get(key)
        if template is None:
            raise Http404(_("No such action template."))
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
