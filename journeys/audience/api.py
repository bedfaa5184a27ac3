"""The audience's API doors: profiles in bulk (`profiles:write`) and segments (edited by those who edit journeys)."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action as api_action
from rest_framework.request import Request
from rest_framework.response import Response

from config.common.serializers import StrictSerializer
from journeys.audience.profiles_bulk import MAX_PROFILES, BulkProfileSerializer, profiles_bulk_upsert, profiles_check
from journeys.audience.segments import SegmentCountError, segment_count, segment_create, segment_delete, segment_update
from journeys.models import Profile, Segment
from tenants.roles import Capability
from tenants.scoping import OrgScopedViewSet

MAX_BULK_REQUEST_BYTES = 16 * 1024 * 1024


class BulkTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request is larger than 16 MiB; send at most 10,000 profiles of at most 64 KB each.")
    default_code = "payload_too_large"


class ProfilesBulkSerializer(StrictSerializer):
    """The request's shape, for the schema; the view checks each item itself to name it by index."""

    profiles = BulkProfileSerializer(many=True, max_length=MAX_PROFILES)


class ProfileBulkViewSet(OrgScopedViewSet):
    """Profiles created or merged in bulk. API keys need the `profiles:write` scope."""

    queryset = Profile.objects.none()
    write_capability = Capability.WRITE_PROFILES

    @extend_schema(
        request=ProfilesBulkSerializer,
        responses=inline_serializer("ProfilesBulkResult", {
            "created": serializers.IntegerField(), "updated": serializers.IntegerField(
                help_text=_("Profiles that existed already: their attributes were merged."))}),
        description=_("Up to 10,000 profiles: new ones created, attributes merged into the others (as events "
                      "merge them). Nothing is stored if one item is refused; sending the same list twice "
                      "creates nothing the second time."),
    )  # fmt: skip
    def create(self, request: Request, org_slug: str) -> Response:
        if int(request.headers.get("Content-Length") or 0) > MAX_BULK_REQUEST_BYTES:
            raise BulkTooLarge()
        body = request.data
        if not isinstance(body, dict):
            raise exceptions.ValidationError({"profiles": [_('Send {"profiles": [...]}.')]})
        unknown = sorted(set(body) - {"profiles"})
        if unknown:
            raise exceptions.ValidationError({name: [_("Unknown field.")] for name in unknown})
        profiles, errors = profiles_check(body.get("profiles"))
        if errors:
            raise exceptions.ValidationError(errors)
        return Response(profiles_bulk_upsert(organization=self.organization, profiles=profiles))


class SegmentSerializer(StrictSerializer, serializers.ModelSerializer):
    class Meta:
        model = Segment
        fields = ["id", "name", "description", "expression", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class SegmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, OrgScopedViewSet):
    """Segments: profiles picked by a CEL expression over `profile`. Everyone sees them; admins, technical
    users and marketers edit them."""

    queryset = Segment.objects.all()
    serializer_class = SegmentSerializer
    read_capability = Capability.VIEW_JOURNEYS
    write_capability = Capability.EDIT_JOURNEYS
    not_found_detail = _("Segment not found.")

    @extend_schema(request=SegmentSerializer, responses={201: SegmentSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        segment = segment_create(organization=self.organization, data=self.validated_input(partial=False))
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SegmentSerializer, responses=SegmentSerializer)
    def update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = self.validated_input(partial=False)
        return Response(SegmentSerializer(segment_update(segment=self.get_object(), data=data)).data)

    @extend_schema(request=SegmentSerializer, responses=SegmentSerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = self.validated_input(partial=True)
        return Response(SegmentSerializer(segment_update(segment=self.get_object(), data=data)).data)

    def perform_destroy(self, instance: Segment) -> None:
        segment_delete(segment=instance)

    @extend_schema(request=None, responses=inline_serializer("SegmentCount", {"count": serializers.IntegerField()}))
    @api_action(detail=True, methods=["get"], capability=Capability.VIEW_JOURNEYS)
    def count(self, request: Request, org_slug: str, pk: str) -> Response:
        """The number of the organization's profiles the expression is true for now (each profile read)."""
        segment = self.get_object()
        try:
            return Response({"count": segment_count(segment=segment)})
        except SegmentCountError as exc:
            raise exceptions.Throttled(detail=_("Counting stopped: %(why)s") % {"why": exc}) from None
