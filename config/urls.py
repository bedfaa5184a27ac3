from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from actions.api.actions import ActionViewSet
from actions.api.email_settings import EmailSettingsViewSet
from actions.api.endpoint_limits import EndpointLimitViewSet
from actions.api.invocations import InvocationViewSet
from actions.api.metrics import ActionMetricsViewSet
from actions.api.secret_values import SecretValueViewSet
from actions.api.templates import ActionTemplateViewSet
from config.api_index import ApiIndexView
from journeys.api.events import EventViewSet, ProfileViewSet
from journeys.api.journeys import JourneyViewSet
from journeys.api.runs import RunViewSet
from journeys.audience.api import ProfileBulkViewSet, SegmentViewSet
from journeys.frequency_caps.api import FrequencyCapViewSet
from tenants.api import (
    ApiKeyViewSet,
    InvitationAcceptView,
    InvitationViewSet,
    LogoutView,
    MemberViewSet,
    OrganizationViewSet,
    TokenView,
)
from tenants.audit.api import AuditRecordViewSet
from tenants.views import choose_language, switch_organization

handler400 = "config.common.errors.handler400"
handler404 = "config.common.errors.handler404"
handler403 = "config.common.errors.handler403"
handler500 = "config.common.errors.handler500"

# Every organization-scoped resource registers here, under /api/v1/orgs/{org_slug}/.
org_router = SimpleRouter()
org_router.register("members", MemberViewSet, basename="member")
org_router.register("invitations", InvitationViewSet, basename="invitation")
org_router.register("api-keys", ApiKeyViewSet, basename="api-key")
org_router.register("actions", ActionViewSet, basename="action")
org_router.register("invocations", InvocationViewSet, basename="invocation")
org_router.register("endpoint-limits", EndpointLimitViewSet, basename="endpoint-limit")
org_router.register("secret-values", SecretValueViewSet, basename="secret-value")
org_router.register("action-templates", ActionTemplateViewSet, basename="action-template")
org_router.register("journeys", JourneyViewSet, basename="journey")
org_router.register("runs", RunViewSet, basename="run")
org_router.register("segments", SegmentViewSet, basename="segment")
org_router.register("audit-log", AuditRecordViewSet, basename="audit-record")
org_router.register("frequency-caps", FrequencyCapViewSet, basename="frequency-cap")

api_v1 = [
    path("", ApiIndexView.as_view(), name="api-index"),
    path("auth/token/", TokenView.as_view(), name="auth-token"),
    path("auth/logout/", LogoutView.as_view(), name="auth-logout"),
    path("invitations/accept/", InvitationAcceptView.as_view(), name="invitation-accept"),
    path(
        "orgs/<slug:org_slug>/",
        OrganizationViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="organization-detail",
    ),
    path(
        "orgs/<slug:org_slug>/actions/<int:pk>/metrics/",
        ActionMetricsViewSet.as_view({"get": "metrics"}),
        name="action-metrics",
    ),
    path(
        "orgs/<slug:org_slug>/email-settings/",
        EmailSettingsViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update"}),
        name="email-settings",
    ),
    path("orgs/<slug:org_slug>/events/", EventViewSet.as_view({"post": "create"}), name="events"),
    path("orgs/<slug:org_slug>/profiles/bulk/", ProfileBulkViewSet.as_view({"post": "create"}), name="profiles-bulk"),
    path(
        "orgs/<slug:org_slug>/profiles/<str:external_id>/",
        ProfileViewSet.as_view({"get": "retrieve", "put": "update"}),
        name="profile-detail",
    ),
    path("orgs/<slug:org_slug>/", include(org_router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("admin/switch-organization/", switch_organization, name="switch-organization"),
    path("admin/language/", choose_language, name="choose-language"),
    path("jsi18n/", JavaScriptCatalog.as_view(domain="djangojs"), name="javascript-catalog"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
]
