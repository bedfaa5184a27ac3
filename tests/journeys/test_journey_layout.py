"""A journey's layout: where each step sits on the canvas, kept in the journey, ignored by the engine."""

import pytest

from journeys.models import JourneyRun
from tests.conftest import token_client
from tests.journeys.helpers import drain, send

ORG = "/api/v1/orgs/acme"
STEPS = [{"key": "pause", "type": "wait", "duration_s": 0, "next": "done"}, {"key": "done", "type": "end"}]
LAYOUT = {"pause": {"x": 40, "y": 120.5}, "done": {"x": 320, "y": -15}}


@pytest.fixture
def marketer(world):
    return token_client(world.user("marketer"))


def create(marketer, **extra):
    body = {"name": "Placed", "entry_event": "cart_abandoned", "start": "pause", "steps": STEPS, **extra}
    return marketer.post(f"{ORG}/journeys/", body, format="json")


def test_the_layout_round_trips_and_follows_new_versions_and_copies(marketer):
    journey = create(marketer, layout=LAYOUT).json()
    assert marketer.get(f"{ORG}/journeys/{journey['id']}/").json()["layout"] == LAYOUT

    moved = {**LAYOUT, "done": {"x": 500, "y": 0}}
    assert (
        marketer.patch(f"{ORG}/journeys/{journey['id']}/", {"layout": moved}, format="json").json()["layout"] == moved
    )
    copy = marketer.post(f"{ORG}/journeys/{journey['id']}/duplicate/").json()
    assert copy["layout"] == moved
    marketer.post(f"{ORG}/journeys/{journey['id']}/publish/")
    draft = marketer.post(f"{ORG}/journeys/{journey['id']}/new-version/").json()
    assert draft["layout"] == moved


def test_positions_of_steps_the_journey_does_not_have_are_dropped(marketer):
    journey = create(marketer, layout={**LAYOUT, "gone": {"x": 1, "y": 2}, "junk": [{"deep": {}}]}).json()
    assert journey["layout"] == LAYOUT
    fewer = marketer.patch(f"{ORG}/journeys/{journey['id']}/", {"steps": [STEPS[1]], "start": "done"}, format="json")
    assert fewer.json()["layout"] == {"done": LAYOUT["done"]}


@pytest.mark.parametrize(
    ("layout", "field"),
    [
        ([1, 2], "layout"),
        ({"pause": {"x": "40", "y": 1}}, "layout.pause.x"),
        ({"pause": {"x": 1, "y": True}}, "layout.pause.y"),
        ({"pause": {"x": 1e12, "y": 1}}, "layout.pause.x"),
        ({"pause": {"x": 1, "y": 2, "z": 3}}, "layout.pause"),
        ({"pause": "top left"}, "layout.pause"),
    ],
)
def test_a_bad_position_is_400_naming_it_and_nothing_changes(marketer, layout, field):
    journey = create(marketer, layout=LAYOUT).json()

    response = marketer.patch(f"{ORG}/journeys/{journey['id']}/", {"layout": layout}, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]
    assert marketer.get(f"{ORG}/journeys/{journey['id']}/").json()["layout"] == LAYOUT


def test_the_engine_ignores_the_layout(world, marketer):
    journey = create(marketer, layout=LAYOUT).json()
    marketer.post(f"{ORG}/journeys/{journey['id']}/publish/")
    send(world)
    drain()
    run = JourneyRun.objects.get()
    assert run.status == "completed"


def test_a_viewer_cannot_move_steps(world, marketer):
    journey = create(marketer, layout=LAYOUT).json()
    viewer = token_client(world.user("viewer"))
    assert viewer.patch(f"{ORG}/journeys/{journey['id']}/", {"layout": {}}, format="json").status_code == 403
