"""The admin reads like a product (issue 18): a home page per role, pages for 403 and 404 inside its
layout, "View site" and /api/v1/ lead somewhere, each role's menu shows what it may use, and the API
documents every operation under its resource."""

import re

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

from actions.models import CircuitBreaker, Invocation
from actions.services.actions import action_create
from journeys.models import JourneyRun
from tenants.services import api_key_create
from tests.journeys.helpers import drain, live_journey, send

STEPS = [{"key": "done", "type": "end"}]


def home(world, role: str) -> str:
    client = Client()
    client.force_login(world.user(role))
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.content.decode()


def section(page: str, name: str) -> str:
    found = re.search(rf'<div class="module home-section" id="home-{name}">(.*?)</div>', page, re.S)
    return found.group(1) if found else ""


@pytest.fixture
def busy(world):
    """A journey with a run today, a failed call and an open circuit in acme; the same in globex."""
    journey = live_journey(world, STEPS, "done")
    send(world, profile="a")
    drain()
    assert JourneyRun.objects.filter(journey=journey, status="completed").count() == 1
    for organization, name, host in ((world.acme, "Send SMS", "sms.acme.example"),
                                     (world.globex, "Their SMS", "their.example")):  # fmt: skip
        action = action_create(organization=organization, data={"name": name, "status": "active",
                                                                 "url": "https://sms.example/"})  # fmt: skip
        Invocation.objects.create(organization=organization, action=action, status="failed", outcome="http_500")
        CircuitBreaker.objects.create(organization=organization, host=host, state="open")
    api_key_create(organization=world.acme, name="shop", scopes=["events:write"])
    return journey


def test_a_marketer_home_shows_journeys_with_today_counts_and_a_new_journey_button(world, busy):
    page = home(world, "marketer")
    journeys = section(page, "journeys")
    assert "Cart" in journeys and "New journey" in journeys
    assert re.search(r"<td>1</td><td>1</td><td>0</td>", journeys), journeys  # entered, completed, failed today
    for technical in ("home-actions", "home-circuits", "home-failed-calls", "home-members", "home-api-keys"):
        assert technical not in page
    assert "Recent actions" not in page  # Django's log of admin edits, which read like the product's actions


def test_a_technical_home_shows_failing_actions_open_circuits_and_failed_calls_of_its_organization(world, busy):
    page = home(world, "technical")
    assert "Send SMS" in section(page, "actions") and "New action" in section(page, "actions")
    assert "sms.acme.example" in section(page, "circuits")
    assert "http_500" in section(page, "failed-calls")
    assert "Their SMS" not in page and "their.example" not in page  # globex's
    assert "home-members" not in page


def test_an_admin_home_adds_members_and_api_keys(world, busy):
    page = home(world, "admin")
    assert "acme_viewer" in section(page, "members") and "globex_admin" not in section(page, "members")
    assert "shop" in section(page, "api-keys")
    assert "Send SMS" in section(page, "actions")


def test_a_viewer_home_has_no_button_that_changes_anything(world, busy):
    page = home(world, "viewer")
    assert "Cart" in section(page, "journeys")
    assert "New journey" not in page and "New action" not in page


def test_each_role_menu_shows_only_what_it_may_use(world):
    marketer = home(world, "marketer")
    for hidden in ("Circuit breakers", "Secret values", "Endpoint limits", "Email settings", "API keys"):
        assert hidden not in marketer
    assert "Journeys" in marketer and "Action palette" in marketer
    assert "Circuit breakers" in home(world, "technical") and "API keys" in home(world, "admin")


def test_403_and_404_are_pages_of_the_admin_with_a_way_back(world):
    client = Client()
    client.force_login(world.user("marketer"))
    denied = client.get("/admin/actions/action/")
    text = denied.content.decode()
    assert denied.status_code == 403
    assert "Your role does not allow this page" in text and 'href="/admin/"' in text and "Conduit" in text
    missing = client.get("/admin/no-such-page/")
    assert missing.status_code == 404 and "This page does not exist" in missing.content.decode()
    assert client.get("/api/v1/orgs/acme/nothing-here/").json()["detail"]  # the API still answers JSON


def test_view_site_leads_to_the_api_documentation_and_the_api_has_an_index(world):
    assert 'href="/api/v1/docs/"' in home(world, "marketer")
    index = Client().get("/api/v1/")
    assert index.status_code == 200
    links = index.json()["links"]
    assert links["docs"].endswith("/api/v1/docs/") and links["schema"].endswith("/api/v1/schema/")


def test_every_operation_has_a_summary_and_a_resource_tag(tmp_path):
    call_command("spectacular", file=str(tmp_path / "schema.yml"))
    schema = yaml.safe_load((tmp_path / "schema.yml").read_text())
    tags = set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert len(operation["tags"]) == 1, (method, path)
            tags.add(operation["tags"][0])
    assert {"actions", "invocations", "journeys", "runs", "events", "profiles", "members", "API keys"} <= tags
    events = schema["paths"]["/api/v1/orgs/{org_slug}/events/"]["post"]
    body = events["requestBody"]["content"]["application/json"]["schema"]
    assert events["summary"] == "Send one event, or a list of events" and body["oneOf"][1]["type"] == "array"
