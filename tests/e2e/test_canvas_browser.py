"""The journey canvas in a real browser: a marketer builds, tests, publishes and follows a journey
on one page by drag and drop; a viewer sees the same canvas with nothing that changes it."""

import json
import threading

import pytest
import requests
from werkzeug import Response

from actions.services.actions import action_create
from journeys.models import Journey, JourneyRun
from journeys.services import journey_create, profile_put
from tenants.services import api_key_create
from tests.e2e.conftest import login, shot
from tests.factories import PASSWORD
from tests.journeys.helpers import live_journey
from tests.workers import wait_for

pytestmark = [pytest.mark.e2e]


class Gestures:
    """Counts what a person does: each click, drag and field clicked into; and each page loaded."""

    def __init__(self, page):
        self.page, self.clicks, self.loads, self.errors = page, 0, 0, []
        page.on("load", self._loaded)
        page.on("pageerror", self._failed)  # a script error fails the test, even if the page goes on

    def _loaded(self, _page) -> None:
        self.loads += 1

    def _failed(self, error) -> None:
        self.errors.append(str(error))

    def click(self, selector: str) -> None:
        self.clicks += 1
        self.page.click(selector)

    def type(self, selector: str, text: str) -> None:
        self.click(selector)  # into the field; what it held is replaced
        self.page.fill(selector, text)

    def select(self, selector: str, value: str) -> None:
        self.clicks += 1
        self.page.select_option(selector, value)

    def drag(self, source: str, target: str, x: int | None = None, y: int | None = None) -> None:
        self.clicks += 1
        position = {"target_position": {"x": x, "y": y}} if x is not None else {}
        # As a person would, with the whole target in sight: saving a long side panel scrolls the page, and a
        # point of the canvas above the window is no drop at all.
        self.page.locator(target).evaluate("e => e.scrollIntoView({block: 'nearest'})")
        self.page.locator(source).drag_to(self.page.locator(target), **position)

    def link(self, key: str, output: str, to: str) -> None:
        """Drag from a step's output dot onto another step."""
        self.clicks += 1
        dot = self.page.locator(f".drawflow-node[data-key={key}] .output[data-link='{output}']").bounding_box()
        box = self.page.locator(f".drawflow-node[data-key={to}]").bounding_box()
        self.page.mouse.move(dot["x"] + dot["width"] / 2, dot["y"] + dot["height"] / 2)
        self.page.mouse.down()
        self.page.mouse.move(box["x"] + 40, box["y"] + 20, steps=8)
        self.page.mouse.up()


@pytest.fixture
def providers(world, httpserver, allow_loopback):
    """A CRM that says the customer is gold, and an SMS gateway that records what it is sent."""
    world.acme.allow_http = True
    world.acme.save()
    sent, lock = [], threading.Lock()
    httpserver.expect_request("/crm/lookup", method="POST").respond_with_json({"tier": "gold", "points": 1200})

    def sms(request):
        with lock:
            sent.append(json.loads(request.data))
        return Response(json.dumps({"id": "sms-1"}), status=201, content_type="application/json")

    httpserver.expect_request("/sms", method="POST").respond_with_handler(sms)
    action_create(organization=world.acme, data={
        "name": "Look up customer", "description": "Reads the customer's loyalty tier from the CRM.",
        "status": "active", "url": httpserver.url_for("/crm/lookup"), "body": {"email": "{{email}}"},
        "parameters": [{"name": "email", "type": "string", "description": "The customer's email"}],
        "response_schema": {"type": "object", "properties": {"tier": {"type": "string", "enum": ["gold", "silver"]},
                                                             "points": {"type": "integer"}}},
    })  # fmt: skip
    action_create(organization=world.acme, data={
        "name": "Send SMS", "description": "Sends a text message.", "status": "active",
        "url": httpserver.url_for("/sms"), "body": {"to": "{{phone}}", "text": "{{text}}"},
        "parameters": [{"name": "phone", "type": "string", "description": "Phone in E.164"},
                       {"name": "text", "type": "string", "description": "The message"}],
    })  # fmt: skip
    # Customers already known: the field picker lists the attributes they have.
    profile_put(organization=world.acme, external_id="cust-1",
                attributes={"email": "bo@example.com", "phone": "+33600000000", "first_name": "Bo"})  # fmt: skip
    return sent


def saved(page) -> None:
    page.wait_for_selector("#journey-canvas[data-saving=no]", state="attached")


def panel_saved(page, key: str) -> None:
    page.wait_for_selector(f".jc-panel .jc-saved:has-text('Step {key} saved.')")


def node(key: str) -> str:
    return f"#journey-canvas .jc-node[data-key={key}]"


