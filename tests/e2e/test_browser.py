"""What a person sees in a real browser: a technical user, a marketer, a viewer; and an event's run."""

import json
import re
import threading

import pytest
import requests
from werkzeug import Response

from actions.models import Action
from journeys.models import Journey, JourneyRun
from tenants.services import api_key_create
from tests.e2e.conftest import login, shot
from tests.factories import PASSWORD
from tests.journeys.helpers import live_journey
from tests.workers import wait_for

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def provider(world, httpserver, allow_loopback):
    """An OAuth2 SMS provider on loopback: a token endpoint and a messages endpoint that records calls."""
    world.acme.allow_http = True
    world.acme.save()
    calls, lock = [], threading.Lock()
    httpserver.expect_request("/oauth/token", method="POST").respond_with_json(
        {"access_token": "at-777", "expires_in": 3600}
    )

    def messages(request):
        with lock:
            calls.append(json.loads(request.data))
        return Response(json.dumps({"id": f"sms-{len(calls)}", "status": "queued"}), status=201,
                        content_type="application/json")  # fmt: skip

    httpserver.expect_request("/v1/messages", method="POST").respond_with_handler(messages)
    return calls


def oauth2_action(world, httpserver) -> Action:
    from actions.services.actions import action_create

    return action_create(
        organization=world.acme,
        data={
            "name": "Send SMS", "description": "Sends a text message.", "status": "active",
            "url": httpserver.url_for("/v1/messages"), "body": {"to": "{{phone}}", "text": "{{text}}"},
            "parameters": [{"name": "phone", "type": "string", "description": "Phone in E.164"},
                           {"name": "text", "type": "string", "description": "The message"}],
            "auth": {"type": "oauth2_client_credentials", "token_url": httpserver.url_for("/oauth/token"),
                     "client_id": "conduit", "client_secret": "cs-SECRET"},
        },
    )  # fmt: skip


def test_a_technical_user_creates_an_oauth2_action_and_tests_it(page, live_server, world, httpserver, provider,
                                                                request):  # fmt: skip
    login(page, live_server, world.user("technical").username, PASSWORD)
    page.goto(f"{live_server.url}/admin/actions/action/add/")
    page.fill("#id_name", "Send SMS")
    page.fill("#id_description", "Sends a text message.")
    page.select_option("#id_status", "active")
    page.fill("#id_url", httpserver.url_for("/v1/messages"))
    page.fill("#id_body", '{"to": "{{phone}}", "text": "{{text}}"}')
    page.fill("#id_parameters", '[{"name": "phone", "type": "string"}, {"name": "text", "type": "string"}]')
    page.select_option("#id_auth_type", "oauth2_client_credentials")
    page.fill("#id_oauth2_token_url", httpserver.url_for("/oauth/token"))
    page.fill("#id_oauth2_client_id", "conduit")
    page.fill("#id_oauth2_client_secret", "cs-SECRET")
    page.click("input[name=_continue]")
    page.wait_for_selector("text=Test request")
    page.click("text=Test request")
    page.fill("#id_parameter-phone", "+33600000000")
    page.fill("#id_parameter-text", "Hello")
    page.click("input[type=submit]")
    page.wait_for_selector("text=HTTP 201")
    body = page.content()
    assert "sms-1" in body and "cs-SECRET" not in body and "at-777" not in body
    assert provider == [{"to": "+33600000000", "text": "Hello"}]
    shot(page, request, "test-response")


