"""The canvas's newer steps in a real browser: a marketer builds a split, a wait for an event with its
timeout and a jump to another live journey, edits them in the side panel (also from the keyboard),
is told when a split's percentages do not add up, saves, reloads, publishes, and reads on the report
how the split shared the customers who came."""

import pytest

from journeys.admin.diagram import journey_svg
from journeys.models import Journey, JourneyRun, StepRun
from journeys.services import journey_create
from tests.e2e.conftest import login, shot
from tests.e2e.test_canvas_browser import Gestures, arrow_middle, node, panel_saved, saved
from tests.factories import PASSWORD
from tests.journeys.helpers import live_journey, send
from tests.workers import wait_for

pytestmark = [pytest.mark.e2e]

AREA = "#journey-canvas .jc-area"


def arrows(page) -> set[tuple[str, str, str]]:
    """Every arrow drawn on the canvas: (from step, the label of the dot it leaves, to step)."""
    found = page.evaluate(
        """() => [...document.querySelectorAll("#journey-canvas svg.connection")].map((svg) => {
          const cls = svg.getAttribute("class");
          const element = (id) => document.getElementById("node-" + id);
          const from = element(cls.match(/node_out_node-(\\S+)/)[1]);
          const to = element(cls.match(/node_in_node-(\\S+)/)[1]);
          const output = from.querySelector("." + cls.match(/output_\\d+/)[0]);
          return [from.dataset.key || "entry", output.dataset.label, to.dataset.key];
        })"""
    )
    return {tuple(arrow) for arrow in found}


def panel(page, key: str) -> None:
    page.wait_for_selector(f".jc-panel .journey-panel-step[data-key={key}]")


def save_panel(page, you, key: str) -> None:
    you.click(".jc-panel input[value='Save step']")
    panel_saved(page, key)
    saved(page)


