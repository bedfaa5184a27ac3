"""The API door to the invocation log: invocations, replay, per-action metrics, host limits.

Thin, as `actions.api.actions`: validate, call `actions.services.metrics`, serialize. Request and
response bodies are shown only to roles that may see them (admin, technical).
"""

from datetime import UTC
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action as api_action
from rest_framework.request import Request
from rest_framework.response import Response

from actions.models import Action, EndpointLimit, Invocation, InvocationAttempt
from actions.selectors import invocation_request_shown
from actions.services import endpoint_limits, replays
from actions.services import metrics as observability
from tenants.api import StrictSerializer
from tenants.roles import Capability, role_can
from tenants.scoping import OrgScopedViewSet, get_object_in_org

# --- invocations --------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number the database can hold (fuzzing found 500s for 2**65)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 time compared in UTC: PostgreSQL refuses offsets past 15:59 that Python accepts
    (fuzzing sent +23:35)."""

    def filter(self, qs: Any, value: Any) -> Any:
        return super().filter(qs, value.astimezone(UTC) if value else value)


class InvocationFilter(django_filters.FilterSet):
    action = IdFilter(field_name="action_id", help_text="The action's id.")
    status = django_filters.ChoiceFilter(choices=Invocation.Status.choices)
    outcome = django_filters.CharFilter(help_text="e.g. succeeded, http_404, timedout, rate_limited.")
    since = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text="Created at or after (ISO 8601).")
    until = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt", help_text="Created before (ISO 8601).")

    class Meta:
        model = Invocation
        fields = ["action", "status", "outcome", "since", "until"]


STATUS_HELP = "pending, running, succeeded, failed or rate_limited."


class InvocationStatusSerializer(serializers.ModelSerializer):
    """An invocation's status, for every role: never its request or response bodies."""

    action_name = serializers.CharField(source="action.name", read_only=True)
    # A string, not an enum, in the schema: the actions' `status` enum owns that component name.
    status = serializers.CharField(read_only=True, help_text=STATUS_HELP)

    class Meta:
        model = Invocation
        fields = [
            "id", "action", "action_name", "origin", "origin_ref", "replay_of", "status", "outcome",
            "attempts", "latency_ms", "response_status", "error", "created_at", "finished_at",
            "next_attempt_at",
        ]  # fmt: skip
        read_only_fields = fields


class InvocationAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvocationAttempt
        fields = [
            "number", "outcome", "response_status", "response_headers", "response_body", "error",
            "latency_ms", "started_at",
        ]  # fmt: skip
        read_only_fields = fields


BODIES_ONLY = "Only for the admin and technical roles."


class InvocationSerializer(InvocationStatusSerializer):
    """With the rendered request (secrets masked), the response and every attempt: admin and technical.

    The body fields are declared optional (not read-only) so that the schema says they may be absent.
    """

    request = serializers.JSONField(required=False, help_text=f"The rendered request. {BODIES_ONLY}")
    response_headers = serializers.JSONField(required=False, help_text=BODIES_ONLY)
    response_body = serializers.CharField(required=False, help_text=f"Truncated. {BODIES_ONLY}")
    attempt_log = InvocationAttemptSerializer(many=True, required=False, help_text=BODIES_ONLY)

    class Meta(InvocationStatusSerializer.Meta):
        fields = [
            *InvocationStatusSerializer.Meta.fields,
            "request",
            "response_headers",
            "response_body",
            "attempt_log",
        ]
        read_only_fields = InvocationStatusSerializer.Meta.fields

    def to_representation(self, obj: Invocation) -> dict:
        data = super().to_representation(obj)
        if "request" in data:  # a secret value shows as {{secrets.NAME}}, as it was written
            data["request"] = invocation_request_shown(obj)
        return data


