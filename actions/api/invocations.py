"""The API of invocations: the log of every call, and replays. Thin: validate, call a service, serialize."""

import django_filters
from django.db.models import QuerySet
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action as api_action
from rest_framework.request import Request
from rest_framework.response import Response

from actions.models import Action, Invocation, InvocationAttempt
from actions.selectors import invocation_error_shown, invocation_request_shown
from actions.services import replays
from config.common.filters import IdFilter, UtcDateTimeFilter
from config.common.serializers import StrictSerializer
from tenants.roles import Capability, role_can
from tenants.scoping import OrgScopedViewSet


class InvocationFilter(django_filters.FilterSet):
    action = IdFilter(field_name="action_id", help_text=gettext_lazy("The action's id."))
    status = django_filters.ChoiceFilter(choices=Invocation.Status.choices)
    outcome = django_filters.CharFilter(help_text=gettext_lazy("e.g. succeeded, http_404, timedout, rate_limited."))
    since = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text=gettext_lazy("Created at or after (ISO 8601).")
    )
    until = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text=gettext_lazy("Created before (ISO 8601).")
    )

    class Meta:
        model = Invocation
        fields = ["action", "status", "outcome", "since", "until"]


STATUS_HELP = gettext_lazy("pending, running, succeeded, failed or rate_limited.")
ERROR_HELP = gettext_lazy(
    "Why the call failed. Admins and technical users read the full text; others read its outcome in "
    "words, which never names the host, address or port the call went to."
)


class InvocationStatusSerializer(serializers.ModelSerializer):
    """An invocation's status, for every role: never its request or response bodies."""

    action_name = serializers.CharField(source="action.name", read_only=True)
    # A string, not an enum, in the schema: the actions' `status` enum owns that component name.
    status = serializers.CharField(read_only=True, help_text=STATUS_HELP)
    error = serializers.CharField(read_only=True, help_text=ERROR_HELP)

    class Meta:
        model = Invocation
        fields = [
            "id", "action", "action_name", "origin", "origin_ref", "replay_of", "status", "outcome",
            "attempts", "latency_ms", "response_status", "error", "created_at", "finished_at",
            "next_attempt_at", "window_wait_until", "time_zone",
        ]  # fmt: skip
        read_only_fields = fields
        extra_kwargs = {
            "window_wait_until": {"help_text": gettext_lazy("Held outside its send window until then; null if not.")},
            "time_zone": {"help_text": gettext_lazy("The time zone its send window is read in (the profile's).")},
        }

    def to_representation(self, obj: Invocation) -> dict:
        data = super().to_representation(obj)
        sees_destinations = self.context.get("sees_destinations", False)
        data["error"] = invocation_error_shown(obj, sees_destinations=sees_destinations)
        return data


class InvocationAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvocationAttempt
        fields = [
            "number", "outcome", "response_status", "response_headers", "response_body", "error",
            "latency_ms", "started_at",
        ]  # fmt: skip
        read_only_fields = fields


BODIES_ONLY = gettext_lazy("Only for the admin and technical roles.")


class InvocationSerializer(InvocationStatusSerializer):
    """With the rendered request (secrets masked), the response and every attempt: admin and technical.

    The body fields are declared optional (not read-only) so that the schema says they may be absent.
    """

    request = serializers.JSONField(
        required=False, help_text=format_lazy("{} {}", gettext_lazy("The rendered request."), BODIES_ONLY)
    )
    response_headers = serializers.JSONField(required=False, help_text=BODIES_ONLY)
    response_body = serializers.CharField(
        required=False, help_text=format_lazy("{} {}", gettext_lazy("Truncated."), BODIES_ONLY)
    )
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
    invocation = serializers.UUIDField(required=False, help_text=gettext_lazy("Replay this one failed invocation."))
    action = serializers.IntegerField(
        required=False, help_text=gettext_lazy("Or replay every failed invocation of this action in [since, until).")
    )
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, data: dict) -> dict:
        if ("invocation" in data) == ("action" in data):
            raise serializers.ValidationError(
                {"invocation": _("Give either an invocation, or an action with since and until.")}
            )
        if "action" in data:
            missing = {name: _("Required with action.") for name in ("since", "until") if name not in data}
            if missing:
                raise serializers.ValidationError(missing)
            if data["since"] >= data["until"]:
                raise serializers.ValidationError({"until": _("Must be later than since.")})
        elif "since" in data or "until" in data:
            raise serializers.ValidationError({"since": _("A time range goes with an action, not an invocation.")})
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
        """Bodies hold the request's URL: whoever sees them sees destinations too (tenants/roles.py)."""
        return role_can(self.role, Capability.VIEW_INVOCATION_BODIES)

    def get_serializer_context(self) -> dict:
        sees_destinations = role_can(self.role, Capability.VIEW_DESTINATIONS)
        return {**super().get_serializer_context(), "sees_destinations": sees_destinations}

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
            original = self.get_in_organization(Invocation, pk=values["invocation"])
            replayed = [replays.invocation_replay(invocation=original)]
        else:
            action = self.get_in_organization(Action, pk=values["action"])
            replayed = replays.invocations_replay(action=action, since=values["since"], until=values["until"])
        return Response(ReplayedSerializer(replayed, many=True).data, status=status.HTTP_202_ACCEPTED)
