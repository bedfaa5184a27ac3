"""The API of per-action metrics over a window."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from actions.models import Action
from actions.services.metrics import WINDOW_HELP, action_metrics, parse_window
from tenants.roles import Capability
from tenants.scoping import OrgScopedViewSet


class MetricsBucketSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    calls = serializers.IntegerField()
    failures = serializers.IntegerField(help_text="Calls that did not succeed (failed or rate limited).")


class ActionMetricsSerializer(serializers.Serializer):
    action = serializers.IntegerField()
    window = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    calls = serializers.IntegerField(help_text="Finished invocations: succeeded, failed or rate limited.")
    succeeded = serializers.IntegerField()
    http_4xx = serializers.IntegerField()
    http_5xx = serializers.IntegerField()
    timeouts = serializers.IntegerField()
    rate_limited = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="Other failures: error, refused, circuit_open.")
    success_rate = serializers.FloatField(allow_null=True, help_text="0 to 1; null without calls.")
    latency_p50_ms = serializers.IntegerField(allow_null=True)
    latency_p95_ms = serializers.IntegerField(allow_null=True)
    calls_per_second = serializers.FloatField()
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    bucket_s = serializers.IntegerField(help_text="The width of each series bucket, in seconds.")
    series = MetricsBucketSerializer(many=True)


class ActionMetricsViewSet(OrgScopedViewSet):
    """An action's calls, outcomes, latency and throughput over a window, for every role."""

    queryset = Action.objects.all()
    read_capability = Capability.VIEW_JOURNEYS
    write_capability = Capability.MANAGE_ACTIONS
    not_found_detail = "Action not found."

    @extend_schema(
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The action's id."),
            OpenApiParameter("window", OpenApiTypes.STR, description=f"{WINDOW_HELP} Default 1h."),
        ],
        responses=ActionMetricsSerializer,
    )
    def metrics(self, request: Request, org_slug: str, pk: int) -> Response:
        action = self.get_object()
        window_text = request.query_params.get("window", "1h")
        try:
            window = parse_window(window_text)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        metrics = action_metrics(action=action, window=window)
        return Response(ActionMetricsSerializer({**metrics, "action": action.pk, "window": window_text}).data)
