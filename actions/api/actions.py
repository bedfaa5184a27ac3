from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action as api_action
from rest_framework.request import Request
from rest_framework.response import Response

from actions.api.action_changes import ChangePreviewSerializer
from actions.models import Action
from actions.selectors import action_auth_shown, action_usage
from actions.services import actions as services
from actions.services import samples
from actions.services.action_changes import action_change_preview
from config.common.serializers import StrictSerializer
from tenants.roles import Capability, role_can
from tenants.scoping import OrgScopedViewSet


class PaletteActionSerializer(serializers.ModelSerializer):
    """What marketers and viewers see: never URL, headers, auth, signing secret or certificate."""

    used_in = serializers.SerializerMethodField()

    class Meta:
        model = Action
        fields = ["id", "name", "description", "status", "parameters", "used_in"]
        read_only_fields = fields

    def get_used_in(self, obj: Action) -> list[dict]:
        return action_usage(action=obj)


class ActionSerializer(StrictSerializer, serializers.ModelSerializer):
    """An action's whole configuration, for technical users. Secrets are write-only."""

    query = serializers.JSONField(required=False)
    headers = serializers.JSONField(required=False)
    body = serializers.JSONField(required=False, allow_null=True)
    email = serializers.JSONField(
        required=False, allow_null=True,
        help_text=gettext_lazy(
            'For kind "email": templates {"to", "cc", "reply_to", "from", "subject", "text", "html"}; '
            "placeholders as in a body ({{name}}), values escaped in html."
        ),
    )  # fmt: skip
    parameters = serializers.JSONField(required=False)
    categories = serializers.JSONField(
        required=False,
        help_text=gettext_lazy(
            'Frequency-cap categories, e.g. ["marketing-sms"]: at most 20 slugs; the organization\'s caps count '
            "a profile's calls per category."
        ),
    )
    response_schema = serializers.JSONField(required=False, allow_null=True)
    auth = serializers.JSONField(
        required=False,
        help_text=gettext_lazy(
            'One of the six auth objects, e.g. {"type": "bearer", "token": "..."}. Secrets are '
            "write-only: answers say only `<name>_set`; omit a secret to keep the stored one."
        ),
    )
    signing_secret = serializers.CharField(
        required=False, write_only=True, allow_blank=True,
        help_text=gettext_lazy(
            'A Standard Webhooks secret (whsec_...), or "generate" for a new one. A generated secret is in '
            "the answer to that request as `generated_signing_secret`, and never again."
        ),
    )  # fmt: skip
    clear_signing_secret = serializers.BooleanField(required=False, write_only=True)
    signing_secret_set = serializers.SerializerMethodField()
    generated_signing_secret = serializers.SerializerMethodField(
        help_text=gettext_lazy('The secret "generate" made, in the answer to that request only; null otherwise.')
    )
    send_window = serializers.JSONField(
        required=False, allow_null=True,
        help_text=gettext_lazy(
            'Quiet hours, in the profile\'s time zone: {"days": [0, 1, 2, 3, 4] (Monday 0), "start": "09:00", '
            '"end": "20:00", "skip_dates": ["2026-12-25"]}; an end at or before the start ends the next day; '
            "null: any time. A call due outside waits for the next opening."
        ),
    )  # fmt: skip
    client_key = serializers.CharField(required=False, write_only=True, allow_blank=True)
    clear_client_certificate = serializers.BooleanField(
        required=False, write_only=True, help_text=gettext_lazy("Remove the client certificate and its key.")
    )
    client_key_set = serializers.SerializerMethodField()
    used_in = serializers.SerializerMethodField()

    class Meta:
        model = Action
        fields = [
            "id", "name", "description", "status", "kind", "method", "url", "query", "headers", "body",
            "body_type", "email", "parameters", "auth", "signing_secret", "clear_signing_secret", "signing_secret_set",
            "generated_signing_secret", "response_schema", "timeout_ms", "max_retries", "rate_limit_calls",
            "rate_limit_period_s", "on_rate_limit", "client_certificate", "client_key", "clear_client_certificate",
            "client_key_set", "send_window", "used_in", "created_at", "updated_at",
            "categories",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness and ranges are checked by the service, with the other rules.
        validators = []
        extra_kwargs = {
            "name": {"validators": []},
            "timeout_ms": {"validators": []},
            "max_retries": {"validators": []},
            "url": {"validators": []},
        }

    def to_representation(self, obj: Action) -> dict:
        data = super().to_representation(obj)
        data["auth"] = action_auth_shown(action=obj)
        return data

    def get_signing_secret_set(self, obj: Action) -> bool:
        return bool(obj.signing_secret)

    def get_generated_signing_secret(self, obj: Action) -> str | None:
        return getattr(obj, "generated_signing_secret", None)  # set only by the save that generated it

    def get_client_key_set(self, obj: Action) -> bool:
        return bool(obj.client_key)

    def get_used_in(self, obj: Action) -> list[dict]:
        return action_usage(action=obj)


class TestRequestSerializer(StrictSerializer):
    parameters = serializers.DictField(
        required=False, default=dict, help_text=gettext_lazy("Parameter values by name.")
    )


class TestResultSerializer(serializers.Serializer):
    outcome = serializers.CharField()
    request = serializers.JSONField(help_text=gettext_lazy("The rendered request, secrets masked."))
    status_code = serializers.IntegerField(allow_null=True)
    response_headers = serializers.DictField(child=serializers.CharField())
    response_body = serializers.CharField(allow_blank=True)
    truncated = serializers.BooleanField()
    latency_ms = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)


