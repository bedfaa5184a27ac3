import json

import django_filters
from django.db.models import F, Prefetch
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import ISO_8601, exceptions, mixins, serializers, status
from rest_framework.decorators import action as api_action
from rest_framework.request import Request
from rest_framework.response import Response

from config.common.filters import IdFilter
from config.common.serializers import StrictSerializer
from journeys.fields import expression_fields, field_warnings, seen_fields
from journeys.models import Journey, JourneyRun, Profile, StepRun
from journeys.reports import journey_report
from journeys.selectors import step_error_shown
from journeys.services import (
    events_ingest,
    journey_close,
    journey_create,
    journey_delete,
    journey_duplicate,
    journey_new_version,
    journey_pause,
    journey_publish,
    journey_resume,
    journey_stop,
    journey_test,
    journey_update,
    profile_put,
)
from tenants.roles import Capability, role_can
from tenants.scoping import OrgScopedViewSet

MAX_EVENTS = 1000
MAX_EVENT_BYTES = 64 * 1024
MAX_REQUEST_BYTES = 1024 * 1024


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request is larger than 1 MiB; send at most 1,000 events of at most 64 KB each.")
    default_code = "payload_too_large"


class EventSerializer(StrictSerializer):
    id = serializers.CharField(required=False, max_length=200, help_text=_("Your id: the same id is stored once."))
    name = serializers.CharField(max_length=200)
    profile_id = serializers.CharField(max_length=200)
    profile = serializers.DictField(required=False, help_text=_("Attributes to merge into the profile."))
    data = serializers.DictField(required=False)
    occurred_at = serializers.DateTimeField(required=False)


class ProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = Profile
        fields = ["external_id", "attributes", "created_at", "updated_at"]
        read_only_fields = ["external_id", "created_at", "updated_at"]


class ProfilePutSerializer(StrictSerializer):
    attributes = serializers.DictField()


def _validate_events(items: list) -> list[dict]:
    """All events valid, or a 400 naming each bad one by its index and field."""
    errors = {
        f"events[{index}]": {"event": [_("is larger than 64 KB.")]}
        for index, item in enumerate(items)
        if isinstance(item, dict) and len(json.dumps(item)) > MAX_EVENT_BYTES
    }
    # One list serializer, not one serializer per event: building serializers costs more than checking.
    serializer = EventSerializer(data=items, many=True)
    if not serializer.is_valid():
        found = serializer.errors  # DRF gives {index: problems} or a list aligned with the events
        for index, problems in found.items() if isinstance(found, dict) else enumerate(found):
            if problems:
                errors.setdefault(f"events[{index}]", problems)
    if errors:
        raise exceptions.ValidationError(errors)
    return serializer.validated_data


class EventViewSet(OrgScopedViewSet):
    """Event ingestion: one event or a list of up to 1,000. API keys need the `events:write` scope."""

    queryset = Profile.objects.none()
    write_capability = Capability.WRITE_EVENTS

    @extend_schema(
        request=EventSerializer(many=True),
        responses={202: inline_serializer("EventsAccepted", {"accepted": serializers.IntegerField(),
                                                             "duplicates": serializers.IntegerField()})},
        description=_("Answers 202 once every event is stored; nothing is stored if one is refused."),
    )  # fmt: skip
    def create(self, request: Request, org_slug: str) -> Response:
        if int(request.headers.get("Content-Length") or 0) > MAX_REQUEST_BYTES:
            raise PayloadTooLarge()
        items = request.data if isinstance(request.data, list) else [request.data]
        if not items:
            raise exceptions.ValidationError({"events": [_("Send one event or a list of events.")]})
        if len(items) > MAX_EVENTS:
            raise exceptions.ValidationError(
                {"events": [_("At most %(max)s events per request.") % {"max": MAX_EVENTS}]}
            )
        counts = events_ingest(organization=self.organization, events=_validate_events(items))
        return Response(counts, status=status.HTTP_202_ACCEPTED)


EXTERNAL_ID = OpenApiParameter("external_id", OpenApiTypes.STR, OpenApiParameter.PATH)


