"""Runs through the API: a journey's runs with their steps, filtered by journey, profile and status."""

import django_filters
from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import inline_serializer
from rest_framework import mixins, serializers

from config.common.filters import IdFilter
from journeys.models import JourneyRun, StepRun
from journeys.selectors import STEP_CALL_FIELDS, step_error_shown, step_window_wait
from tenants.roles import Capability, role_can
from tenants.scoping import OrgScopedViewSet


class StepRunSerializer(serializers.ModelSerializer):
    key = serializers.CharField(source="step_key")
    type = serializers.CharField(source="step_type")
    next = serializers.CharField(source="next_step")
    window_wait_until = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text=_("Its call is held outside its send window until then.")
    )
    waiting = serializers.CharField(
        read_only=True, help_text=_('e.g. "waiting for the send window until 2026-06-02 09:00 (Europe/Paris)"; or "".')
    )
    error = serializers.CharField(
        read_only=True,
        help_text=_(
            "Why the step failed. A call's error reads, for roles other than admin and technical, as its "
            "outcome in words, which never names the host, address or port the call went to."
        ),
    )

    class Meta:
        model = StepRun
        fields = [
            "sequence", "key", "type", "status", "outcome", "next", "invocation", "wake_at", "error",
            "entered_at", "finished_at", "window_wait_until", "waiting",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, obj: StepRun) -> dict:
        data = super().to_representation(obj)
        data.update(step_window_wait(obj))
        data["error"] = step_error_shown(obj, sees_destinations=self.context.get("sees_destinations", False))
        return data


class RunSerializer(serializers.ModelSerializer):
    journey_name = serializers.CharField(source="journey.name")
    journey_version = serializers.IntegerField(source="journey.version")
    profile = serializers.CharField(source="profile.external_id", help_text=_("The profile's external id."))
    event_id = serializers.CharField(source="event.client_id", default=None, help_text=_("The event's client id."))
    steps = StepRunSerializer(source="step_runs", many=True, help_text=_("Its steps in the order they ran."))
    failed_step = inline_serializer(
        "FailedStep", {"key": serializers.CharField(), "outcome": serializers.CharField(),
                       "error": serializers.CharField()},
        read_only=True, allow_null=True,
        help_text=_("Its first step that failed, also when the run went on through on_error and completed."),
    )  # fmt: skip

    class Meta:
        model = JourneyRun
        fields = [
            "id", "journey", "journey_name", "journey_version", "profile", "event_id", "status", "current_step",
            "failed_step", "due_at", "error", "started_at", "ended_at", "steps",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, obj: JourneyRun) -> dict:
        data = super().to_representation(obj)
        failed = next((s for s in data["steps"] if s["status"] == StepRun.Status.FAILED), None)
        data["failed_step"] = (
            {"key": failed["key"], "outcome": failed["outcome"], "error": failed["error"]} if failed else None
        )
        return data


class RunFilter(django_filters.FilterSet):
    journey = IdFilter(field_name="journey_id", help_text=_("The journey version's id."))
    profile = django_filters.CharFilter(field_name="profile__external_id", help_text=_("The profile's external id."))
    status = django_filters.ChoiceFilter(choices=JourneyRun.Status.choices)

    class Meta:
        model = JourneyRun
        fields = ["journey", "profile", "status"]


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Journey runs, newest first, each with its steps in order. Every role sees them."""

    queryset = JourneyRun.objects.select_related("journey", "profile", "event").prefetch_related(
        Prefetch("step_runs", queryset=StepRun.objects.annotate(**STEP_CALL_FIELDS))
    )
    serializer_class = RunSerializer
    read_capability = Capability.VIEW_JOURNEYS
    filterset_class = RunFilter

    def get_serializer_context(self) -> dict:
        sees_destinations = role_can(self.role, Capability.VIEW_DESTINATIONS)
        return {**super().get_serializer_context(), "sees_destinations": sees_destinations}
