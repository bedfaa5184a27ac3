"""The API of frequency caps: `/api/v1/orgs/{org}/frequency-caps/`."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from config.common.serializers import StrictSerializer
from journeys.frequency_caps import services
from journeys.models import FrequencyCap
from tenants.roles import Capability
from tenants.scoping import OrgScopedViewSet


class FrequencyCapSerializer(StrictSerializer, serializers.ModelSerializer):
    class Meta:
        model = FrequencyCap
        fields = ["id", "category", "max_calls", "period_days", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Shapes, ranges and uniqueness are checked by the service, with the same words as the admin.
        validators = []
        extra_kwargs = {
            "category": {
                "validators": [],
                "help_text": _("A category actions are tagged with (their `categories`), e.g. marketing-sms."),
            },
            "max_calls": {"validators": [], "help_text": _("Calls per profile in the period, at least 1.")},
            "period_days": {"validators": [], "help_text": _("The sliding period, 1 to 90 days.")},
        }


class FrequencyCapViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, OrgScopedViewSet):
    """Frequency caps: at most `max_calls` calls of a category per profile in any `period_days`, across every
    journey; a call that would exceed one is not made and its step takes `on_capped`. Everyone reads them;
    admins and technical users edit them."""

    queryset = FrequencyCap.objects.all()
    serializer_class = FrequencyCapSerializer
    read_capability = Capability.VIEW_JOURNEYS
    write_capability = Capability.MANAGE_ACTIONS
    not_found_detail = _("Frequency cap not found.")

    @extend_schema(request=FrequencyCapSerializer, responses={201: FrequencyCapSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        cap = services.frequency_cap_create(organization=self.organization, data=self.validated_input())
        return Response(FrequencyCapSerializer(cap).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=FrequencyCapSerializer, responses=FrequencyCapSerializer)
    def update(self, request: Request, org_slug: str, pk: str) -> Response:
        cap = self.get_object()  # another organization's: 404 before any word on the input
        cap = services.frequency_cap_update(frequency_cap=cap, data=self.validated_input(partial=False))
        return Response(FrequencyCapSerializer(cap).data)

    @extend_schema(request=FrequencyCapSerializer, responses=FrequencyCapSerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        cap = self.get_object()  # another organization's: 404 before any word on the input
        cap = services.frequency_cap_update(frequency_cap=cap, data=self.validated_input(partial=True))
        return Response(FrequencyCapSerializer(cap).data)

    def perform_destroy(self, instance: FrequencyCap) -> None:
        services.frequency_cap_delete(frequency_cap=instance)
