"""Shared pieces of the engine tests: a loopback SMS receiver, a cart journey, and what workers do."""

import json

import pytest
from werkzeug import Response

from actions.runtime import invocations_send_due
from journeys.engine import events_process, runs_advance
from journeys.models import Journey, JourneyRun
from journeys.services import events_ingest, journey_create, journey_publish
from tests.actions.helpers import make_action

PARAMETERS = {"account": '"a1"', "phone": "profile.phone", "text": '"Hi " + profile.first_name'}


@pytest.fixture
def receiver(world, httpserver, allow_loopback):
    world.acme.allow_http = True
    world.acme.save()
    calls = []

    def handle(request):
        calls.append(json.loads(request.data))
        status = 404 if calls[-1]["to"] == "+404" else 200
        return Response(json.dumps({"id": f"m{len(calls)}"}), status=status, content_type="application/json")

    httpserver.expect_request("/v1/accounts/a1/messages").respond_with_handler(handle)
    return calls


@pytest.fixture
def action(world, httpserver, receiver):
    url = httpserver.url_for("/v1/accounts/{{account}}/messages")
    return make_action(world.acme, url=url, auth={"type": "none"}, max_retries=0)


def live_journey(world, steps, start, reentry="after_exit", entry="cart_abandoned") -> Journey:
    journey = journey_create(
        organization=world.acme,
        data={"name": "Cart", "entry_event": entry, "reentry": reentry, "steps": steps, "start": start},
    )
    return journey_publish(journey=journey)


def send(world, profile="cust-1", phone="+33600000000", total=150.0, event_id=None, name="cart_abandoned"):
    event = {"name": name, "profile_id": profile, "profile": {"phone": phone, "first_name": "Ada"}}
    event["data"] = {"total": total}
    if event_id:
        event["id"] = event_id
    events_ingest(organization=world.acme, events=[event])


def drain(rounds: int = 6) -> None:
    """What workers do, in order, until nothing is left to do now."""
    for _ in range(rounds):
        events_process()
        runs_advance()
        invocations_send_due()


def path(run: JourneyRun) -> list[tuple[str, str, str]]:
    return [(s.step_key, s.status, s.outcome) for s in run.step_runs.order_by("sequence")]


def cart_steps(action_id: int, **sms) -> list[dict]:
    return [
        {"key": "check", "type": "condition",
         "branches": [{"expression": "event.data.total > 100.0", "next": "sms"}], "else": "small"},
        {"key": "sms", "type": "action", "action": action_id, "parameters": PARAMETERS, "next": "sent",
         "on_error": "missing", **sms},
        {"key": "sent", "type": "end"},
        {"key": "missing", "type": "condition",
         "branches": [{"expression": 'steps.sms.status == "http_404"', "next": "not_found"}], "else": "small"},
        {"key": "not_found", "type": "end"},
        {"key": "small", "type": "end"},
    ]  # fmt: skip
