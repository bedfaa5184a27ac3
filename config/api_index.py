"""`GET /api/v1/`: where a person or a client starts (issue 18): the documentation, the schema, how to log in."""

from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class ApiIndexView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["index"],
        summary="Where to start: links to the documentation, the schema and the ways to authenticate",
        responses=inline_serializer("ApiIndex", {"name": serializers.CharField(), "links": serializers.DictField()}),
    )
    def get(self, request: Request) -> Response:
        link = request.build_absolute_uri
        return Response({
            "name": "Conduit API v1",
            "description": _("Custom actions and customer journeys. Every resource of an organization is under "
                             "/api/v1/orgs/{org}/; send Accept-Language: fr for French messages."),
            "links": {
                "docs": link(reverse("docs")),
                "schema": link(reverse("schema")),
                "token": link(reverse("auth-token")),
                "organization": link("/api/v1/orgs/{org}/"),
                "events": link("/api/v1/orgs/{org}/events/"),
            },
            "authentication": _("A user token (POST the token link with username and password) as "
                                "'Authorization: Token <token>', or an organization's API key as "
                                "'Authorization: Bearer <key>'."),
        })  # fmt: skip