class ProfileViewSet(OrgScopedViewSet):
    """A profile by its external id: read (`read` scope), create or replace its attributes (`profiles:write`)."""

    queryset = Profile.objects.all()
    read_capability = Capability.VIEW_JOURNEYS
    write_capability = Capability.WRITE_PROFILES
    lookup_field = "external_id"
    not_found_detail = _("Profile not found.")

    @extend_schema(parameters=[EXTERNAL_ID], responses=ProfileSerializer)
    def retrieve(self, request: Request, org_slug: str, external_id: str) -> Response:
        return Response(ProfileSerializer(self.get_object()).data)

    @extend_schema(
        parameters=[EXTERNAL_ID],
        request=ProfilePutSerializer,
        responses={200: ProfileSerializer, 201: ProfileSerializer},
    )
    def update(self, request: Request, org_slug: str, external_id: str) -> Response:
        data = ProfilePutSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if len(external_id) > 200:
            raise exceptions.ValidationError({"external_id": [_("At most 200 characters.")]})
        profile, created = profile_put(
            organization=self.organization, external_id=external_id, attributes=data.validated_data["attributes"]
        )
        return Response(ProfileSerializer(profile).data, status=status.HTTP_201_CREATED if created else 200)


class JourneySerializer(StrictSerializer, serializers.ModelSerializer):
    steps = serializers.JSONField(required=False, help_text=_("The steps as in SPEC section 6."))
    layout = serializers.JSONField(
        required=False, help_text=_('Where each step sits on the canvas: {"<step key>": {"x": 120, "y": 40}}. '
        "The engine ignores it; positions of steps the journey no longer has are dropped."),
    )  # fmt: skip

    exit_events = serializers.JSONField(
        required=False, help_text=_("Event names that end a profile's open runs of this journey, e.g. order_placed."),
    )  # fmt: skip

    class Meta:
        model = Journey
        fields = [
            "id", "name", "description", "entry_event", "reentry", "exit_events", "max_run_days", "status", "version",
            "previous", "start", "steps", "layout", "created_at", "updated_at", "published_at",
        ]  # fmt: skip
        read_only_fields = ["id", "status", "version", "previous", "created_at", "updated_at", "published_at"]
        extra_kwargs = {"start": {"required": False}, "entry_event": {"required": False, "allow_blank": True}}


class SimulatedResponseSerializer(StrictSerializer):
    status = serializers.IntegerField(min_value=100, max_value=599, default=200, help_text=_("The HTTP status."))
    body = serializers.JSONField(required=False, allow_null=True, default=None, help_text=_("The answer's JSON."))


class JourneyTestSerializer(StrictSerializer):
    profile = serializers.DictField(required=False, default=dict, help_text=_("The profile's attributes."))
    event = serializers.DictField(required=False, default=dict, help_text=_('The event: {"name", "data"}.'))
    dry_run = serializers.BooleanField(default=True, help_text=_("Send no call; show the rendered requests."))
    responses = serializers.DictField(
        child=SimulatedResponseSerializer(), required=False, default=dict,
        help_text=_('A dry run\'s answers by action step key, e.g. {"check": {"status": 200, "body": {"ok": true}}}; '
        "a step without one gets a sample of its action's response schema."),
    )  # fmt: skip


class JourneyTestResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    result = serializers.CharField(help_text=_("completed, failed, or why the test stopped."))
    path = serializers.ListField(
        child=serializers.DictField(), help_text=_("Each step taken: key, type, outcome, next.")
    )


class ReportRangeSerializer(StrictSerializer):
    since = serializers.DateTimeField(
        required=False, input_formats=[ISO_8601, "%Y-%m-%d"], help_text=_("Runs started from then (a date or a time).")
    )
    until = serializers.DateTimeField(
        required=False, input_formats=[ISO_8601, "%Y-%m-%d"], help_text=_("Runs started before then.")
    )

    def validate(self, data: dict) -> dict:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise serializers.ValidationError({"until": [_("Give a time after since.")]})
        return data


_PERCENT = {name: serializers.FloatField(allow_null=True) for name in ("entered", "succeeded", "failed", "waiting",
                                                                       "exited")}  # fmt: skip


