"""Every organization-scoped endpoint, every role (SPEC section 1).

Adding an endpoint means adding a row to ENDPOINTS: the tests below then check that
each role gets exactly what the SPEC table allows (else 403), that another
organization gets 404, that another organization's object gets 404 and that
anonymous gets 401.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from rest_framework.test import APIClient

from actions.models import Action, EmailSettings, EndpointLimit, Invocation, SecretValue
from tenants.services import api_key_create, invitation_create
from tests.actions.helpers import SMS_ACTION, make_action
from tests.conftest import ROLES, World, token_client
from tests.factories import UserFactory

ALL = {"admin", "technical", "marketer", "viewer"}
ADMIN = {"admin"}
TECHNICAL = {"admin", "technical"}
EDITORS = {"admin", "technical", "marketer"}


def _acme_action(w: World):
    # A private address: a test call is refused at once, with no network needed.
    return make_action(w.acme, url="https://10.0.0.1/v1/{{account}}")


TEST_VALUES = {"parameters": {"account": "a", "phone": "+33600000000", "text": "hi"}}


def _acme_key(w: World):
    return api_key_create(organization=w.acme, name="shop", scopes=["read"])[0]


def _acme_invitation(w: World):
    return invitation_create(organization=w.acme, email="guest@example.com", role="viewer")[0]


def _acme_invocation(w: World, status: str = "failed"):
    action = Action.objects.filter(organization=w.acme).first() or _acme_action(w)
    return Invocation.objects.create(
        organization=w.acme,
        action=action,
        status=status,
        outcome="http_503" if status == "failed" else "",
        request={"method": "POST", "url": "https://10.0.0.1/v1/a", "headers": [], "body": "{}"},
    )


def _acme_endpoint_limit(w: World):
    return EndpointLimit.objects.get_or_create(
        organization=w.acme, host="api.example.com", defaults={"calls": 10, "period_s": 60}
    )[0]


def _acme_secret(w: World):
    return SecretValue.objects.get_or_create(organization=w.acme, name="HOOK", defaults={"value": "s3cr3t-path"})[0]


def _acme_email_settings(w: World):
    return EmailSettings.objects.get_or_create(
        organization=w.acme, defaults={"host": "smtp.example.com", "default_from": "shop@acme.test"}
    )[0]


@dataclass
class Endpoint:
    name: str
    method: str
    # (world, org slug) -> path; objects named in the path always belong to acme.
    path: Callable[[World, str], str]
    allowed: set[str]
    success: int
    body: Callable[[World], dict] = field(default=lambda w: {})
    has_object: bool = False


ENDPOINTS = [
    Endpoint("organization", "get", lambda w, o: f"/api/v1/orgs/{o}/", ALL, 200),
    Endpoint("members-list", "get", lambda w, o: f"/api/v1/orgs/{o}/members/", ADMIN, 200),
    Endpoint("invitations-list", "get", lambda w, o: f"/api/v1/orgs/{o}/invitations/", ADMIN, 200),
    Endpoint(
        "invitations-create",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/invitations/",
        ADMIN,
        201,
        body=lambda w: {"username": UserFactory(username="newcomer").username, "role": "viewer"},
    ),
    Endpoint(
        "invitations-detail",
        "get",
        lambda w, o: f"/api/v1/orgs/{o}/invitations/{_acme_invitation(w).pk}/",
        ADMIN,
        200,
        has_object=True,
    ),
    Endpoint(
        "invitations-revoke",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/invitations/{_acme_invitation(w).pk}/revoke/",
        ADMIN,
        200,
        has_object=True,
    ),
    Endpoint(
        "members-detail",
        "get",
        lambda w, o: f"/api/v1/orgs/{o}/members/{w.members['viewer'].pk}/",
        ADMIN,
        200,
        has_object=True,
    ),
    Endpoint(
        "members-change-role",
        "patch",
        lambda w, o: f"/api/v1/orgs/{o}/members/{w.members['viewer'].pk}/",
        ADMIN,
        200,
        body=lambda w: {"role": "marketer"},
        has_object=True,
    ),
    Endpoint(
        "members-remove",
        "delete",
        lambda w, o: f"/api/v1/orgs/{o}/members/{w.members['viewer'].pk}/",
        ADMIN,
        204,
        has_object=True,
    ),
    Endpoint("api-keys-list", "get", lambda w, o: f"/api/v1/orgs/{o}/api-keys/", ADMIN, 200),
    Endpoint(
        "api-keys-create",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/api-keys/",
        ADMIN,
        201,
        body=lambda w: {"name": "crm", "scopes": ["events:write"]},
    ),
    Endpoint(
        "api-keys-detail",
        "get",
        lambda w, o: f"/api/v1/orgs/{o}/api-keys/{_acme_key(w).pk}/",
        ADMIN,
        200,
        has_object=True,
    ),
    Endpoint(
        "api-keys-revoke",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/api-keys/{_acme_key(w).pk}/revoke/",
        ADMIN,
        200,
        has_object=True,
    ),
    Endpoint("actions-list", "get", lambda w, o: f"/api/v1/orgs/{o}/actions/", ALL, 200),
    Endpoint(
        "actions-create",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/actions/",
        TECHNICAL,
        201,
        body=lambda w: SMS_ACTION,
    ),
    Endpoint(
        "actions-detail",
        "get",
        lambda w, o: f"/api/v1/orgs/{o}/actions/{_acme_action(w).pk}/",
        ALL,
        200,
        has_object=True,
    ),
    Endpoint(
        "actions-update",
        "patch",
        lambda w, o: f"/api/v1/orgs/{o}/actions/{_acme_action(w).pk}/",
        TECHNICAL,
        200,
        body=lambda w: {"description": "new"},
        has_object=True,
    ),
    Endpoint(
        "actions-delete",
        "delete",
        lambda w, o: f"/api/v1/orgs/{o}/actions/{_acme_action(w).pk}/",
        TECHNICAL,
        204,
        has_object=True,
    ),
    Endpoint(
        "actions-test",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/actions/{_acme_action(w).pk}/test/",
        TECHNICAL,
        200,
        body=lambda w: TEST_VALUES,
        has_object=True,
    ),
    Endpoint(
        "actions-infer",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/actions/infer/",
        TECHNICAL,
        200,
        body=lambda w: {"sample": {"a": 1}, "parameters": ["a"]},
    ),
    Endpoint(
        "actions-duplicate",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/actions/{_acme_action(w).pk}/duplicate/",
        TECHNICAL,
        201,
        has_object=True,
    ),
    Endpoint(
        "actions-export",
        "get",
        lambda w, o: f"/api/v1/orgs/{o}/actions/{_acme_action(w).pk}/export/",
        TECHNICAL,
        200,
        has_object=True,
    ),
    Endpoint(
        "actions-import",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/actions/import/",
        TECHNICAL,
        201,
        body=lambda w: {
            **{k: v for k, v in SMS_ACTION.items() if k not in ("status", "signing_secret")},
            "format": "conduit.action.v1",
            "auth": {"type": "none"},
        },
    ),
    Endpoint("invocations-list", "get", lambda w, o: f"/api/v1/orgs/{o}/invocations/", ALL, 200),
    Endpoint(
        "invocations-detail",
        "get",
        lambda w, o: f"/api/v1/orgs/{o}/invocations/{_acme_invocation(w).pk}/",
        ALL,
        200,
        has_object=True,
    ),
    Endpoint(
        "invocations-replay",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/invocations/replay/",
        TECHNICAL,
        202,
        body=lambda w: {"invocation": str(_acme_invocation(w).pk)},
        has_object=True,
    ),
    Endpoint(
        "actions-metrics",
        "get",
        lambda w, o: f"/api/v1/orgs/{o}/actions/{_acme_action(w).pk}/metrics/?window=24h",
        ALL,
        200,
        has_object=True,
    ),
    Endpoint("endpoint-limits-list", "get", lambda w, o: f"/api/v1/orgs/{o}/endpoint-limits/", TECHNICAL, 200),
    Endpoint(
        "endpoint-limits-create",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/endpoint-limits/",
        TECHNICAL,
        201,
        body=lambda w: {"host": "api.example.com", "calls": 100, "period_s": 60},
    ),
    Endpoint(
        "endpoint-limits-detail",
        "get",
        lambda w, o: f"/api/v1/orgs/{o}/endpoint-limits/{_acme_endpoint_limit(w).pk}/",
        TECHNICAL,
        200,
        has_object=True,
    ),
    Endpoint(
        "endpoint-limits-update",
        "patch",
        lambda w, o: f"/api/v1/orgs/{o}/endpoint-limits/{_acme_endpoint_limit(w).pk}/",
        TECHNICAL,
        200,
        body=lambda w: {"calls": 5},
        has_object=True,
    ),
    Endpoint(
        "endpoint-limits-delete",
        "delete",
        lambda w, o: f"/api/v1/orgs/{o}/endpoint-limits/{_acme_endpoint_limit(w).pk}/",
        TECHNICAL,
        204,
        has_object=True,
    ),
    Endpoint("secret-values-list", "get", lambda w, o: f"/api/v1/orgs/{o}/secret-values/", TECHNICAL, 200),
    Endpoint(
        "secret-values-create",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/secret-values/",
        TECHNICAL,
        201,
        body=lambda w: {"name": "NEW_ONE", "value": "a-value"},
    ),
    Endpoint(
        "secret-values-detail",
        "get",
        lambda w, o: f"/api/v1/orgs/{o}/secret-values/{_acme_secret(w).pk}/",
        TECHNICAL,
        200,
        has_object=True,
    ),
    Endpoint(
        "secret-values-update",
        "patch",
        lambda w, o: f"/api/v1/orgs/{o}/secret-values/{_acme_secret(w).pk}/",
        TECHNICAL,
        200,
        body=lambda w: {"value": "another"},
        has_object=True,
    ),
    Endpoint(
        "secret-values-delete",
        "delete",
        lambda w, o: f"/api/v1/orgs/{o}/secret-values/{_acme_secret(w).pk}/",
        TECHNICAL,
        204,
        has_object=True,
    ),
    Endpoint(
        "email-settings-get",
        "get",
        lambda w, o: (_acme_email_settings(w), f"/api/v1/orgs/{o}/email-settings/")[1],
        TECHNICAL,
        200,
    ),
    Endpoint(
        "email-settings-put",
        "put",
        lambda w, o: f"/api/v1/orgs/{o}/email-settings/",
        TECHNICAL,
        200,
        body=lambda w: {"host": "smtp.example.com", "port": 587, "default_from": "Shop <shop@acme.test>"},
    ),
    Endpoint("action-templates-list", "get", lambda w, o: f"/api/v1/orgs/{o}/action-templates/", TECHNICAL, 200),
    Endpoint(
        "action-templates-detail", "get", lambda w, o: f"/api/v1/orgs/{o}/action-templates/twilio_sms/", TECHNICAL, 200
    ),
    Endpoint(
        "action-templates-create",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/action-templates/",
        TECHNICAL,
        201,
        body=lambda w: {
            "template": "slack_message",
            "credentials": {"webhook_url": "https://hooks.slack.com/services/T/B/X"},
        },
    ),
    Endpoint(
        "events-ingest",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/events/",
        {"admin", "technical"},
        202,
        body=lambda w: {"name": "signed_up", "profile_id": "p1"},
    ),
    Endpoint(
        "profile-detail",
        "get",
        lambda w, o: f"/api/v1/orgs/{o}/profiles/{_acme_profile(w).external_id}/",
        ALL,
        200,
        has_object=True,
    ),
    Endpoint(
        "profile-put",
        "put",
        lambda w, o: f"/api/v1/orgs/{o}/profiles/{_acme_profile(w).external_id}/",
        {"admin", "technical"},
        200,
        # Another organization's PUT to the same external id creates its own profile: nothing leaks.
        body=lambda w: {"attributes": {"a": 1}},
    ),
    Endpoint("journeys-list", "get", lambda w, o: f"/api/v1/orgs/{o}/journeys/", ALL, 200),
    Endpoint(
        "journeys-create",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/journeys/",
        EDITORS,
        201,
        body=lambda w: _journey_document(w),
    ),
    Endpoint(
        "journeys-detail",
        "get",
        lambda w, o: f"/api/v1/orgs/{o}/journeys/{_acme_journey(w).pk}/",
        ALL,
        200,
        has_object=True,
    ),
    Endpoint(
        "journeys-update",
        "patch",
        lambda w, o: f"/api/v1/orgs/{o}/journeys/{_acme_journey(w).pk}/",
        EDITORS,
        200,
        body=lambda w: {"description": "new"},
        has_object=True,
    ),
    Endpoint(
        "journeys-delete",
        "delete",
        lambda w, o: f"/api/v1/orgs/{o}/journeys/{_acme_journey(w).pk}/",
        EDITORS,
        204,
        has_object=True,
    ),
    Endpoint(
        "journeys-publish",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/journeys/{_acme_journey(w).pk}/publish/",
        EDITORS,
        200,
        has_object=True,
    ),
    Endpoint(
        "journeys-new-version",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/journeys/{_acme_journey(w, live=True).pk}/new-version/",
        EDITORS,
        201,
        has_object=True,
    ),
    Endpoint(
        "journeys-pause",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/journeys/{_acme_journey(w, live=True).pk}/pause/",
        EDITORS,
        200,
        has_object=True,
    ),
    Endpoint(
        "journeys-report",
        "get",
        lambda w, o: f"/api/v1/orgs/{o}/journeys/{_acme_journey(w, live=True).pk}/report/",
        ALL,
        200,
        has_object=True,
    ),
    Endpoint(
        "journeys-test",
        "post",
        lambda w, o: f"/api/v1/orgs/{o}/journeys/{_acme_journey(w).pk}/test/",
        EDITORS,
        200,
        body=lambda w: {"profile": {"phone": "+33600000000"}, "event": {"data": {}}, "dry_run": True},
        has_object=True,
    ),
    Endpoint("runs-list", "get", lambda w, o: f"/api/v1/orgs/{o}/runs/", ALL, 200),
    Endpoint("runs-detail", "get", lambda w, o: f"/api/v1/orgs/{o}/runs/{_acme_run(w).pk}/", ALL, 200, has_object=True),
]
IDS = [e.name for e in ENDPOINTS]


def _journey_document(w: World) -> dict:
    return {
        "name": "Welcome", "entry_event": "signed_up", "start": "sms",
        "steps": [
            {"key": "sms", "type": "action", "action": _acme_action(w).pk, "next": "done",
             "parameters": {"account": '"a"', "phone": "profile.phone", "text": '"hi"'}},
            {"key": "done", "type": "end"},
        ],
    }  # fmt: skip


def _acme_journey(w: World, live: bool = False):
    from journeys.services import journey_create, journey_publish

    journey = journey_create(organization=w.acme, data=_journey_document(w))
    return journey_publish(journey=journey) if live else journey


def _acme_run(w: World):
    from journeys.models import JourneyRun

    journey = _acme_journey(w, live=True)
    return JourneyRun.objects.create(organization=w.acme, journey=journey, profile=_acme_profile(w), current_step="sms")


def _acme_profile(w: World):
    from journeys.models import Profile

    return Profile.objects.get_or_create(organization=w.acme, external_id="cust-acme")[0]


def _call(client: APIClient, endpoint: Endpoint, world: World, org: str):
    return getattr(client, endpoint.method)(endpoint.path(world, org), endpoint.body(world), format="json")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_each_role_gets_what_the_spec_allows(world, endpoint, role):
    response = _call(token_client(world.user(role)), endpoint, world, "acme")
    expected = endpoint.success if role in endpoint.allowed else 403
    assert response.status_code == expected, response.content
    if expected == 403:
        assert response.json()["detail"].startswith("Your role")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_another_organization_gets_404(world, endpoint):
    response = _call(token_client(world.globex_admin.user), endpoint, world, "acme")
    assert response.status_code == 404
    assert response.json() == {"detail": "Organization not found.", "errors": {}}


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.has_object], ids=lambda e: e.name)
def test_another_organizations_object_is_404_on_your_own_url(world, endpoint):
    response = _call(token_client(world.globex_admin.user), endpoint, world, "globex")
    assert response.status_code == 404
    assert set(response.json()) == {"detail", "errors"}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_anonymous_gets_401(world, endpoint):
    response = _call(APIClient(), endpoint, world, "acme")
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication credentials were not provided."


def test_unknown_organization_is_404_for_a_signed_in_user(world):
    response = token_client(world.user("admin")).get("/api/v1/orgs/nope/members/")
    assert response.status_code == 404


def test_superuser_sees_every_organization(world):
    staff = UserFactory(username="staff", is_superuser=True, is_staff=True)
    response = token_client(staff).get("/api/v1/orgs/globex/members/")
    assert response.status_code == 200
    assert [m["username"] for m in response.json()["results"]] == ["globex_admin"]


def test_a_viewset_that_overrides_get_queryset_or_get_object_is_refused_at_class_creation():
    from tenants.scoping import OrgScopedViewSet

    for name in ("get_queryset", "get_object"):
        with pytest.raises(TypeError, match=f"overrides {name}"):
            type("Leaky", (OrgScopedViewSet,), {name: lambda self: None})


def test_the_permission_check_assigns_nothing_to_the_view(world):
    from rest_framework.test import APIRequestFactory, force_authenticate

    from actions.api.actions import ActionViewSet
    from tenants.scoping import OrganizationAccess

    request = APIRequestFactory().get(f"/api/v1/orgs/{world.acme.slug}/actions/")
    force_authenticate(request, user=world.user("technical"))
    view = ActionViewSet(action_map={"get": "list"})
    view.setup(request, org_slug=world.acme.slug)
    view.request = view.initialize_request(request, org_slug=world.acme.slug)
    view.format_kwarg = None
    before = set(vars(view))
    assert OrganizationAccess().has_permission(view.request, view) is True
    # What the view resolved itself (cached properties) is all that appears; the permission sets nothing else.
    assert set(vars(view)) - before <= {"organization", "membership", "role"}
    assert view.organization == world.acme and view.role == "technical"
