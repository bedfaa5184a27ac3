"""The product's URLs plus a do-nothing endpoint, for bench/ingest.py only."""

from django.urls import include, path
from rest_framework.response import Response

from tenants.roles import Capability
from tenants.scoping import OrgScopedViewSet


class DoNothing(OrgScopedViewSet):
    """Authenticates, checks the organization and scope, parses the body, stores nothing."""

    write_capability = Capability.WRITE_EVENTS

    def create(self, request, org_slug):
        return Response({"accepted": len(request.data) if isinstance(request.data, list) else 1}, status=202)


urlpatterns = [
    path("api/v1/orgs/<slug:org_slug>/nothing/", DoNothing.as_view({"post": "create"})),
    path("", include("config.urls")),
]