class InferSerializer(StrictSerializer):
    sample = serializers.JSONField(required=False, help_text=gettext_lazy("A sample request body."))
    parameters = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text=gettext_lazy("Paths of the sample's fields that become parameters; the others stay constants."),
    )  # fmt: skip
    sample_response = serializers.JSONField(required=False, help_text=gettext_lazy("A sample response body."))

    def validate(self, data: dict) -> dict:
        if "sample" not in data and "sample_response" not in data:
            raise serializers.ValidationError({"sample": _("Give a sample body, a sample_response, or both.")})
        return data


class ActionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, OrgScopedViewSet):
    """Custom actions. Technical users and admins see and edit the configuration; everyone else
    (and API keys with `read`) sees the palette: active actions, name, description, parameters."""

    queryset = Action.objects.all()
    read_capability = Capability.VIEW_PALETTE
    write_capability = Capability.MANAGE_ACTIONS
    filterset_fields = ["status"]

    def sees_configuration(self) -> bool:
        return role_can(self.role, Capability.MANAGE_ACTIONS)

    def scope_queryset(self, queryset):
        return queryset if self.sees_configuration() else queryset.filter(status=Action.Status.ACTIVE)

    def get_serializer_class(self):
        if getattr(self, "swagger_fake_view", False) or self.sees_configuration():
            return ActionSerializer
        return PaletteActionSerializer

    @extend_schema(request=ActionSerializer, responses={201: ActionSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        data = self.validated_input(partial=False)
        created = services.action_create(organization=self.organization, data=data, user=request.user)
        return Response(ActionSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ActionSerializer, responses=ActionSerializer)
    def update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = self.validated_input(partial=False)
        return Response(ActionSerializer(services.action_update(action=self.get_object(), data=data)).data)

    @extend_schema(request=ActionSerializer, responses=ActionSerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = self.validated_input(partial=True)
        return Response(ActionSerializer(services.action_update(action=self.get_object(), data=data)).data)

    @extend_schema(
        summary="Preview a change to an action: its diff and the journeys that use it",
        request=ActionSerializer(partial=True),
        responses=ChangePreviewSerializer,
    )
    @api_action(detail=True, methods=["post"], capability=Capability.MANAGE_ACTIONS)
    def preview(self, request: Request, org_slug: str, pk: str) -> Response:
        """What a PATCH with this body would change, and the journeys that use the action; saves nothing."""
        data = self.validated_input(partial=True)
        return Response(ChangePreviewSerializer(action_change_preview(action=self.get_object(), data=data)).data)

    def perform_destroy(self, instance: Action) -> None:
        services.action_delete(action=instance)

    @extend_schema(request=TestRequestSerializer, responses=TestResultSerializer)
    @api_action(detail=True, methods=["post"], capability=Capability.MANAGE_ACTIONS)
    def test(self, request: Request, org_slug: str, pk: str) -> Response:
        """Send one real call with the given parameter values and answer what happened."""
        data = TestRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.action_test(action=self.get_object(), values=data.validated_data["parameters"])
        return Response(TestResultSerializer(result).data)

    @extend_schema(
        request=InferSerializer,
        responses=inline_serializer(
            "InferResult",
            {
                "fields": serializers.ListField(child=serializers.DictField()),
                "body": serializers.JSONField(),
                "parameters": serializers.ListField(child=serializers.DictField()),
                "response_schema": serializers.JSONField(),
            },
        ),
    )
    @api_action(detail=False, methods=["post"], capability=Capability.MANAGE_ACTIONS)
    def infer(self, request: Request, org_slug: str) -> Response:
        """From a pasted sample: its fields with inferred types; with `parameters`, the body template
        and parameter declarations; from a sample response, a response schema."""
        data = InferSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        answer: dict = {}
        if "sample" in data.validated_data:
            sample = data.validated_data["sample"]
            answer["fields"] = samples.sample_fields(sample)
            body, parameters = samples.body_from_sample(sample, data.validated_data.get("parameters", []))
            answer["body"], answer["parameters"] = body, parameters
        if "sample_response" in data.validated_data:
            answer["response_schema"] = samples.schema_from_sample(data.validated_data["sample_response"])
        return Response(answer)

    @extend_schema(request=None, responses={201: ActionSerializer})
    @api_action(detail=True, methods=["post"], capability=Capability.MANAGE_ACTIONS)
    def duplicate(self, request: Request, org_slug: str, pk: str) -> Response:
        copy = services.action_duplicate(action=self.get_object(), user=request.user)
        return Response(ActionSerializer(copy).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @api_action(detail=True, methods=["get"], capability=Capability.MANAGE_ACTIONS)
    def export(self, request: Request, org_slug: str, pk: str) -> Response:
        """The configuration as JSON without secrets, for `import` in another organization."""
        return Response(services.action_export(action=self.get_object()))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: ActionSerializer})
    @api_action(detail=False, methods=["post"], url_path="import", capability=Capability.MANAGE_ACTIONS)
    def import_action(self, request: Request, org_slug: str) -> Response:
        """Create a draft from an export; enter its secrets before activating it."""
        imported = services.action_import(organization=self.organization, data=request.data, user=request.user)
        return Response(ActionSerializer(imported).data, status=status.HTTP_201_CREATED)
