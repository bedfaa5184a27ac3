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
from tests.journeys.helpers import PARAMETERS, live_journey, send
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


def test_a_worker_whose_calls_are_open_still_starts_the_runs_of_new_events(workers, world):
    """One process, concurrency 1: while its call to a slow provider is open (2 s), a new event's
    run reaches its own call; it used to wait for the call loop to end."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    arrivals: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            to = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["to"]
            arrivals[to] = time.monotonic()
            time.sleep(2.0 if to == "+slow" else 0.0)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        world.acme.allow_http = True
        world.acme.save()
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/accounts/{{{{account}}}}/messages"
        sms = make_action(world.acme, url=url, auth={"type": "none"}, max_retries=0, timeout_ms=5000)
        steps = [
            {"key": "sms", "type": "action", "action": sms.pk, "parameters": PARAMETERS, "next": "done"},
            {"key": "done", "type": "end"},
        ]
        live_journey(world, steps, "sms", reentry="always")
        workers.start(beat=False)
        send(world, profile="slow", phone="+slow")
        wait_for(lambda: "+slow" in arrivals, message="the slow call to go")
        send(world, profile="fast", phone="+33600000000")
        wait_for(lambda: "+33600000000" in arrivals, message="the second run's call to go")
        assert arrivals["+33600000000"] - arrivals["+slow"] < 1.5  # the slow call was still open
        assert {r.status for r in ended(2)} == {"completed"}
    finally:
        server.shutdown()
        server.server_close()
