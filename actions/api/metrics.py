"""The API of per-action metrics over a window."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from actions.models import Action
from actions.services.metrics import WINDOW_HELP, action_metrics, in_flight_metrics, parse_window
from tenants.roles import Capability, role_can
from tenants.scoping import OrgScopedViewSet


class MetricsBucketSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    calls = serializers.IntegerField()
    failures = serializers.IntegerField(help_text=gettext_lazy("Calls that did not succeed (failed or rate limited)."))


class WorkerCallsSerializer(serializers.Serializer):
    worker = serializers.CharField(help_text=gettext_lazy("A worker process: its machine's host name and process id."))
    calls = serializers.IntegerField(help_text=gettext_lazy("Calls of the organization it has open now."))


class HostInFlightSerializer(serializers.Serializer):
    host = serializers.CharField()
    calls = serializers.IntegerField(
        help_text=gettext_lazy("Calls of the organization open to the host now, all workers together.")
    )
    max_concurrent = serializers.IntegerField(
        help_text=gettext_lazy(
            "The host's cap on calls open at once: its endpoint limit's max_concurrent, else the default (400)."
        )
    )
    workers = WorkerCallsSerializer(many=True, help_text=gettext_lazy("Each worker process's open calls to the host."))


class InFlightSerializer(serializers.Serializer):
    calls = serializers.IntegerField(help_text=gettext_lazy("Calls of the organization open now, to every host."))
    hosts = HostInFlightSerializer(many=True, help_text=gettext_lazy("Hosts with calls open now, by host name."))
    workers = WorkerCallsSerializer(many=True, help_text=gettext_lazy("Worker processes with calls open now, by name."))
    max_in_flight = serializers.IntegerField(
        help_text=gettext_lazy("Calls one worker process keeps open at most, for every organization together.")
    )


class ActionMetricsSerializer(serializers.Serializer):
    action = serializers.IntegerField()
    window = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    calls = serializers.IntegerField(help_text=gettext_lazy("Finished invocations: succeeded, failed or rate limited."))
    succeeded = serializers.IntegerField()
    http_4xx = serializers.IntegerField()
    http_5xx = serializers.IntegerField()
    timeouts = serializers.IntegerField()
    rate_limited = serializers.IntegerField()
    capped = serializers.IntegerField(
        help_text=gettext_lazy("Calls of journey steps a frequency cap held back (never made, so not in calls).")
    )
    errors = serializers.IntegerField(help_text=gettext_lazy("Other failures: error, refused, circuit_open."))
    success_rate = serializers.FloatField(allow_null=True, help_text=gettext_lazy("0 to 1; null without calls."))
    latency_p50_ms = serializers.IntegerField(allow_null=True)
    latency_p95_ms = serializers.IntegerField(allow_null=True)
    calls_per_second = serializers.FloatField()
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    bucket_s = serializers.IntegerField(help_text=gettext_lazy("The width of each series bucket, in seconds."))
    series = MetricsBucketSerializer(many=True)
    in_flight = InFlightSerializer(
        allow_null=True,
        help_text=gettext_lazy(
            "The organization's calls open now, to every host (not only this action's): for admins and "
            "technical users; null for other roles and API keys."
        ),
    )


class ActionMetricsViewSet(OrgScopedViewSet):
    """An action's calls, outcomes, latency and throughput over a window, for every role; with the
    organization's calls open now (`in_flight`) for the roles that manage actions."""

    queryset = Action.objects.all()
    read_capability = Capability.VIEW_JOURNEYS
    write_capability = Capability.MANAGE_ACTIONS
    not_found_detail = gettext_lazy("Action not found.")

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "id", OpenApiTypes.INT, OpenApiParameter.PATH, description=gettext_lazy("The action's id.")
            ),
            OpenApiParameter(
                "window", OpenApiTypes.STR, description=format_lazy("{} {}", WINDOW_HELP, gettext_lazy("Default 1h."))
            ),
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
        # Open calls are operations data, as host limits are: only for the roles that manage actions.
        in_flight = in_flight_metrics(organization=self.organization) if self.sees_in_flight() else None
        body = {**metrics, "action": action.pk, "window": window_text, "in_flight": in_flight}
        return Response(ActionMetricsSerializer(body).data)

    def sees_in_flight(self) -> bool:
        return role_can(self.role, Capability.MANAGE_ACTIONS)
