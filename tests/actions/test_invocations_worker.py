"""The invocation runtime through real Celery worker processes and a real receiver on loopback."""

import json
import threading
import time

import pytest
import standardwebhooks
from django.db import transaction
from werkzeug import Request, Response

from actions.models import EndpointLimit, Invocation
from actions.runtime import invocation_enqueue
from tests.actions.helpers import SMS_ACTION
from tests.workers import finished, wait_for

pytestmark = pytest.mark.worker

VALUES = {"account": "acc1", "phone": "+33600000000", "text": "hello"}


class Receiver:
    """Answers from a script of (status, headers) per call, records every request with its time."""

    def __init__(self, httpserver, script=None, delay_s: float = 0.0):
        self.script = list(script or [])
        self.delay_s = delay_s
        self.calls: list[tuple[float, Request]] = []
        self.lock = threading.Lock()
        httpserver.expect_request("/v1/acc1/messages").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        with self.lock:
            self.calls.append((time.monotonic(), request))
            status, headers = self.script.pop(0) if self.script else (200, {})
        if self.delay_s:
            time.sleep(self.delay_s)
        return Response(
            json.dumps({"ok": status == 200}), status=status, headers=headers, content_type="application/json"
        )

    def keys(self) -> set[str]:
        return {r.headers.get("Idempotency-Key") for _, r in self.calls}


@pytest.fixture
def action_factory(world, httpserver):
    world.acme.allow_http = True
    world.acme.save()

    def make(**overrides):
        from actions.services.actions import action_create

        data = {**SMS_ACTION, "url": httpserver.url_for("/v1/{{account}}/messages"), **overrides}
        return action_create(organization=world.acme, data=data)

    return make


def enqueue(action, n=1, values=VALUES) -> list[Invocation]:
    with transaction.atomic():
        return [invocation_enqueue(action=action, values=values) for _ in range(n)]


def test_500_500_200_succeeds_on_the_third_attempt_with_one_key(workers, action_factory, httpserver):
    receiver = Receiver(httpserver, [(500, {}), (500, {}), (200, {})])
    workers.start()
    [invocation] = finished(*enqueue(action_factory()))
    assert invocation.status == "succeeded" and invocation.outcome == "succeeded"
    assert invocation.attempts == 3
    assert receiver.keys() == {str(invocation.pk)}
    assert [a.outcome for a in invocation.attempt_log.all()] == ["http_500", "http_500", "succeeded"]


def test_headers_carry_idempotency_key_user_agent_and_a_verifiable_signature(workers, action_factory, httpserver):
    receiver = Receiver(httpserver)
    action = action_factory()
    workers.start()
    [invocation] = finished(*enqueue(action))
    _, request = receiver.calls[0]
    assert request.headers["Idempotency-Key"] == str(invocation.pk)
    assert request.headers["User-Agent"].startswith("Conduit/")
    assert request.headers["webhook-id"] == str(invocation.pk)
    payload = standardwebhooks.Webhook(action.signing_secret).verify(request.get_data(), dict(request.headers))
    assert payload == {"to": "+33600000000", "text": "hello"}


def test_retry_after_is_honoured(workers, action_factory, httpserver):
    receiver = Receiver(httpserver, [(429, {"Retry-After": "2"}), (200, {})])
    workers.start()
    finished(*enqueue(action_factory()))
    (first, _), (second, _) = receiver.calls
    assert second - first >= 2.0


def test_404_fails_at_once_timeout_times_out_refused_connection_is_retried(workers, action_factory, httpserver):
    Receiver(httpserver, [(404, {})])
    not_found = action_factory(name="Not found")
    slow_server_action = action_factory(name="Slow", timeout_ms=300, max_retries=0, url=httpserver.url_for("/slow"))
    httpserver.expect_request("/slow").respond_with_handler(lambda r: (time.sleep(1), Response("late"))[1])
    closed = action_factory(name="Closed", max_retries=2, url="http://127.0.0.1:9/x")
    workers.start()
    a, b, c = finished(*enqueue(not_found), *enqueue(slow_server_action), *enqueue(closed))
    by_action = {i.action_id: i for i in (a, b, c)}
    assert (by_action[not_found.pk].outcome, by_action[not_found.pk].attempts) == ("http_404", 1)
    assert by_action[slow_server_action.pk].outcome == "timedout"
    assert (by_action[closed.pk].outcome, by_action[closed.pk].attempts) == ("error", 3)
    assert "Connection refused" in by_action[closed.pk].error


def test_action_limit_with_delay_spreads_calls(workers, action_factory, httpserver):
    receiver = Receiver(httpserver)
    workers.start(concurrency=2)
    finished(*enqueue(action_factory(rate_limit_calls=5, rate_limit_period_s=1), n=10))
    times = sorted(t for t, _ in receiver.calls)
    assert len(times) == 10
    assert times[-1] - times[0] >= 1.0
    assert all(times[i + 5] - times[i] >= 1.0 for i in range(5))  # never 6 calls within one second


