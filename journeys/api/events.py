"""Events in and profiles read or put through the API (SPEC section 7)."""

import json

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from config.common.serializers import StrictSerializer
from journeys.models import Profile
from journeys.services import (
    events_ingest,
    profile_put,
)
from tenants.roles import Capability
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
