"""Dry runs that follow an action's answer: the test's own answers by step, else a sample of the
action's response schema, so that a branch on `steps.<key>.response` can be tried without sending."""

import pytest

from actions.services.samples import sample_from_schema
from journeys.models import JourneyRun
from tests.conftest import token_client
from tests.journeys.helpers import PARAMETERS, live_journey

ORG = "/api/v1/orgs/acme"
SCHEMA = {"type": "object", "properties": {"state": {"type": "string", "enum": ["queued", "refused"]},
                                           "id": {"type": "string"}}}  # fmt: skip


def answer_steps(action_id: int) -> list[dict]:
    return [
        {"key": "sms", "type": "action", "action": action_id, "parameters": PARAMETERS, "next": "read",
         "on_error": "failed"},
        {"key": "read", "type": "condition",
         "branches": [{"expression": 'steps.sms.response.state == "queued"', "next": "queued"}], "else": "other"},
        {"key": "queued", "type": "end"},
        {"key": "other", "type": "end"},
        {"key": "failed", "type": "end"},
    ]  # fmt: skip


@pytest.fixture
def journey(world, action):
    action.response_schema = SCHEMA
    action.save()
    return live_journey(world, answer_steps(action.pk), "sms")


def dry_run(world, journey, role="marketer", **extra):
    body = {"profile": {"phone": "+33611111111", "first_name": "Bo"}, **extra}
    return token_client(world.user(role)).post(f"{ORG}/journeys/{journey.pk}/test/", body, format="json")


def test_the_answer_given_for_a_step_takes_its_branch_and_nothing_is_sent(world, journey, receiver):
    answer = dry_run(world, journey, responses={"sms": {"status": 200, "body": {"state": "refused"}}}).json()

    assert [p["key"] for p in answer["path"]] == ["sms", "read", "other"]
    assert answer["path"][0]["simulated"] == {"status": 200, "body": {"state": "refused"}, "source": "given"}
    assert receiver == [] and not JourneyRun.objects.exists()


def test_without_an_answer_a_sample_of_the_response_schema_is_used(world, journey, receiver):
    answer = dry_run(world, journey, role="technical").json()

    assert [p["key"] for p in answer["path"]] == ["sms", "read", "queued"]  # the enum's first value
    assert answer["path"][0]["simulated"] == {
        "status": 200, "body": {"state": "queued", "id": "text"}, "source": "response_schema"}  # fmt: skip
    assert answer["path"][0]["request"]["body"] == '{"to":"+33611111111","text":"Hi Bo"}'  # what would be sent
    assert receiver == []


def test_an_error_status_given_follows_on_error(world, journey, receiver):
    answer = dry_run(world, journey, responses={"sms": {"status": 503, "body": {"error": "busy"}}}).json()

    assert [(p["key"], p.get("outcome")) for p in answer["path"]] == [("sms", "http_503"), ("failed", None)]
    assert answer["result"] == "completed"


def test_an_action_without_a_schema_answers_nothing_and_says_so(world, action, receiver):
    journey = live_journey(world, answer_steps(action.pk), "sms")

    answer = dry_run(world, journey).json()

    assert answer["path"][0]["simulated"] == {"status": 200, "body": None, "source": "none"}
    assert answer["path"][1]["outcome"] == "error"  # the condition reads a field that no answer has


def test_a_marketer_sees_what_was_simulated_never_the_request(world, journey, receiver):
    answer = dry_run(world, journey).json()

    sms = answer["path"][0]
    assert "request" not in sms and sms["simulated"]["source"] == "response_schema"
    assert "127.0.0.1" not in str(answer)


@pytest.mark.parametrize(
    ("responses", "field"),
    [
        ({"nope": {"status": 200}}, "responses.nope"),  # no such step
        ({"read": {"status": 200}}, "responses.read"),  # a condition has no answer
        ({"sms": {"status": 700}}, "responses"),
        ({"sms": {"status": 2.5}}, "responses"),
        ({"sms": {"status": 200, "headers": {}}}, "responses"),  # unknown field
        ({"sms": [200]}, "responses"),
        ([{"sms": {}}], "responses"),
    ],
)
def test_bad_answers_are_400_naming_the_field(world, journey, responses, field):
    response = dry_run(world, journey, responses=responses)

    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_answers_are_for_a_dry_run_only(world, journey, receiver):
    response = dry_run(world, journey, dry_run=False, responses={"sms": {"status": 200}})

    assert response.status_code == 400 and "responses" in response.json()["errors"]
    assert receiver == []


def test_the_admin_test_page_takes_answers_and_shows_what_was_simulated(world, journey, receiver, client):
    client.force_login(world.user("marketer"))
    url = f"/admin/journeys/journey/{journey.pk}/test/"
    page = client.post(url, {"profile": '{"phone": "+336", "first_name": "Bo"}', "event": "{}", "dry_run": "on",
                             "responses": '{"sms": {"status": 200, "body": {"state": "refused"}}}'})  # fmt: skip
    text = page.content.decode()
    assert page.status_code == 200
    assert "simulated answer (yours)" in text and "refused" in text
    assert "<td>other</td>" in text
    bad = client.post(url, {"profile": "{}", "event": "{}", "dry_run": "on", "responses": '{"sms": {"status": 9}}'})
    assert "sms: the status is a whole number from 100 to 599." in bad.content.decode()
    assert receiver == []


@pytest.mark.parametrize(
    ("schema", "sample"),
    [
        ({"type": "string", "format": "date-time"}, "2026-01-01T09:00:00Z"),
        ({"type": ["null", "integer"]}, 1),
        ({"type": "number", "default": 4.5}, 4.5),
        ({"type": "string", "examples": ["m-1"]}, "m-1"),
        ({"const": "ok"}, "ok"),
        ({"type": "array", "items": {"type": "boolean"}}, [True]),
        ({"properties": {"a": {"type": "object", "properties": {"b": {"type": "null"}}}}}, {"a": {"b": None}}),
        ({"type": "object", "properties": "not a dict"}, {}),
        ("not a schema", None),
    ],
)
def test_a_sample_follows_the_schema(schema, sample):
    assert sample_from_schema(schema) == sample


def test_a_sample_of_a_schema_nested_too_deep_stops():
    schema: dict = {"type": "string"}
    for _ in range(200):
        schema = {"type": "array", "items": schema}
    sample = sample_from_schema(schema)
    depth = 0
    while isinstance(sample, list):
        sample, depth = sample[0], depth + 1
    assert sample is None and depth == 33