def test_a_marketer_builds_and_publishes_and_an_event_reaches_the_provider(
    page, live_server, world, httpserver, provider, workers, request
):
    action = oauth2_action(world, httpserver)
    login(page, live_server, world.user("marketer").username, PASSWORD)
    # The palette: name, description, parameters; never the configuration.
    page.goto(f"{live_server.url}/admin/actions/paletteaction/")
    page.click("text=Send SMS")
    page.wait_for_selector("text=Phone in E.164")
    palette = page.content()
    assert httpserver.url_for("/") not in palette and "oauth" not in palette
    denied = page.goto(f"{live_server.url}/admin/actions/action/{action.pk}/change/")
    assert denied.status == 403

    page.goto(f"{live_server.url}/admin/journeys/journey/add/")
    page.fill("#id_name", "Win back")
    page.fill("#id_entry_event", "cart_abandoned")
    page.click("text=Create and add steps")
    page.wait_for_selector("#journey-canvas")
    journey = Journey.objects.get(name="Win back")
    base = f"{live_server.url}/admin/journeys/journey/{journey.pk}"
    for key, kind in [("check", "condition"), ("pause", "wait"), ("sms", "action"), ("done", "end")]:  # the fallback
        page.goto(f"{base}/steps/new/")
        page.fill("#id_key", key)
        page.check(f"input[name=type][value={kind}]")
        page.click("text=Add the step")
        page.wait_for_selector(f"text=Step {key}")

    page.goto(f"{base}/steps/sms/")
    page.select_option("#id_action", str(action.pk))
    page.click("input[name=_choose_action]")
    page.fill("#id_param__phone", "profile.phone")
    page.fill("#id_param__text", '"Hi " + ')
    page.select_option("#id_next", "done")
    page.click("text=Save step")
    error = page.locator(".field-param__text .errorlist").inner_text()
    assert "does not parse" in error and "column" in error
    shot(page, request, "expression-error")
    page.fill("#id_param__text", '"Hi " + profile.first_name')
    page.click("text=Save step")
    page.wait_for_selector("text=Step sms saved")

    page.goto(f"{base}/steps/check/")
    page.fill("#id_branch0_expression", "event.data.total > 100.0")
    page.select_option("#id_branch0_next", "pause")
    page.select_option("#id_else", "done")
    page.click("text=Save step")
    page.goto(f"{base}/steps/pause/")
    page.fill("#id_duration_s", "1")
    page.select_option("#id_next", "sms")
    page.click("text=Save step")
    page.wait_for_selector("text=this draft can be published")
    page.click("summary:has-text('Publish')")  # the confirmation says what publishing does
    page.wait_for_selector("text=from now on each \u201ccart_abandoned\u201d event starts a run")
    page.click("input[value='Yes, publish']")
    page.wait_for_selector("text=published: it is live")
    page.wait_for_selector("#journey-canvas .jc-node[data-key]")  # the script draws the canvas after the page loads
    assert page.locator("#journey-canvas .jc-node[data-key]").count() == 4
    shot(page, request, "published")

    # An external system sends an event with an organization API key; a real worker runs it.
    workers.start()
    _, raw_key = api_key_create(organization=world.acme, name="shop", scopes=["events:write"])
    event = {"name": "cart_abandoned", "profile_id": "cust-7", "profile": {"phone": "+33611111111",
             "first_name": "Ada"}, "data": {"total": 150.0}}  # fmt: skip
    answer = requests.post(f"{live_server.url}/api/v1/orgs/acme/events/", json=event, timeout=10,
                           headers={"Authorization": f"Bearer {raw_key}"})  # fmt: skip
    assert answer.status_code == 202, answer.text
    wait_for(lambda: provider, timeout=40, message="the provider to get the call")
    assert provider == [{"to": "+33611111111", "text": "Hi Ada"}]
    run = wait_for(lambda: JourneyRun.objects.filter(status="completed").first(), message="the run to end")
    page.goto(f"{live_server.url}/admin/journeys/journeyrun/{run.pk}/change/")
    keys = [k.strip() for k in page.locator("td.field-step_key").all_inner_texts()]
    assert keys == ["check", "pause", "sms", "done"]
    shot(page, request, "run")


def test_a_viewer_sees_the_journey_and_its_report_without_any_button_that_changes_anything(
    page, live_server, world, httpserver, provider, request
):
    action = oauth2_action(world, httpserver)
    steps = [
        {"key": "sms", "type": "action", "action": action.pk, "next": "done",
         "parameters": {"phone": "profile.phone", "text": '"Hi"'}},
        {"key": "done", "type": "end"},
    ]  # fmt: skip
    journey = live_journey(world, steps, "sms")
    login(page, live_server, world.user("viewer").username, PASSWORD)
    page.goto(f"{live_server.url}/admin/journeys/journey/{journey.pk}/change/")
    page.wait_for_selector("#journey-canvas .jc-node[data-key=sms]")
    buttons = page.locator("input[type=submit]").all()
    assert not buttons, [b.get_attribute("value") for b in buttons]
    page.click("text=Report and runs")
    page.wait_for_selector("text=Latest runs")
    # The only form is the date range, which reads (GET): nothing on the page posts a change.
    assert not page.locator("#content form[method=post]").all()  # the header keeps its log-out form
    assert page.locator("form.journey-range[method=get]").count() == 1
    assert re.search(r"Runs: active 0", page.content())
    shot(page, request, "report")