class JourneyReportSerializer(serializers.Serializer):
    journey = serializers.IntegerField()
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    runs = serializers.DictField(child=serializers.IntegerField(), help_text=_("Runs by status."))
    runs_with_a_failed_step = serializers.IntegerField(
        help_text=_("Runs with a step that failed although the run went on (through on_error).")
    )
    steps = serializers.ListField(
        child=inline_serializer("StepReport", {
            "key": serializers.CharField(), "type": serializers.CharField(),
            "entered": serializers.IntegerField(), "succeeded": serializers.IntegerField(),
            "failed": serializers.IntegerField(), "waiting": serializers.IntegerField(),
            "exited": serializers.IntegerField(),
            "percent": inline_serializer("StepPercent", _PERCENT, help_text=_(
                "entered: of the runs started; the others: of the runs that entered the step (null: none did)."
            )),
            "branches": serializers.ListField(required=False, help_text=_(
                "Conditions and splits: for each way out (branches[0], ..., else), the runs that took it, "
                "their percent of those that entered, and a split branch's share."
            ), child=serializers.DictField()),
        })
    )  # fmt: skip
    runs_per_hour = serializers.ListField(
        child=inline_serializer("RunsInAnHour", {
            "hour": serializers.DateTimeField(), "started": serializers.IntegerField(),
            "failed": serializers.IntegerField(),
        }), help_text=_("Runs started in each hour of the range (the last 48 hours without one)."),
    )  # fmt: skip


class JourneyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, OrgScopedViewSet):
    """Journeys as one JSON document each. Everyone sees them; admins, technical users and marketers edit."""

    queryset = Journey.objects.all()
    serializer_class = JourneySerializer
    read_capability = Capability.VIEW_JOURNEYS
    write_capability = Capability.EDIT_JOURNEYS
    filterset_fields = ["status", "entry_event"]

    @extend_schema(request=JourneySerializer, responses={201: JourneySerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        journey = journey_create(organization=self.organization, data=self.validated_input(partial=False))
        return Response(JourneySerializer(journey).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=JourneySerializer, responses=JourneySerializer)
    def update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = self.validated_input(partial=False)
        return Response(JourneySerializer(journey_update(journey=self.get_object(), data=data)).data)

    @extend_schema(request=JourneySerializer, responses=JourneySerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = self.validated_input(partial=True)
        return Response(JourneySerializer(journey_update(journey=self.get_object(), data=data)).data)

    def perform_destroy(self, instance: Journey) -> None:
        journey_delete(journey=instance)

    def _move(self, service) -> Response:
        return Response(JourneySerializer(service(journey=self.get_object())).data)

    @extend_schema(request=None, responses=JourneySerializer)
    @api_action(detail=True, methods=["post"], capability=Capability.EDIT_JOURNEYS)
    def publish(self, request: Request, org_slug: str, pk: str) -> Response:
        """Check the whole journey (every problem listed at once) and make it live."""
        return self._move(journey_publish)

    @extend_schema(request=None, responses=JourneySerializer)
    @api_action(detail=True, methods=["post"], capability=Capability.EDIT_JOURNEYS)
    def pause(self, request: Request, org_slug: str, pk: str) -> Response:
        """Hold its runs before their next action."""
        return self._move(journey_pause)

    @extend_schema(request=None, responses=JourneySerializer)
    @api_action(detail=True, methods=["post"], capability=Capability.EDIT_JOURNEYS)
    def resume(self, request: Request, org_slug: str, pk: str) -> Response:
        """Let held runs go on."""
        return self._move(journey_resume)

    @extend_schema(request=None, responses=JourneySerializer)
    @api_action(detail=True, methods=["post"], capability=Capability.EDIT_JOURNEYS)
    def stop(self, request: Request, org_slug: str, pk: str) -> Response:
        """End its runs; no new run starts."""
        return self._move(journey_stop)

    @extend_schema(request=None, responses=JourneySerializer)
    @api_action(detail=True, methods=["post"], capability=Capability.EDIT_JOURNEYS)
    def archive(self, request: Request, org_slug: str, pk: str) -> Response:
        """Archive a draft or a stopped journey for good (status `closed`); it can still be duplicated."""
        return self._move(journey_close)

    @extend_schema(request=None, responses=JourneySerializer)
    @api_action(detail=True, methods=["post"], capability=Capability.EDIT_JOURNEYS)
    def close(self, request: Request, org_slug: str, pk: str) -> Response:
        """The same as `archive/` (its earlier name)."""
        return self._move(journey_close)

    @extend_schema(request=None, responses={201: JourneySerializer})
    @api_action(detail=True, methods=["post"], capability=Capability.EDIT_JOURNEYS)
    def duplicate(self, request: Request, org_slug: str, pk: str) -> Response:
        """A new draft with the same steps and settings, named "<name> (copy)": how an archived or
        stopped journey is started over."""
        copy = journey_duplicate(journey=self.get_object())
        return Response(JourneySerializer(copy).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses=inline_serializer("JourneyFields", {
            "fields": serializers.ListField(child=serializers.DictField(), help_text=_(
                "Each field an expression can read: path, type, source (profile, event, step, now), and for a "
                "step's status its values.")),
            "warnings": serializers.DictField(child=serializers.ListField(child=serializers.CharField()), help_text=_(
                "By where it is read (steps[<key>]...), each field nothing has had yet.")),
        }),
    )  # fmt: skip
    @api_action(detail=True, methods=["get"], capability=Capability.VIEW_JOURNEYS)
    def fields(self, request: Request, org_slug: str, pk: str) -> Response:
        """The field picker: the profile attributes and entry-event fields seen in the organization (names
        and types from the latest 1,000 of each, never values), each action step's status values and
        response fields, `now`; and warnings for fields that nothing has had."""
        journey = self.get_object()
        seen = seen_fields(journey)
        return Response({"fields": expression_fields(journey, seen), "warnings": field_warnings(journey, seen)})

    @extend_schema(request=None, responses={201: JourneySerializer})
    @api_action(detail=True, methods=["post"], url_path="new-version", capability=Capability.EDIT_JOURNEYS)
    def new_version(self, request: Request, org_slug: str, pk: str) -> Response:
        """A draft copy that replaces this version when it is published."""
        draft = journey_new_version(journey=self.get_object())
        return Response(JourneySerializer(draft).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, parameters=[ReportRangeSerializer], responses=JourneyReportSerializer)
    @api_action(detail=True, methods=["get"], capability=Capability.VIEW_JOURNEYS)
    def report(self, request: Request, org_slug: str, pk: str) -> Response:
        """Per step: entered, succeeded, failed, waiting, exited, with percentages; runs by status,
        runs whose step failed although they went on, and runs started per hour; for the runs started
        in `since`..`until` (every run without them)."""
        window = ReportRangeSerializer(data=request.query_params.dict())
        window.is_valid(raise_exception=True)
        report = journey_report(journey=self.get_object(), **window.validated_data)
        return Response(JourneyReportSerializer(report).data)

    @extend_schema(request=JourneyTestSerializer, responses=JourneyTestResultSerializer)
    @api_action(detail=True, methods=["post"], capability=Capability.EDIT_JOURNEYS)
    def test(self, request: Request, org_slug: str, pk: str) -> Response:
        """Run the journey now for a profile and an event, waits skipped; nothing is stored.

        With `dry_run` (the default) no call is sent. Rendered requests and responses are shown to
        admins and technical users; others see each action step's parameter values and outcome.
        """
        data = JourneyTestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sees_bodies = role_can(self.role, Capability.VIEW_INVOCATION_BODIES)
        return Response(journey_test(journey=self.get_object(), sees_bodies=sees_bodies, **data.validated_data))


# --- runs ---------------------------------------------------------------------------


class StepRunSerializer(serializers.ModelSerializer):
    key = serializers.CharField(source="step_key")
    type = serializers.CharField(source="step_type")
    next = serializers.CharField(source="next_step")
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
            "entered_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, obj: StepRun) -> dict:
        data = super().to_representation(obj)
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
        Prefetch("step_runs", queryset=StepRun.objects.annotate(call_attempts=F("invocation__attempts")))
    )
    serializer_class = RunSerializer
    read_capability = Capability.VIEW_JOURNEYS
    filterset_class = RunFilter

    def get_serializer_context(self) -> dict:
        sees_destinations = role_can(self.role, Capability.VIEW_DESTINATIONS)
        return {**super().get_serializer_context(), "sees_destinations": sees_destinations}