def test_a_marketer_builds_a_six_step_journey_on_the_canvas_tests_publishes_and_follows_it(
    page, live_server, world, providers, workers, request
):
    page.set_viewport_size({"width": 1600, "height": 1000})  # a marketer's screen
    login(page, live_server, world.user("marketer").username, PASSWORD)
    page.goto(f"{live_server.url}/admin/journeys/journey/add/")
    you = Gestures(page)
    you.type("#id_name", "Win back")
    you.type("#id_entry_event", "cart_abandoned")
    you.click("text=Create and add steps")
    page.wait_for_selector("#journey-canvas .jc-palette .jc-item")
    loads_before_building = you.loads
    clicks_before_building = you.clicks
    area = "#journey-canvas .jc-area"

    # 1. A condition, dropped first: it becomes the first step; its panel opens at once.
    you.drag(".jc-item.jc-condition", area, 250, 40)
    page.wait_for_selector(".jc-panel .journey-panel-step[data-key=condition]")
    you.type("#id_branch0_expression", "event.data.total > 100.0")
    you.click(".jc-panel input[value='Save step']")
    panel_saved(page, "condition")

    # 2. The CRM action, dropped while the condition is selected: its branch leads there.
    you.drag(".jc-item:has-text('Look up customer')", area, 530, 40)
    page.wait_for_selector(".jc-panel .journey-panel-step[data-key=look_up_customer]")
    you.click("#id_param__email")
    you.click(".jc-panel .jc-field[data-path='profile.email']")  # the field picker
    you.click(".jc-panel input[value='Save step']")
    panel_saved(page, "look_up_customer")

    # 3. A wait of one second after the lookup.
    you.drag(".jc-item.jc-wait", area, 810, 40)
    page.wait_for_selector(".jc-panel .journey-panel-step[data-key=wait]")
    you.type("#id_duration_s", "1")
    you.click(".jc-panel input[value='Save step']")
    panel_saved(page, "wait")

    # 4. A condition on the action's response, picked from the response schema's fields.
    you.drag(".jc-item.jc-condition", area, 530, 330)
    page.wait_for_selector(".jc-panel .journey-panel-step[data-key=condition_2]")
    you.click("#id_branch0_expression")
    you.click(".jc-panel .jc-field[data-path='steps.look_up_customer.response.tier']")
    page.keyboard.type(' == "gold"')
    you.click(".jc-panel input[value='Save step']")
    panel_saved(page, "condition_2")

    # 5. The SMS for gold customers.
    you.drag(".jc-item:has-text('Send SMS')", area, 810, 330)
    page.wait_for_selector(".jc-panel .journey-panel-step[data-key=send_sms]")
    you.click("#id_param__phone")
    you.click(".jc-panel .jc-field[data-path='profile.phone']")
    you.type("#id_param__text", '"Gold: " + profile.first_name')
    you.click(".jc-panel input[value='Save step']")
    panel_saved(page, "send_sms")

    # 6. The end, then the two "otherwise" arrows dragged to it.
    you.drag(".jc-item.jc-end", area, 250, 330)
    page.wait_for_selector(node("end"))
    saved(page)
    you.link("condition", "else", "end")
    saved(page)
    you.link("condition_2", "else", "end")
    saved(page)
    page.wait_for_selector("#journey-publishable:visible")
    build_clicks, build_loads = you.clicks - clicks_before_building, you.loads - loads_before_building

    journey = Journey.objects.get(name="Win back")
    assert journey.start == "condition"
    steps = {s["key"]: s for s in journey.steps}
    assert steps["condition"]["branches"] == [{"expression": "event.data.total > 100.0", "next": "look_up_customer"}]
    assert steps["condition"]["else"] == "end"
    assert steps["look_up_customer"]["parameters"] == {"email": "profile.email"}
    assert steps["look_up_customer"]["next"] == "wait" and steps["wait"]["duration_s"] == 1
    assert steps["wait"]["next"] == "condition_2"
    assert steps["condition_2"]["branches"] == [
        {"expression": 'steps.look_up_customer.response.tier == "gold"', "next": "send_sms"}
    ]
    assert steps["send_sms"]["parameters"] == {"phone": "profile.phone", "text": '"Gold: " + profile.first_name'}
    assert steps["send_sms"]["next"] == "end" and set(journey.layout) == set(steps)
    assert build_loads == 0, "building happened on one page"
    assert build_clicks < 25, build_clicks
    print(f"\nbuilt 6 steps on the canvas: {build_clicks} clicks and drags, {build_loads} page loads after the first")
    shot(page, request, "canvas-light")
    page.emulate_media(color_scheme="dark")
    shot(page, request, "canvas-dark")
    page.emulate_media(color_scheme="light")

    # Undo and the keyboard: Delete removes the focused step, Ctrl+Z brings it back.
    page.focus(node("end"))
    page.keyboard.press("Delete")
    page.wait_for_selector(".jc-status:has-text('Step end deleted')")
    saved(page)
    assert "end" not in {s["key"] for s in Journey.objects.get(pk=journey.pk).steps}
    page.wait_for_selector("#journey-checklist:visible")
    page.keyboard.press("Control+z")
    page.wait_for_selector(node("end"))
    saved(page)
    assert Journey.objects.get(pk=journey.pk).steps == journey.steps

    # A dry run through the response branch: the CRM's answer is simulated, nothing is sent.
    page.click("text=Test")
    page.fill("#id_profile", '{"phone": "+33611111111", "first_name": "Ada", "email": "ada@example.com"}')
    page.fill("#id_event", '{"data": {"total": 150.0}}')
    page.fill("#id_responses", '{"look_up_customer": {"status": 200, "body": {"tier": "gold"}}}')
    page.click("#content input[type=submit]")
    page.wait_for_selector("text=send_sms")
    assert "Gold: Ada" in page.content() and providers == []

    # Publish after the confirmation, then an event through the API reaches the SMS gateway.
    page.goto(f"{live_server.url}/admin/journeys/journey/{journey.pk}/change/")
    page.click("summary:has-text('Publish')")
    page.click("input[value='Yes, publish']")
    page.wait_for_selector("text=published: it is live")
    assert page.locator("#journey-canvas .jc-palette").count() == 0  # live: read-only
    workers.start()
    _, raw_key = api_key_create(organization=world.acme, name="shop", scopes=["events:write"])
    event = {"name": "cart_abandoned", "profile_id": "cust-7", "data": {"total": 150.0},
             "profile": {"phone": "+33611111111", "first_name": "Ada", "email": "ada@example.com"}}  # fmt: skip
    answer = requests.post(f"{live_server.url}/api/v1/orgs/acme/events/", json=event, timeout=10,
                           headers={"Authorization": f"Bearer {raw_key}"})  # fmt: skip
    assert answer.status_code == 202, answer.text
    wait_for(lambda: providers, timeout=40, message="the SMS gateway to get the call")
    assert providers == [{"to": "+33611111111", "text": "Gold: Ada"}]
    wait_for(lambda: JourneyRun.objects.filter(journey=journey, status="completed").exists(), message="the run")

    # The counts on the canvas of the report; a click on a step lists its runs.
    page.click("text=Report and runs")
    page.wait_for_selector(f"{node('send_sms')} .jc-counts")
    assert "entered 1" in page.locator(f"{node('send_sms')} .jc-counts").inner_text()
    shot(page, request, "report-canvas")
    page.click(node("send_sms"))
    page.wait_for_selector("text=Runs through send_sms")
    assert "cust-7" in page.content()
    assert not you.errors