def test_action_limit_with_reject_ends_the_rest_rate_limited(workers, action_factory, httpserver):
    Receiver(httpserver)
    workers.start(concurrency=2)
    action = action_factory(rate_limit_calls=5, rate_limit_period_s=60, on_rate_limit="reject")
    outcomes = sorted(i.status for i in finished(*enqueue(action, n=10)))
    assert outcomes == ["rate_limited"] * 5 + ["succeeded"] * 5


def test_host_limit_holds_for_two_actions_and_two_workers(workers, action_factory, httpserver, world):
    receiver = Receiver(httpserver)
    EndpointLimit.objects.create(organization=world.acme, host="localhost", calls=4, period_s=1)
    first, second = action_factory(name="A"), action_factory(name="B")
    workers.start()
    workers.start(beat=False)
    finished(*enqueue(first, n=6), *enqueue(second, n=6))
    times = sorted(t for t, _ in receiver.calls)
    assert len(times) == 12
    assert all(times[i + 4] - times[i] >= 1.0 for i in range(len(times) - 4))


def test_worker_killed_mid_call_is_finished_by_the_sweeper_with_the_same_key(workers, action_factory, httpserver):
    receiver = Receiver(httpserver)
    receiver.delay_s = 3.0  # long enough to kill the worker while the call is in flight
    action = action_factory(timeout_ms=2000)
    victim = workers.start(beat=False)
    [invocation] = enqueue(action)
    wait_for(lambda: receiver.calls, message="the call to start")
    workers.kill(victim)
    receiver.delay_s = 0.0
    assert Invocation.objects.get(pk=invocation.pk).status == "running"
    workers.start()  # a new worker with the sweeper: the lease (1 s + 4 x 2 s + 1 s) expires, then it retries
    [done] = finished(invocation, timeout=60)
    assert done.status == "succeeded"
    assert receiver.keys() == {str(invocation.pk)}
    assert not Invocation.objects.filter(status="running").exists()


def test_invocation_enqueued_while_the_broker_is_down_is_sent_later(workers, action_factory, httpserver, settings):
    import shutil
    from pathlib import Path

    receiver = Receiver(httpserver)
    folder = Path(settings.CELERY_BROKER_FOLDER)
    shutil.rmtree(folder)
    folder.write_text("the broker is down")  # publishing into it now fails
    try:
        [invocation] = enqueue(action_factory())
    finally:
        folder.unlink()
        folder.mkdir()
    assert Invocation.objects.get(pk=invocation.pk).status == "pending"
    workers.start()
    [done] = finished(invocation)
    assert done.status == "succeeded" and len(receiver.calls) == 1


def test_circuit_opens_on_a_failing_host_and_closes_after_recovery(workers, action_factory, httpserver, world):
    from actions.models import CircuitBreaker

    receiver = Receiver(httpserver, [(500, {})] * 4)
    action = action_factory(max_retries=0)
    workers.start()
    finished(*enqueue(action, n=4))
    circuit = CircuitBreaker.objects.get(organization=world.acme, host="localhost")
    assert circuit.state == "open"
    held = enqueue(action)[0]
    time.sleep(0.5)
    assert Invocation.objects.get(pk=held.pk).status == "pending"  # held during the cool-down
    [done] = finished(held)
    assert done.status == "succeeded"
    assert CircuitBreaker.objects.get(pk=circuit.pk).state == "closed"
    assert len(receiver.calls) == 5


def test_replay_sends_the_same_key_and_links_to_the_original(workers, action_factory, httpserver):
    from actions.services.replays import invocation_replay

    receiver = Receiver(httpserver, [(400, {}), (200, {})])
    workers.start()
    [original] = finished(*enqueue(action_factory()))
    assert original.outcome == "http_400"
    with transaction.atomic():
        replay = invocation_replay(invocation=original)
    [done] = finished(replay)
    assert done.status == "succeeded" and done.replay_of_id == original.pk
    assert [r.headers["Idempotency-Key"] for _, r in receiver.calls] == [str(original.pk)] * 2
    assert json.loads(receiver.calls[0][1].get_data()) == json.loads(receiver.calls[1][1].get_data())


def test_an_oauth2_token_fetched_by_one_worker_process_is_used_by_another(workers, action_factory, httpserver):
    token_requests = []

    def token(request):
        token_requests.append(request)
        return Response(
            json.dumps({"access_token": "shared-token", "expires_in": 3600}), content_type="application/json"
        )

    httpserver.expect_request("/oauth/token").respond_with_handler(token)
    receiver = Receiver(httpserver)
    action = action_factory(
        auth={"type": "oauth2_client_credentials", "token_url": httpserver.url_for("/oauth/token"),
              "client_id": "c", "client_secret": "s"},
    )  # fmt: skip
    first = workers.start(beat=False)
    finished(*enqueue(action))
    workers.kill(first)
    workers.start(beat=False)  # another process: only the shared cache can give it the token
    finished(*enqueue(action))
    assert len(token_requests) == 1
    assert [r.headers["Authorization"] for _, r in receiver.calls] == ["Bearer shared-token"] * 2