class ReplaySerializer(StrictSerializer):
    invocation = serializers.UUIDField(required=False, help_text="Replay this one failed invocation.")
    action = serializers.IntegerField(
        required=False, help_text="Or replay every failed invocation of this action in [since, until)."
    )
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, data: dict) -> dict:
        if ("invocation" in data) == ("action" in data):
            raise serializers.ValidationError(
                {"invocation": "Give either an invocation, or an action with since and until."}
            )
        if "action" in data:
            missing = {name: "Required with action." for name in ("since", "until") if name not in data}
            if missing:
                raise serializers.ValidationError(missing)
            if data["since"] >= data["until"]:
                raise serializers.ValidationError({"until": "Must be later than since."})
        elif "since" in data or "until" in data:
            raise serializers.ValidationError({"since": "A time range goes with an action, not an invocation."})
        return data


class ReplayedSerializer(serializers.ModelSerializer):
    class Meta:
        model = Invocation
        fields = ["id", "replay_of"]
        read_only_fields = fields


class InvocationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Every call of an action, newest first. Everyone sees statuses; request and response bodies
    and the attempt log only admins and technical users."""

    queryset = Invocation.objects.select_related("action")
    read_capability = Capability.VIEW_JOURNEYS
    write_capability = Capability.MANAGE_ACTIONS
    filterset_class = InvocationFilter

    def sees_bodies(self) -> bool:
        return role_can(self.role, Capability.VIEW_INVOCATION_BODIES)

    def scope_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.prefetch_related("attempt_log") if self.sees_bodies() else queryset

    def get_serializer_class(self):
        if getattr(self, "swagger_fake_view", False) or self.sees_bodies():
            return InvocationSerializer
        return InvocationStatusSerializer

    @extend_schema(request=ReplaySerializer, responses={202: ReplayedSerializer(many=True)})
    @api_action(detail=False, methods=["post"], capability=Capability.MANAGE_ACTIONS)
    def replay(self, request: Request, org_slug: str) -> Response:
        """Send a failed invocation again, with the same Idempotency-Key, linked to the original; or all
        failed invocations of an action created in [since, until) that were not replayed yet."""
        data = ReplaySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if "invocation" in values:
            original = get_object_in_org(self.get_queryset(), self.organization, pk=values["invocation"])
            replayed = [replays.failed_invocation_replay(invocation=original)]
        else:
            action = get_object_in_org(Action.objects.all(), self.organization, pk=values["action"])
            replayed = replays.invocations_replay_failed(action=action, since=values["since"], until=values["until"])
        return Response(ReplayedSerializer(replayed, many=True).data, status=status.HTTP_202_ACCEPTED)


# --- metrics ------------------------------------------------------------------------


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

    @extend_schema(
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The action's id."),
            OpenApiParameter("window", OpenApiTypes.STR, description=f"{observability.WINDOW_HELP} Default 1h."),
        ],
        responses=ActionMetricsSerializer,
    )
    def metrics(self, request: Request, org_slug: str, pk: int) -> Response:
        action = get_object_in_org(self.get_queryset(), self.organization, pk=pk)
        window_text = request.query_params.get("window", "1h")
        try:
            window = observability.parse_window(window_text)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        metrics = observability.action_metrics(action=action, window=window)
        return Response(ActionMetricsSerializer({**metrics, "action": action.pk, "window": window_text}).data)


# --- endpoint limits ----------------------------------------------------------------


class EndpointLimitSerializer(StrictSerializer, serializers.ModelSerializer):
    class Meta:
        model = EndpointLimit
        fields = ["id", "host", "calls", "period_s"]
        read_only_fields = ["id"]
        # Host form and uniqueness are checked by the service, with the same words as the admin.
        validators = []
        extra_kwargs = {"host": {"validators": []}, "period_s": {"help_text": "Seconds, 1 to 86400."}}


class EndpointLimitViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, OrgScopedViewSet
):
    """Host limits: all calls of the organization to one host share `calls` per `period_s`
    (300,000 per 60 s where none is set). Technical users and admins."""

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