def test_a_viewer_sees_the_canvas_read_only(page, live_server, world, providers, request):
    from actions.models import Action

    sms = Action.objects.get(name="Send SMS")
    hostile = '<img src=x onerror="window.pwned=1">SMS'  # names are text, never markup
    Action.objects.filter(pk=sms.pk).update(name=hostile)
    steps = [
        {"key": "sms", "type": "action", "action": sms.pk, "next": "done",
         "parameters": {"phone": "profile.phone", "text": '"Hi"'}},
        {"key": "done", "type": "end"},
    ]  # fmt: skip
    journey = live_journey(world, steps, "sms", entry='<b id="bold">signup</b>')
    login(page, live_server, world.user("viewer").username, PASSWORD)
    page.goto(f"{live_server.url}/admin/journeys/journey/{journey.pk}/change/")
    page.wait_for_selector(node("sms"))
    assert hostile in page.locator(node("sms")).inner_text()
    assert '<b id="bold">signup</b>' in page.locator("#journey-canvas .jc-entry-node").inner_text()
    assert page.evaluate("window.pwned") is None and page.locator("#journey-canvas img, #bold").count() == 0
    assert page.locator("#journey-canvas .jc-palette, [data-tool=undo], [data-tool=tidy]").count() == 0
    assert page.get_attribute("#journey-canvas .jc-area", "aria-label").startswith("Journey canvas: 2 step(s)")
    page.click(node("sms"))
    page.wait_for_selector(".jc-panel .journey-panel-step[data-key=sms]")
    assert page.locator(".jc-panel input[type=submit], .jc-panel form").count() == 0
    editable = ".jc-panel select:not([disabled]), .jc-panel input:not([disabled]):not([type=hidden])"
    assert page.locator(editable).count() == 0
    page.focus(node("sms"))
    page.keyboard.press("Delete")  # nothing happens for a viewer
    page.wait_for_timeout(300)
    assert page.locator(node("sms")).count() == 1
    assert Journey.objects.get(pk=journey.pk).steps == steps
    shot(page, request, "viewer-canvas")


