"""The API of the organization's SMTP settings, used by every email action."""

from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from actions.models import EmailSettings
from actions.services import email_settings
from config.common.serializers import StrictSerializer
from tenants.roles import Capability
from tenants.scoping import OrgScopedViewSet


class EmailSettingsSerializer(StrictSerializer, serializers.ModelSerializer):
    password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False,
        help_text=gettext_lazy("Write-only; leave out to keep the stored one."),
    )  # fmt: skip
    clear_password = serializers.BooleanField(
        write_only=True, required=False, help_text=gettext_lazy("Remove the password.")
    )
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
            raise Http404(_("This organization has no email settings yet; PUT them first."))
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
