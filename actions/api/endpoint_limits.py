"""The API of host limits (SPEC section 3)."""

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from actions.models import EndpointLimit
from actions.services import endpoint_limits
from config.common.serializers import StrictSerializer
from tenants.roles import Capability
from tenants.scoping import OrgScopedViewSet


class EndpointLimitSerializer(StrictSerializer, serializers.ModelSerializer):
    class Meta:
        model = EndpointLimit
        fields = ["id", "host", "calls", "period_s", "max_concurrent"]
        read_only_fields = ["id"]
        # Host form and uniqueness are checked by the service, with the same words as the admin.
        validators = []
        extra_kwargs = {
            "host": {"validators": []},
            "calls": {
                "help_text": gettext_lazy("Calls allowed per period_s, at least 1; 300000 when not given on create.")
            },
            "period_s": {"help_text": gettext_lazy("Seconds, 1 to 86400; 60 when not given on create.")},
            "max_concurrent": {
                "help_text": gettext_lazy(
                    "Calls open to the host at once, across every worker: 1 to 100000; 400 when not given on create."
                )
            },
        }


class EndpointLimitViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, OrgScopedViewSet
):
    """Host limits: all calls of the organization to one host share `calls` per `period_s` (300,000 per
    60 s where none is set), and at most `max_concurrent` of them are open at once (400 where none is
    set). A limit may give only some of the three. Technical users and admins."""

    queryset = EndpointLimit.objects.all()
    serializer_class = EndpointLimitSerializer
    read_capability = Capability.MANAGE_ACTIONS
    write_capability = Capability.MANAGE_ACTIONS

    @extend_schema(request=EndpointLimitSerializer, responses={201: EndpointLimitSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        data = self.validated_input(partial=False)
        limit = endpoint_limits.endpoint_limit_create(organization=self.organization, data=data)
        return Response(EndpointLimitSerializer(limit).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EndpointLimitSerializer, responses=EndpointLimitSerializer)
    def update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = self.validated_input(partial=False)
        limit = endpoint_limits.endpoint_limit_update(endpoint_limit=self.get_object(), data=data)
        return Response(EndpointLimitSerializer(limit).data)

    @extend_schema(request=EndpointLimitSerializer, responses=EndpointLimitSerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = self.validated_input(partial=True)
        limit = endpoint_limits.endpoint_limit_update(endpoint_limit=self.get_object(), data=data)
        return Response(EndpointLimitSerializer(limit).data)

    def perform_destroy(self, instance: EndpointLimit) -> None:
        endpoint_limits.endpoint_limit_delete(endpoint_limit=instance)
