"""Issue 16 (4, 16): a provider's echo of a credential is masked on the decoded values, whatever
escapes it uses; marketers never read a real call's response, not even through a journey test."""

import base64
import html
import json

import pytest
from werkzeug import Response

from actions.models import Action
from actions.runtime import invocation_enqueue, invocation_send
from journeys.services import journey_create
from tests.actions.helpers import make_action
from tests.conftest import token_client

TOKEN = "tok/SECRET+42=é"


def every_char_escaped(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in text)


ECHOES = {
    "escaped slash": lambda t: json.dumps({"got": t}).replace("/", "\\/"),
    "ascii escapes": lambda t: json.dumps({"got": t}, ensure_ascii=True),
    "every character escaped": lambda t: '{"got": "' + every_char_escaped(t) + '"}',
    "mixed escapes": lambda t: '{"got": "' + every_char_escaped(t[:4]) + t[4:] + '"}',
    "upper-case escapes": lambda t: '{"got": "' + every_char_escaped(t).upper().replace("\\U", "\\u") + '"}',
    "as a key": lambda t: json.dumps({t: 1}).replace("/", "\\/"),
    "base64 in text": lambda t: "auth=" + base64.b64encode(t.encode()).decode(),
    "html in text": lambda t: "<p>" + html.escape("Bearer " + t) + "</p>",
    "lower-case percent": lambda t: "token=" + "tok%2fSECRET%2b42%3d%c3%a9",
    "escapes in text": lambda t: "got " + every_char_escaped(t),
}


@pytest.fixture
def echoing(world, httpserver, allow_loopback):
    world.acme.allow_http = True
    world.acme.save()
    form = {"name": ECHOES["escaped slash"]}

    def handle(request):
        return Response(form["name"](TOKEN), content_type="application/json", headers={"X-Echo": form["echo"]})

    httpserver.expect_request("/echo").respond_with_handler(handle)
    action = make_action(
        world.acme, url=httpserver.url_for("/echo"), body={"to": "{{phone}}"}, auth={"type": "bearer", "token": TOKEN},
        parameters=[{"name": "phone", "type": "string", "required": True, "description": "Phone"}],
    )  # fmt: skip
    return action, form


def assert_hidden(text: str) -> None:
    for form in [TOKEN, "SECRET+42", "SECRET%2B42", "SECRET%2b42", every_char_escaped(TOKEN)[:40], "dG9rL1NFQ1JF"]:
        assert form not in text, form


@pytest.mark.parametrize("echo", sorted(ECHOES))
def test_an_echoed_token_is_masked_whatever_its_escapes(world, echoing, echo):
    action, form = echoing
    form["name"], form["echo"] = ECHOES[echo], ECHOES["escaped slash"](TOKEN)
    tech = token_client(world.user("technical"))
    answer = tech.post(f"/api/v1/orgs/acme/actions/{action.pk}/test/", {"parameters": {"phone": "+1"}}, format="json")
    assert answer.status_code == 200 and answer.json()["outcome"] == "succeeded"
    invocation = invocation_enqueue(action=Action.objects.get(pk=action.pk), values={"phone": "+1"})
    invocation_send(invocation_id=invocation.pk)
    detail = tech.get(f"/api/v1/orgs/acme/invocations/{invocation.pk}/")
    assert detail.status_code == 200
    invocation.refresh_from_db()
    assert_hidden(answer.content.decode() + detail.content.decode() + invocation.response_body)
    assert_hidden(
        json.dumps(invocation.response_headers) + json.dumps(list(invocation.attempt_log.values()), default=str)
    )


def test_a_masked_json_answer_keeps_its_other_values(world, echoing):
    action, form = echoing
    form["name"] = lambda t: json.dumps({"id": "m1", "echo": {"auth": "Bearer " + t}}).replace("/", "\\/")
    form["echo"] = "none"
    tech = token_client(world.user("technical"))
    answer = tech.post(f"/api/v1/orgs/acme/actions/{action.pk}/test/", {"parameters": {"phone": "+1"}}, format="json")
    body = json.loads(answer.json()["response_body"])
    assert body == {"id": "m1", "echo": {"auth": "Bearer ********"}}


def journey_reading_the_answer(world, action) -> int:
    journey = journey_create(organization=world.acme, data={
        "name": "Leak", "entry_event": "go", "reentry": "always", "start": "first",
        "steps": [
            {"key": "first", "type": "action", "action": action.pk, "parameters": {"phone": '"+1"'},
             "next": "second", "on_error": "end"},
            {"key": "second", "type": "action", "action": action.pk,
             "parameters": {"phone": "steps.first.response.got"}, "next": "check", "on_error": "end"},
            {"key": "check", "type": "condition",
             "branches": [{"expression": "int(steps.first.response.got) > 0", "next": "end"}],
             "else": "end", "on_error": "end"},
            {"key": "end", "type": "end"},
        ],
    })  # fmt: skip
    return journey.pk


def test_a_marketer_never_reads_a_real_answer_in_a_journey_test(world, echoing):
    action, form = echoing
    form["name"] = lambda t: json.dumps({"got": "plain-" + t.replace("/", "").replace("+", "")})  # no mask form
    form["echo"] = "none"
    journey_id = journey_reading_the_answer(world, action)
    url = f"/api/v1/orgs/acme/journeys/{journey_id}/test/"
    marketer = token_client(world.user("marketer"))
    answer = marketer.post(url, {"dry_run": False}, format="json")
    assert answer.status_code == 200, answer.content
    text = answer.content.decode()
    assert "plain-tok" not in text and "SECRET" not in text
    path = {entry["key"]: entry for entry in answer.json()["path"]}
    assert path["first"]["parameters"] == {"phone": "+1"}  # not from an answer: shown
    assert path["second"]["parameters"] == {"phone": "(from a provider's answer: shown to technical users only)"}
    assert "technical users see why" in path["check"]["error"]
    technical = token_client(world.user("technical")).post(url, {"dry_run": False}, format="json")
    assert "plain-tok" in technical.content.decode()  # they see bodies (the credential itself stays masked)
