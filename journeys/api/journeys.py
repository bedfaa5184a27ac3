"""Journeys through the API: drafts, publishing and the other transitions, the test mode and the report."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import ISO_8601, mixins, serializers, status
from rest_framework.decorators import action as api_action
from rest_framework.request import Request
from rest_framework.response import Response

from config.common.serializers import StrictSerializer
from journeys.fields import expression_fields, field_warnings, seen_fields
from journeys.models import Journey
from journeys.reports import journey_report
from journeys.services import (
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
)
from tenants.roles import Capability, role_can
from tenants.scoping import OrgScopedViewSet


class JourneySerializer(StrictSerializer, serializers.ModelSerializer):
    steps = serializers.JSONField(required=False, help_text=_("The steps as in SPEC section 6."))
    layout = serializers.JSONField(
        required=False, help_text=_('Where each step sits on the canvas: {"<step key>": {"x": 120, "y": 40}}. '
        "The engine ignores it; positions of steps the journey no longer has are dropped."),
    )  # fmt: skip

    audience = serializers.JSONField(
        required=False, allow_null=True,
        help_text=_('Instead of an entry event: {"segment": <id>, "rate_per_s": 100, "start_at": null (at publish) '
                    'or a datetime, "repeat": "none" | "daily" | "weekly"}. Every matching profile gets a run.'),
    )  # fmt: skip
    exit_events = serializers.JSONField(
        required=False, help_text=_("Event names that end a profile's open runs of this journey, e.g. order_placed."),
    )  # fmt: skip

    class Meta:
        model = Journey
        fields = [
            "id", "name", "description", "entry_event", "audience", "reentry", "exit_events", "max_run_days",
            "status", "version",
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
                                                                       "exited", "capped")}  # fmt: skip


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
            "capped": serializers.IntegerField(help_text=_("Calls a frequency cap held back (action steps).")),
            "percent": inline_serializer("StepPercent", _PERCENT, help_text=_(
                "entered: of the runs started; the others: of the runs that entered the step (null: none did)."
            )),
            "branches": serializers.ListField(required=False, help_text=_(
                "Conditions and splits: for each way out (branches[0], ..., else), the runs that took it, "
                "their percent of those that entered, and a split branch's share."
            ), child=serializers.DictField()),
        })
    )  # fmt: skip
    audience = inline_serializer("AudienceProgress", {
        "scheduled_for": serializers.DateTimeField(), "started_at": serializers.DateTimeField(),
        "finished_at": serializers.DateTimeField(allow_null=True), "total": serializers.IntegerField(),
        "entered": serializers.IntegerField(), "skipped": serializers.IntegerField(),
        "eta_s": serializers.IntegerField(),
    }, allow_null=True, help_text=_(
        "An audience journey's latest round: matching profiles, entered, kept out by the reentry rule, "
        "and the seconds left at its rate; null for a journey started by events."
    ))  # fmt: skip
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
