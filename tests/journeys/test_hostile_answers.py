"""Issue 16: a provider's answer is hostile input too. Whatever JSON it sends (nested thousands deep,
numbers past a double's range, lone surrogates, NUL), the run goes on and the other runs of the batch
with it: nothing it sends can stop a worker's write."""

import json

import pytest
from werkzeug import Response

from journeys.models import JourneyRun
from tests.actions.helpers import make_action
from tests.journeys.helpers import PARAMETERS, drain, live_journey, send

ANSWERS = {
    "arrays-100000": "[" * 100_000 + "]" * 100_000,
    "objects-70": '{"a":' * 70 + "1" + "}" * 70,
    "1e400": '{"id": "m1", "n": 1e400}',
    "NaN": '{"id": "m1", "n": NaN}',
    "lone-surrogate": '{"id": "m\\ud800"}',
    "nul": '{"id": "m\\u0000"}',
    "invalid-utf8": b'{"id": "\xff\xfe"}',
}


@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
def test_a_hostile_answer_leaves_the_run_going_on(world, httpserver, allow_loopback, answer):
    world.acme.allow_http = True
    world.acme.save()
    httpserver.expect_request("/v1/accounts/a1/messages").respond_with_handler(
        lambda request: Response(answer, status=200, content_type="application/json")
    )
    action = make_action(world.acme, url=httpserver.url_for("/v1/accounts/{{account}}/messages"), auth={"type": "none"})
    steps = [
        {"key": "sms", "type": "action", "action": action.pk, "parameters": PARAMETERS, "next": "read"},
        {"key": "read", "type": "condition", "on_error": "unreadable",
         "branches": [{"expression": 'steps.sms.response.id == "m1"', "next": "m1"}], "else": "other"},
        {"key": "m1", "type": "end"}, {"key": "other", "type": "end"}, {"key": "unreadable", "type": "end"},
    ]  # fmt: skip
    live_journey(world, steps, "sms")
    for n in range(3):  # three runs in one batch: none is held back by the others' answers
        send(world, profile=f"cust-{n}")
    drain()
    runs = list(JourneyRun.objects.all())
    assert len(runs) == 3 and {run.status for run in runs} == {"completed"}, [r.error for r in runs]
    for run in runs:
        json.dumps(run.context, allow_nan=False)  # storable as it is: finite numbers only
        assert run.current_step in ("m1", "other", "unreadable")