@pytest.mark.worker  # the customers who come after publishing go through a real Celery worker
def test_a_marketer_builds_a_split_a_wait_for_an_event_and_a_jump_on_the_canvas(
    page, live_server, world, workers, request
):
    loyalty = live_journey(world, [{"key": "done", "type": "end"}], "done", entry="loyalty_joined")
    Journey.objects.filter(pk=loyalty.pk).update(name="Loyalty")
    page.set_viewport_size({"width": 1600, "height": 1000})
    login(page, live_server, world.user("marketer").username, PASSWORD)
    page.goto(f"{live_server.url}/admin/journeys/journey/add/")
    you = Gestures(page)
    you.type("#id_name", "Welcome")
    you.type("#id_entry_event", "signup")
    you.click("text=Create and add steps")
    page.wait_for_selector("#journey-canvas .jc-palette .jc-item.jc-split")

    # A split, dropped first: the first step, with two branches of 50 % not leading anywhere yet.
    you.drag(".jc-item.jc-split", AREA, 250, 200)
    panel(page, "split")
    saved(page)
    assert page.locator(f"{node('split')} .jc-what").inner_text() == "50 % / 50 %"
    # Its first branch leads to a wait dropped while the split is selected; the second to a wait for an event.
    you.drag(".jc-item.jc-wait", AREA, 560, 40)
    panel(page, "wait")
    you.type("#id_duration_s", "60")
    save_panel(page, you, "wait")
    you.click(node("split"))
    panel(page, "split")
    you.drag(".jc-item.jc-wait_event", AREA, 560, 360)
    panel(page, "wait_event")
    assert page.locator(".jc-panel #id_event").count() == 1
    you.type("#id_event", "order_placed")
    you.type("#id_condition", "event.data.total > 50.0")
    you.type("#id_timeout_s", "3600")
    save_panel(page, you, "wait_event")
    # The jump comes when the event does: dropped while the wait for an event is selected.
    you.drag(".jc-item.jc-jump", AREA, 870, 360)
    panel(page, "jump")
    you.select(".jc-panel #id_journey", str(loyalty.pk))
    save_panel(page, you, "jump")
    assert page.locator(f"{node('jump')} .jc-what").inner_text() == "Loyalty v1"  # its name and version
    # The end, and the arrows to it dragged from the wait's "then" and the wait for an event's "on timeout".
    you.drag(".jc-item.jc-end", AREA, 870, 40)
    page.wait_for_selector(node("end"))
    saved(page)
    you.link("wait", "next", "end")
    saved(page)
    you.link("wait_event", "on_timeout", "end")
    saved(page)

    # Percentages that do not add up to 100: saved as a draft, and said on the step's box and in its panel.
    page.focus(node("split"))
    page.keyboard.press("Enter")
    panel(page, "split")
    you.type("#id_branch0_percent", "30")
    you.type("#id_branch1_percent", "60")
    save_panel(page, you, "split")
    problem = "the percentages add up to 90, not 100"
    page.wait_for_selector(f"{node('split')} .jc-problems")
    assert problem in page.locator(node("split")).get_attribute("aria-label")
    assert problem in page.locator(".jc-panel .journey-problems").inner_text()
    assert problem in page.locator(".jc-panel .form-row.field-branch0_percent .errorlist").inner_text()
    assert problem in page.locator("#journey-checklist").inner_text()
    assert page.locator("#journey-publishable:visible").count() == 0
    # Fixed from the keyboard: the field typed in, Enter saves the step.
    page.focus("#id_branch1_percent")
    page.keyboard.press("Control+a")
    page.keyboard.type("70")
    page.keyboard.press("Enter")
    panel_saved(page, "split")
    saved(page)
    page.wait_for_selector("#journey-publishable:visible")
    assert page.locator(f"{node('split')} .jc-problems").count() == 0
    assert page.locator(f"{node('split')} .jc-what").inner_text() == "30 % / 70 %"

    journey = Journey.objects.get(name="Welcome")
    expected = [
        {"key": "split", "type": "split", "branches": [{"percent": 30, "next": "wait"},
                                                       {"percent": 70, "next": "wait_event"}]},
        {"key": "wait", "type": "wait", "duration_s": 60, "next": "end"},
        {"key": "wait_event", "type": "wait_event", "event": "order_placed", "condition": "event.data.total > 50.0",
         "timeout_s": 3600, "next": "jump", "on_timeout": "end"},
        {"key": "jump", "type": "jump", "journey": loyalty.pk},
        {"key": "end", "type": "end"},
    ]  # fmt: skip
    assert journey.steps == expected and journey.start == "split"
    assert set(journey.layout) == {"split", "wait", "wait_event", "jump", "end"}
    drawn = {
        ("entry", "first step", "split"),
        ("split", "30 %", "wait"), ("split", "70 %", "wait_event"), ("wait", "then", "end"),
        ("wait_event", "when it comes", "jump"), ("wait_event", "on timeout", "end"),
    }  # fmt: skip
    assert arrows(page) == drawn

    # The keyboard moves a new step and undoes it.
    page.focus(node("jump"))
    page.keyboard.press("ArrowDown")
    saved(page)
    assert Journey.objects.get(pk=journey.pk).layout["jump"]["y"] == journey.layout["jump"]["y"] + 20
    page.keyboard.press("Control+z")
    saved(page)
    assert Journey.objects.get(pk=journey.pk).layout == journey.layout

    # Reloaded: the same steps, the same arrows with their labels; the server's diagram labels them too.
    page.reload()
    page.wait_for_selector(node("jump"))
    assert arrows(page) == drawn
    layout = {key: page.locator(f".drawflow-node[data-key={key}]").get_attribute("style") for key in journey.layout}
    assert all(f"left: {journey.layout[key]['x']}px" in style for key, style in layout.items()), layout
    svg = journey_svg(journey.steps, journey.start)
    for label, target in (("30 %", "wait"), ("70 %", "wait_event"), ("timeout", "end"), ("next", "jump")):
        assert f'data-to="{target}" data-label="{label}"' in svg, label
    page.focus(node("wait_event"))
    page.keyboard.press("Enter")
    panel(page, "wait_event")
    assert page.input_value("#id_event") == "order_placed" and page.input_value("#id_timeout_s") == "3600"
    assert page.input_value("#id_condition") == "event.data.total > 50.0"
    assert page.input_value("#id_next") == "jump" and page.input_value("#id_on_timeout") == "end"
    shot(page, request, "canvas")

    # Published after its confirmation; the report lists the split's branches with their planned shares.
    page.click("summary:has-text('Publish')")
    page.click("input[value='Yes, publish']")
    page.wait_for_selector("text=published: it is live")
    assert Journey.objects.get(pk=journey.pk).status == Journey.Status.LIVE

    # Twenty customers sign up and the split shares them; one waiting for an order places it and jumps.
    workers.start()
    for number in range(20):
        send(world, profile=f"cust-{number}", name="signup")
    shared = StepRun.objects.filter(journey=journey, step_key="split", outcome__startswith="branches[")
    wait_for(lambda: shared.count() == 20, timeout=40, message="the 20 runs through the split")
    waiting = StepRun.objects.filter(journey=journey, step_key="wait_event", status=StepRun.Status.WAITING)
    wait_for(lambda: waiting.count() == shared.filter(outcome="branches[1]").count(), message="the waits for an event")
    customer = waiting.select_related("run__profile").first().run.profile.external_id
    send(world, profile=customer, name="order_placed", total=80.0)
    jumped = JourneyRun.objects.filter(journey=loyalty, profile__external_id=customer)
    wait_for(jumped.exists, timeout=40, message="the jump into Loyalty")
    assert StepRun.objects.get(journey=journey, step_key="jump", run__profile__external_id=customer).outcome == "jumped"

    page.click("text=Report and runs")
    page.wait_for_selector(node("split"))
    branches = page.locator("table.journey-steps .journey-branches li").all_inner_texts()
    taken = [shared.filter(outcome=f"branches[{n}]").count() for n in (0, 1)]
    assert branches == [
        f"branch 1 (30 % planned): {taken[0]} ({taken[0] * 5:.1f} %)",
        f"branch 2 (70 % planned): {taken[1]} ({taken[1] * 5:.1f} %)",
    ], branches
    assert sum(taken) == 20 and all(taken), taken
    assert {a for a in arrows(page) if a[0] == "split"} == {("split", "30 %", "wait"), ("split", "70 %", "wait_event")}
    shot(page, request, "report")
    assert not you.errors


