"""Journeys through real Celery workers: an event sent with an API key reaches a real receiver."""

import json
import threading
import time

import pytest
from werkzeug import Response

from journeys.models import JourneyRun
from tenants.services import api_key_create
from tests.actions.helpers import make_action
from tests.conftest import key_client
from tests.journeys.helpers import PARAMETERS, live_journey
from tests.workers import wait_for

pytestmark = pytest.mark.worker


@pytest.fixture
def slow_receiver(world, httpserver):
    """Answers 404 to +404, too late to +slow, 200 to everyone else; records what it got."""
    world.acme.allow_http = True
    world.acme.save()
    calls, lock = [], threading.Lock()

    def handle(request):
        body = json.loads(request.data)
        with lock:
            calls.append((body, request.headers.get("Idempotency-Key")))
        if body["to"] == "+slow":
            time.sleep(1.0)
        status = 404 if body["to"] == "+404" else 200
        return Response(json.dumps({"ok": status == 200}), status=status, content_type="application/json")

    httpserver.expect_request("/v1/accounts/a1/messages").respond_with_handler(handle)
    return calls


@pytest.fixture
def sms(world, httpserver, slow_receiver):
    url = httpserver.url_for("/v1/accounts/{{account}}/messages")
    return make_action(world.acme, url=url, auth={"type": "none"}, max_retries=0, timeout_ms=300)


def events_client(world):
    return key_client(api_key_create(organization=world.acme, name="shop", scopes=["events:write"])[1])


def ended(count: int, timeout: float = 40.0) -> list[JourneyRun]:
    def done():
        runs = list(JourneyRun.objects.select_related("profile").exclude(status__in=JourneyRun.OPEN))
        return runs if len(runs) >= count else None

    return wait_for(done, timeout=timeout, message=f"{count} runs to end")


def keys_of(run: JourneyRun) -> list[str]:
    return [s.step_key for s in run.step_runs.order_by("sequence")]


def test_events_sent_with_an_api_key_move_profiles_through_every_step_type(workers, world, sms, slow_receiver):
    steps = [
        {"key": "check", "type": "condition",
         "branches": [{"expression": "event.data.total > 100.0", "next": "pause"}], "else": "small"},
        {"key": "pause", "type": "wait", "duration_s": 1, "next": "sms"},
        {"key": "sms", "type": "action", "action": sms.pk, "parameters": PARAMETERS, "next": "sent",
         "on_error": "why", "on_timeout": "late"},
        {"key": "why", "type": "condition",
         "branches": [{"expression": 'steps.sms.status == "http_404"', "next": "not_found"}], "else": "small"},
        {"key": "sent", "type": "end"}, {"key": "late", "type": "end"}, {"key": "not_found", "type": "end"},
        {"key": "small", "type": "end"},
    ]  # fmt: skip
    live_journey(world, steps, "check")
    workers.start(concurrency=2)
    client = events_client(world)
    batch = [
        {"id": f"e-{who}", "name": "cart_abandoned", "profile_id": who,
         "profile": {"phone": phone, "first_name": who}, "data": {"total": total}}
        for who, phone, total in [("ok", "+33600000000", 150.0), ("gone", "+404", 150.0),
                                  ("few", "+33600000001", 5.0), ("slow", "+slow", 150.0)]
    ]  # fmt: skip
    response = client.post("/api/v1/orgs/acme/events/", batch[:3], format="json")
    assert response.status_code == 202, response.content
    ended(3)  # the receiver answers one call at a time: the slow one comes alone, after the others
    assert client.post("/api/v1/orgs/acme/events/", batch[3], format="json").status_code == 202
    runs = {r.profile.external_id: r for r in ended(4)}
    assert keys_of(runs["ok"]) == ["check", "pause", "sms", "sent"] and runs["ok"].status == "completed"
    assert keys_of(runs["gone"]) == ["check", "pause", "sms", "why", "not_found"]
    assert keys_of(runs["slow"]) == ["check", "pause", "sms", "late"]
    assert keys_of(runs["few"]) == ["check", "small"]
    assert runs["slow"].step_runs.get(step_key="sms").outcome == "timedout"
    waited = runs["ok"].step_runs.get(step_key="pause")
    assert (waited.finished_at - waited.entered_at).total_seconds() >= 1.0
    assert sorted(body["to"] for body, _ in slow_receiver) == ["+33600000000", "+404", "+slow"]
    assert {body["text"] for body, _ in slow_receiver} == {"Hi ok", "Hi gone", "Hi slow"}


def test_a_wait_resumes_after_the_worker_is_killed_and_another_starts(workers, world, sms, slow_receiver):
    steps = [
        {"key": "pause", "type": "wait", "duration_s": 2, "next": "sms"},
        {"key": "sms", "type": "action", "action": sms.pk, "parameters": PARAMETERS, "next": "done"},
        {"key": "done", "type": "end"},
    ]
    live_journey(world, steps, "pause")
    first = workers.start()
    event = {"name": "cart_abandoned", "profile_id": "p1", "profile": {"phone": "+33600000000", "first_name": "Al"}}
    assert events_client(world).post("/api/v1/orgs/acme/events/", event, format="json").status_code == 202
    wait_for(lambda: JourneyRun.objects.filter(status="waiting").exists(), message="the run to wait")
    workers.kill(first)  # the countdown message dies with it; the row does not
    time.sleep(2.5)
    assert JourneyRun.objects.get().status == "waiting" and slow_receiver == []
    workers.start()
    [run] = ended(1)
    assert run.status == "completed" and keys_of(run) == ["pause", "sms", "done"]
    assert len(slow_receiver) == 1
