"""Lookups by id go through the scoped base: another organization's row is a 404, in each view's own words."""

import pytest

from actions.models import Invocation
from journeys.models import Profile
from tenants.scoping import OrgScopedViewSet
from tests.actions.helpers import make_action
from tests.conftest import token_client

NOT_FOUND = 404


def _not_found(detail: str) -> dict:
    return {"detail": detail, "errors": {}}


def test_a_profile_of_another_organization_is_not_found(world):
    Profile.objects.create(organization=world.globex, external_id="globex-customer")
    client = token_client(world.user("technical"))
    response = client.get("/api/v1/orgs/acme/profiles/globex-customer/")
    assert response.status_code == NOT_FOUND
    assert response.json() == _not_found("Profile not found.")


def test_a_profile_is_read_by_its_external_id(world):
    Profile.objects.create(organization=world.acme, external_id="cust 42", attributes={"plan": "pro"})
    response = token_client(world.user("viewer")).get("/api/v1/orgs/acme/profiles/cust%2042/")
    assert response.status_code == 200
    assert response.json()["attributes"] == {"plan": "pro"}


def test_metrics_of_another_organizations_action_are_not_found(world):
    foreign = make_action(world.globex)
    response = token_client(world.user("viewer")).get(f"/api/v1/orgs/acme/actions/{foreign.pk}/metrics/")
    assert response.status_code == NOT_FOUND
    assert response.json() == _not_found("Action not found.")


def test_replaying_another_organizations_invocation_or_action_is_not_found(world):
    foreign = make_action(world.globex)
    invocation = Invocation.objects.create(organization=world.globex, action=foreign, status="failed")
    client = token_client(world.user("technical"))
    by_invocation = client.post(
        "/api/v1/orgs/acme/invocations/replay/", {"invocation": str(invocation.pk)}, format="json"
    )
    assert by_invocation.status_code == NOT_FOUND
    assert by_invocation.json() == _not_found("Invocation not found.")
    by_action = client.post(
        "/api/v1/orgs/acme/invocations/replay/",
        {"action": foreign.pk, "since": "2020-01-01T00:00:00Z", "until": "2030-01-01T00:00:00Z"},
        format="json",
    )
    assert by_action.status_code == NOT_FOUND
    assert by_action.json() == _not_found("Action not found.")
    assert Invocation.objects.filter(replay_of=invocation).count() == 0


def test_a_view_without_its_own_words_keeps_drfs_not_found(world):
    foreign = make_action(world.globex)
    response = token_client(world.user("technical")).get(f"/api/v1/orgs/acme/actions/{foreign.pk}/")
    assert response.status_code == NOT_FOUND
    assert response.json() == _not_found("No Action matches the given query.")


@pytest.mark.parametrize("name", ["get_queryset", "get_object"])
def test_the_refusal_names_the_hook_to_use_instead(name):
    instead = {"get_queryset": "scope_queryset", "get_object": "lookup_field"}[name]
    with pytest.raises(TypeError, match=f"Leaky overrides {name}: use {instead}"):
        type("Leaky", (OrgScopedViewSet,), {name: lambda self: None})


def test_a_subclass_that_only_narrows_is_accepted():
    narrowing = type("Narrowing", (OrgScopedViewSet,), {"scope_queryset": lambda self, queryset: queryset})
    assert issubclass(narrowing, OrgScopedViewSet)