def test_a_split_chosen_with_the_keyboard_on_an_arrow_goes_between_and_its_next_branch_takes_a_jump(
    page, live_server, world
):
    loyalty = live_journey(world, [{"key": "done", "type": "end"}], "done", entry="loyalty_joined")
    steps = [{"key": "pause", "type": "wait", "duration_s": 60, "next": "done"}, {"key": "done", "type": "end"}]
    journey = journey_create(organization=world.acme, data={"name": "Made by the API", "steps": steps,
                                                            "start": "pause", "entry_event": "signup"})  # fmt: skip
    page.set_viewport_size({"width": 1600, "height": 1000})
    login(page, live_server, world.user("marketer").username, PASSWORD)
    page.goto(f"{live_server.url}/admin/journeys/journey/{journey.pk}/change/")
    page.wait_for_selector(node("done"))

    # The arrow pause -> done selected, then the split chosen in the palette with Enter: it goes between.
    middle = arrow_middle(page, "pause", "done")
    page.mouse.click(middle["x"], middle["y"])
    page.wait_for_selector(".jc-status:has-text('Arrow pause')")
    page.focus(".jc-item.jc-split")
    page.keyboard.press("Enter")
    panel(page, "split")
    saved(page)
    by_key = {s["key"]: s for s in Journey.objects.get(pk=journey.pk).steps}
    assert by_key["pause"]["next"] == "split"
    assert by_key["split"]["branches"] == [{"percent": 50, "next": "done"}, {"percent": 50}]
    # The split focused, a jump chosen with Enter takes its branch that leads nowhere yet.
    page.focus(node("split"))
    page.focus(".jc-item.jc-jump")
    page.keyboard.press("Enter")
    panel(page, "jump")
    saved(page)
    page.select_option(".jc-panel #id_journey", str(loyalty.pk))
    page.focus(".jc-panel #id_journey")
    page.keyboard.press("Tab")  # to Save step
    page.keyboard.press("Enter")
    panel_saved(page, "jump")
    saved(page)
    by_key = {s["key"]: s for s in Journey.objects.get(pk=journey.pk).steps}
    assert by_key["split"]["branches"] == [{"percent": 50, "next": "done"}, {"percent": 50, "next": "jump"}]
    assert by_key["jump"] == {"key": "jump", "type": "jump", "journey": loyalty.pk}
    assert {a for a in arrows(page) if a[0] in ("pause", "split")} == {
        ("pause", "then", "split"),
        ("split", "50 %", "done"),
        ("split", "50 %", "jump"),
    }
    # Delete on the focused jump removes it and frees the branch; Ctrl+Z brings both back.
    page.focus(node("jump"))
    page.keyboard.press("Delete")
    page.wait_for_selector(".jc-status:has-text('Step jump deleted')")
    saved(page)
    assert {s["key"]: s for s in Journey.objects.get(pk=journey.pk).steps}["split"]["branches"][1] == {
        "percent": 50,
        "next": "",
    }
    page.keyboard.press("Control+z")
    page.wait_for_selector(node("jump"))
    saved(page)
    assert {s["key"]: s for s in Journey.objects.get(pk=journey.pk).steps}["split"]["branches"][1]["next"] == "jump"


def test_an_arrow_drawn_while_the_steps_panel_is_open_is_kept_when_the_panel_is_saved(page, live_server, world):
    steps = [
        {"key": "order", "type": "wait_event", "event": "order_placed", "timeout_s": 60, "next": "thanks"},
        {"key": "thanks", "type": "end"},
        {"key": "late", "type": "end"},
    ]
    journey = journey_create(organization=world.acme, data={"name": "Orders", "steps": steps,
                                                            "start": "order", "entry_event": "signup"})  # fmt: skip
    page.set_viewport_size({"width": 1600, "height": 1000})
    login(page, live_server, world.user("marketer").username, PASSWORD)
    page.goto(f"{live_server.url}/admin/journeys/journey/{journey.pk}/change/")
    page.wait_for_selector(node("late"))
    you = Gestures(page)
    you.click(node("order"))
    panel(page, "order")
    you.type("#id_timeout_s", "120")
    # The timeout's arrow drawn on the canvas before the panel is saved: the panel's form follows it.
    you.link("order", "on_timeout", "late")
    saved(page)
    assert page.input_value("#id_on_timeout") == "late" and page.input_value("#id_timeout_s") == "120"
    save_panel(page, you, "order")
    stored = Journey.objects.get(pk=journey.pk).steps[0]
    assert stored == {**steps[0], "timeout_s": 120, "on_timeout": "late"}
    assert ("order", "on timeout", "late") in arrows(page)
    assert not you.errors
