"""The API of secret values: {{secrets.NAME}} values, write-only (SPEC section 2)."""

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from actions.models import SecretValue
from actions.services import secret_values
from config.common.serializers import StrictSerializer
from tenants.roles import Capability
from tenants.scoping import OrgScopedViewSet


class SecretValueSerializer(StrictSerializer, serializers.ModelSerializer):
    value = serializers.CharField(
        write_only=True, required=False, trim_whitespace=False,
        help_text=gettext_lazy("Write-only. Required to create; leave out on update to keep the stored value."),
    )  # fmt: skip
    reference = serializers.SerializerMethodField(
        help_text=gettext_lazy("What to write in a template: {{secrets.NAME}}.")
    )
    used_by = serializers.SerializerMethodField(help_text=gettext_lazy("Actions whose templates reference it."))

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