def arrow_middle(page, source: str, target: str) -> dict:
    """Where on the page the middle of the arrow from one step to another is drawn."""
    return page.evaluate(
        """([source, target]) => {
          const id = (key) => document.querySelector(`.drawflow-node[data-key=${key}]`).id.slice(5);
          const path = document.querySelector(
            `svg.connection.node_out_node-${id(source)}.node_in_node-${id(target)} path.main-path`);
          const point = path.getPointAtLength(path.getTotalLength() / 2).matrixTransform(path.getScreenCTM());
          return {x: point.x, y: point.y};
        }""",
        [source, target],
    )


def test_a_step_dropped_on_an_arrow_goes_between_and_the_keyboard_edits_too(page, live_server, world, providers):
    from actions.models import Action

    sms = Action.objects.get(name="Send SMS")
    steps = [
        {"key": "sms", "type": "action", "action": sms.pk, "next": "done",
         "parameters": {"phone": "profile.phone", "text": '"Hi"'}},
        {"key": "done", "type": "end"},
    ]  # fmt: skip
    journey = journey_create(organization=world.acme, data={"name": "Made by the API", "steps": steps,
                                                            "start": "sms", "entry_event": "signup"})  # fmt: skip
    page.set_viewport_size({"width": 1600, "height": 1000})
    login(page, live_server, world.user("marketer").username, PASSWORD)
    page.goto(f"{live_server.url}/admin/journeys/journey/{journey.pk}/change/")
    page.wait_for_selector(node("done"))
    # No positions yet (made by the API): the steps are set out in columns from the first one.
    first, second = (page.locator(f".drawflow-node[data-key={k}]").bounding_box() for k in ("sms", "done"))
    assert second["x"] >= first["x"] + first["width"]
    # Zoom and fit: the whole journey stays in view.
    width = page.locator(node("sms")).bounding_box()["width"]
    page.click("[data-tool=zoom-out]")
    assert page.locator(node("sms")).bounding_box()["width"] < width
    page.click("[data-tool=fit]")
    area = page.locator("#journey-canvas .jc-area").bounding_box()
    for key in ("sms", "done"):
        box = page.locator(f".drawflow-node[data-key={key}]").bounding_box()
        assert area["x"] <= box["x"] and box["x"] + box["width"] <= area["x"] + area["width"]

    # One gesture: a wait dropped on the arrow sms -> done goes between them.
    middle = arrow_middle(page, "sms", "done")
    area = page.locator("#journey-canvas .jc-area").bounding_box()
    page.locator(".jc-item.jc-wait").drag_to(
        page.locator("#journey-canvas .jc-area"),
        target_position={"x": middle["x"] - area["x"], "y": middle["y"] - area["y"]},
    )
    page.wait_for_selector(".jc-panel .journey-panel-step[data-key=wait]")
    saved(page)
    by_key = {s["key"]: s for s in Journey.objects.get(pk=journey.pk).steps}
    assert by_key["sms"]["next"] == "wait" and by_key["wait"]["next"] == "done"

    # The keyboard: arrows move the focused step, Ctrl+Z puts it back, Delete on a selected arrow removes it.
    page.focus(node("wait"))
    before = Journey.objects.get(pk=journey.pk).layout["wait"]
    page.keyboard.press("ArrowDown")
    saved(page)
    assert Journey.objects.get(pk=journey.pk).layout["wait"] == {"x": before["x"], "y": before["y"] + 20}
    page.keyboard.press("Control+z")
    saved(page)
    assert Journey.objects.get(pk=journey.pk).layout["wait"] == before
    middle = arrow_middle(page, "wait", "done")
    page.mouse.click(middle["x"], middle["y"])
    page.wait_for_selector(".jc-status:has-text('Arrow wait')")
    page.keyboard.press("Delete")
    saved(page)
    assert "next" not in {s["key"]: s for s in Journey.objects.get(pk=journey.pk).steps}["wait"]
    # A palette item chosen with the keyboard goes after the focused step, linked from it.
    page.focus(node("wait"))
    page.focus(".jc-item.jc-end")
    page.keyboard.press("Enter")
    page.wait_for_selector(node("end"))
    saved(page)
    assert {s["key"]: s for s in Journey.objects.get(pk=journey.pk).steps}["wait"]["next"] == "end"
