"""Journeys as JSON documents: saving, publishing with every problem listed, the lifecycle."""

import pytest

from journeys.models import Journey
from tests.actions.helpers import make_action
from tests.conftest import token_client

JOURNEYS = "/api/v1/orgs/acme/journeys/"


def document(action_id: int, **overrides) -> dict:
    return {
        "name": "Abandoned cart", "entry_event": "cart_abandoned", "reentry": "after_exit", "start": "check",
        "steps": [
            {"key": "check", "type": "condition",
             "branches": [{"expression": "event.data.total > 100.0", "next": "wait1"}], "else": "done"},
            {"key": "wait1", "type": "wait", "duration_s": 3600, "next": "sms"},
            {"key": "sms", "type": "action", "action": action_id,
             "parameters": {"account": '"a1"', "phone": "profile.phone", "text": '"Hi " + profile.first_name'},
             "next": "done", "on_error": "done"},
            {"key": "done", "type": "end"},
        ],
        **overrides,
    }  # fmt: skip


@pytest.fixture
def action(world):
    return make_action(world.acme)


@pytest.fixture
def marketer(world):
    return token_client(world.user("marketer"))


def _create(client, body):
    response = client.post(JOURNEYS, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_marketer_creates_publishes_pauses_resumes_and_stops_a_journey(marketer, action):
    journey = _create(marketer, document(action.pk))
    assert journey["status"] == "draft" and journey["steps"][2]["parameters"]["phone"] == "profile.phone"
    url = f"{JOURNEYS}{journey['id']}/"
    assert marketer.post(f"{url}publish/").json()["status"] == "live"
    assert marketer.post(f"{url}pause/").json()["status"] == "paused"
    assert marketer.post(f"{url}resume/").json()["status"] == "live"
    assert marketer.post(f"{url}stop/").json()["status"] == "stopped"
    assert marketer.post(f"{url}close/").json()["status"] == "closed"


def test_transitions_that_make_no_sense_are_refused_with_a_sentence(marketer, action):
    url = f"{JOURNEYS}{_create(marketer, document(action.pk))['id']}/"
    response = marketer.post(f"{url}pause/")
    assert response.status_code == 409 and "A draft journey cannot be paused" in response.json()["detail"]
    marketer.post(f"{url}publish/")
    assert marketer.post(f"{url}publish/").status_code == 409


def test_publishing_lists_every_problem_at_once(marketer, action):
    body = document(action.pk)
    body["steps"][0]["branches"][0]["next"] = "nowhere"
    body["steps"][2]["parameters"] = {"phone": "steps.ghost.status", "extra": "1"}
    body["steps"].append({"key": "orphan", "type": "end"})
    body["steps"].append({"key": "loop_a", "type": "condition", "branches": [{"expression": "true", "next": "loop_b"}],
                          "else": "loop_b"})  # fmt: skip
    body["steps"].append({"key": "loop_b", "type": "condition", "branches": [{"expression": "true", "next": "loop_a"}],
                          "else": "loop_a"})  # fmt: skip
    journey = _create(marketer, body)
    response = marketer.post(f"{JOURNEYS}{journey['id']}/publish/")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "leads to 'nowhere'" in errors["steps[check].branches[0].next"][0]
    assert "refers to step 'ghost'" in errors["steps[sms].parameters.phone"][0]
    assert "has no such parameter" in errors["steps[sms].parameters.extra"][0]
    assert "is required" in errors["steps[sms].parameters.text"][0]
    assert "cannot be reached" in errors["steps[orphan]"][0]
    assert any("loop with no wait" in m for m in errors["steps[loop_a]"] + errors.get("steps[loop_b]", []))
    assert Journey.objects.get(pk=journey["id"]).status == "draft"


def test_an_expression_that_does_not_parse_is_a_400_at_save_naming_step_field_and_position(marketer, action):
    body = document(action.pk)
    body["steps"][2]["parameters"]["text"] = '"Hi " +'
    response = marketer.post(JOURNEYS, body, format="json")
    assert response.status_code == 400
    assert "line 1, column" in response.json()["errors"]["steps[sms].parameters.text"][0]


def test_another_organizations_action_cannot_be_used(world, marketer):
    globex_action = make_action(world.globex)
    response = marketer.post(JOURNEYS, document(globex_action.pk), format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["steps[sms].action"] == ["choose an action of this organization"]


def test_a_live_journey_cannot_be_edited_but_gets_a_new_version(marketer, action):
    journey = _create(marketer, document(action.pk))
    url = f"{JOURNEYS}{journey['id']}/"
    marketer.post(f"{url}publish/")
    response = marketer.patch(url, {"steps": []}, format="json")
    assert response.status_code == 409 and "new version" in response.json()["detail"]
    draft = marketer.post(f"{url}new-version/").json()
    assert (draft["version"], draft["status"], draft["previous"]) == (2, "draft", journey["id"])
    assert marketer.post(f"{JOURNEYS}{draft['id']}/publish/").json()["status"] == "live"
    assert Journey.objects.get(pk=journey["id"]).status == "closed"


def test_an_action_used_by_a_live_journey_keeps_its_parameters(world, marketer, action):
    journey = _create(marketer, document(action.pk))
    technical = token_client(world.user("technical"))
    detail = technical.get(f"/api/v1/orgs/acme/actions/{action.pk}/").json()
    assert detail["used_in"] == [{"id": journey["id"], "name": "Abandoned cart", "version": 1, "status": "draft"}]
    marketer.post(f"{JOURNEYS}{journey['id']}/publish/")
    shorter = action.parameters[:2]
    response = technical.patch(f"/api/v1/orgs/acme/actions/{action.pk}/", {"parameters": shorter}, format="json")
    assert response.status_code == 409
    assert (
        "removes the parameter text" in response.json()["detail"] and "Abandoned cart (v1)" in response.json()["detail"]
    )
    optional = [*action.parameters, {"name": "extra", "type": "string", "required": False}]
    assert (
        technical.patch(f"/api/v1/orgs/acme/actions/{action.pk}/", {"parameters": optional}, format="json").status_code
        == 200
    )


def test_viewers_read_journeys_but_cannot_change_them(world, marketer, action):
    journey = _create(marketer, document(action.pk))
    viewer = token_client(world.user("viewer"))
    assert viewer.get(f"{JOURNEYS}{journey['id']}/").status_code == 200
    assert viewer.post(f"{JOURNEYS}{journey['id']}/publish/").status_code == 403


def test_branch_targets_and_action_ids_of_the_wrong_kind_are_named_not_a_500(marketer, action):
    body = document(action.pk)
    body["steps"][0]["branches"][0]["next"] = ["wait1"]
    body["steps"][2]["action"] = [action.pk]
    response = marketer.post(JOURNEYS, body, format="json")
    assert response.status_code == 400
    assert {"steps[check].branches[0].next", "steps[sms].action"} <= set(response.json()["errors"])


def test_a_branch_without_a_target_cannot_be_published(marketer, action):
    body = document(action.pk)
    del body["steps"][0]["branches"][0]["next"]
    journey = _create(marketer, body)
    response = marketer.post(f"{JOURNEYS}{journey['id']}/publish/")
    assert response.status_code == 400 and "steps[check].branches[0].next" in response.json()["errors"]


def _chain(count: int, loop: bool = False) -> dict:
    """`count` conditions one after another (back to the first with `loop`), then an end."""
    steps = [
        {"key": f"c{i}", "type": "condition", "branches": [{"expression": "true", "next": f"c{i + 1}"}],
         "else": f"c{i + 1}"}
        for i in range(count)
    ]  # fmt: skip
    steps[-1]["else"] = steps[-1]["branches"][0]["next"] = "c0" if loop else "done"
    return {"name": "Chain", "entry_event": "go", "start": "c0", "steps": [*steps, {"key": "done", "type": "end"}]}


@pytest.mark.parametrize("count", [201, 1_000, 2_000])
def test_a_journey_past_200_steps_is_a_400_naming_the_bound(marketer, count):
    response = marketer.post(JOURNEYS, _chain(count, loop=count == 2_000), format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["steps"] == [f"a journey has at most 200 steps (this one has {count + 1})"]
    assert not Journey.objects.exists()


def test_a_chain_of_199_steps_without_a_wait_publishes(marketer):
    journey = _create(marketer, _chain(199))
    response = marketer.post(f"{JOURNEYS}{journey['id']}/publish/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "live"


def test_a_loop_through_199_steps_is_refused_at_publish_with_the_loop(marketer):
    journey = _create(marketer, _chain(199, loop=True))
    response = marketer.post(f"{JOURNEYS}{journey['id']}/publish/")
    assert response.status_code == 400
    [problem] = response.json()["errors"]["steps[c0]"]
    assert problem.startswith("is on a loop with no wait: c0 -> c1 -> c2") and problem.endswith("c198 -> c0")


@pytest.mark.parametrize("action_id", [2**70, 2**63, 0, -1])
def test_an_action_id_no_object_can_have_is_a_400_naming_the_step(marketer, action_id):
    body = document(1)
    body["steps"][2]["action"] = action_id
    response = marketer.post(JOURNEYS, body, format="json")
    assert response.status_code == 400, response.content
    assert "must be an action's id" in response.json()["errors"]["steps[sms].action"]
