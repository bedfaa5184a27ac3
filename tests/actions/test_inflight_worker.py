"""Many calls in flight per worker, through real Celery workers and a threaded provider on loopback:
calls open together, the per-host cap across workers, a hanging host holding only its own slots,
a fast host that turns slow holding the task for one call, one token request for many calls, no
call sent twice when a batch runs long, and emails."""

import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import standardwebhooks
from aiosmtpd.controller import Controller
from django.db import transaction

from actions.models import EmailSettings, EndpointLimit, Invocation
from actions.runtime import invocation_enqueue
from actions.services.actions import action_create
from tests.actions.helpers import SMS_ACTION
from tests.workers import finished, wait_for

pytestmark = pytest.mark.worker

VALUES = {"account": "acc1", "phone": "+33600000000", "text": "hello"}


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # a worker opens many connections at once
    daemon_threads = True


class Provider:
    """A threaded HTTP server: every request is answered after `delay_s` (per path prefix), and the
    server records each request and the most requests it had open at once."""

    def __init__(self, delay_s: float = 0.0, delays: dict[str, float] | None = None):
        self.delay_s, self.delays = delay_s, delays or {}
        self.lock = threading.Lock()
        self.open = self.most_open = 0
        self.requests: list[tuple[float, str, dict[str, str], bytes]] = []
        self.answer = lambda path, headers: (200, {"ok": True})
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with provider.lock:
                    provider.open += 1
                    provider.most_open = max(provider.most_open, provider.open)
                    provider.requests.append((time.monotonic(), self.path, dict(self.headers), body))
                try:
                    prefix = next((p for p in provider.delays if self.path.startswith(p)), None)
                    time.sleep(provider.delays[prefix] if prefix else provider.delay_s)
                    status, data = provider.answer(self.path, self.headers)
                    payload = json.dumps(data).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller gave up (its timeout)
                finally:
                    with provider.lock:
                        provider.open -= 1

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self, prefix: str) -> list:
        with self.lock:
            return [r for r in self.requests if r[1].startswith(prefix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider():
    made: list[Provider] = []

    def make(**kwargs) -> Provider:
        made.append(Provider(**kwargs))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
def acme(world):
    world.acme.allow_http = True
    world.acme.save()
    return world.acme


def sms(organization, url: str, **overrides):
    name = f"SMS {organization.actions.count() + 1}"
    return action_create(organization=organization, data={**SMS_ACTION, "name": name, "url": url, **overrides})


def enqueue(action, n: int) -> list[Invocation]:
    with transaction.atomic():
        return [invocation_enqueue(action=action, values=VALUES) for _ in range(n)]


def ended(invocations, timeout: float = 60.0) -> list[Invocation]:
    return finished(*invocations, timeout=timeout)


def token_api(provider, delay_s: float, accepted) -> tuple["Provider", dict]:
    """A provider with a token endpoint issuing tok-1, tok-2, ...; `accepted(issued)` is the token
    its API takes. Returns it and the action's OAuth2 auth."""
    api = provider(delays={"/oauth/token": delay_s, "/v1/": delay_s})
    issued: list[str] = []

    def answer(path, headers):
        if path.startswith("/oauth/token"):
            issued.append(f"tok-{len(issued) + 1}")
            return 200, {"access_token": issued[-1], "expires_in": 3600}
        return (200, {"ok": True}) if headers.get("Authorization") == f"Bearer {accepted(issued)}" else (401, {})

    api.answer = answer
    auth = {
        "type": "oauth2_client_credentials", "token_url": api.url("/oauth/token"),
        "client_id": "conduit", "client_secret": "s3cret-value",
    }  # fmt: skip
    return api, auth


@pytest.mark.parametrize("on_loop", ["true", "false"], ids=["event loop", "threads"])
def test_one_worker_process_keeps_many_calls_open_at_once(workers, acme, provider, on_loop):
    slow = provider(delay_s=0.5)
    action = sms(acme, slow.url("/v1/{{account}}/messages"))
    invocations = enqueue(action, 40)
    workers.start(env={"CONDUIT_CALLS_ON_LOOP": on_loop})  # one process, concurrency 1: once one call at a time
    rows = ended(invocations)
    assert {r.status for r in rows} == {"succeeded"}
    assert slow.most_open >= 20, f"at most {slow.most_open} calls were open at once"
    keys = Counter(headers["Idempotency-Key"] for _, _, headers, _ in slow.requests)
    assert len(keys) == 40 and set(keys.values()) == {1}  # one call per invocation, each with its key
    webhook = standardwebhooks.Webhook(action.signing_secret)
    for _, _, headers, body in slow.requests:  # each signature covers the bytes of its own call
        assert headers["webhook-id"] == headers["Idempotency-Key"]
        assert webhook.verify(body, headers) == {"to": "+33600000000", "text": "hello"}
        assert headers["Authorization"] == "Bearer tok-SECRET-123456"


def test_max_concurrent_caps_the_calls_open_to_a_host_across_two_workers(workers, acme, provider):
    slow = provider(delay_s=0.3)
    EndpointLimit.objects.create(organization=acme, host="127.0.0.1", max_concurrent=3)
    invocations = enqueue(sms(acme, slow.url("/v1/{{account}}/messages")), 24)
    workers.start()
    workers.start(beat=False)
    rows = ended(invocations)
    assert {r.status for r in rows} == {"succeeded"}  # calls over the cap waited; none was dropped
    assert slow.most_open <= 3
    assert len(slow.requests) == 24


def test_calls_under_a_rate_limit_go_out_several_at_once_and_never_past_the_limit(workers, acme, provider):
    slow = provider(delay_s=0.4)
    action = sms(acme, slow.url("/v1/{{account}}/messages"), rate_limit_calls=10, rate_limit_period_s=1)
    invocations = enqueue(action, 30)
    workers.start()
    workers.start(beat=False)
    rows = ended(invocations)
    assert {r.status for r in rows} == {"succeeded"}
    assert len(slow.requests) == 30
    arrivals = sorted(at for at, _, _, _ in slow.requests)
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest <= 10, f"{busiest} calls reached the provider within a second for a limit of 10"
    assert slow.most_open >= 3, f"at most {slow.most_open} calls were open at once: one at a time"


def test_a_hanging_host_holds_only_its_own_slots(workers, acme, provider, settings):
    hanging, healthy = provider(delay_s=30), provider(delay_s=0.05)
    stuck = enqueue(sms(acme, hanging.url("/v1/{{account}}/messages"), timeout_ms=8000, max_retries=0), 60)
    workers.start()
    wait_for(lambda: len(hanging.requests) >= 20, message="the hanging host's calls to be open")
    flowing = enqueue(sms(acme, healthy.url("/v1/{{account}}/messages", host="localhost")), 30)
    rows = ended(flowing, timeout=30)
    assert {r.status for r in rows} == {"succeeded"}
    # The healthy host's calls all ended while the hanging host's were still open.
    early = Invocation.objects.filter(pk__in=[i.pk for i in stuck], status__in=Invocation.FINAL)
    assert not early.exists(), [(i.outcome, i.error, i.attempts) for i in early[:3]]
    assert {r.outcome for r in ended(stuck)} == {"timedout"}


def test_many_calls_needing_a_token_cause_one_token_request(workers, acme, provider):
    api, auth = token_api(provider, 0.3, lambda issued: issued[-1])
    invocations = enqueue(sms(acme, api.url("/v1/{{account}}/messages"), auth=auth), 30)
    workers.start()
    rows = ended(invocations)
    assert {r.status for r in rows} == {"succeeded"}
    assert len(api.paths("/oauth/token")) == 1
    assert api.most_open >= 10  # the calls waited for the token together, then went out together


def test_a_token_refused_by_the_provider_is_fetched_again_once_for_all_the_calls(workers, acme, provider):
    # The provider revoked the first token early: it accepts only the second one.
    api, auth = token_api(provider, 0.3, lambda issued: "tok-2")
    invocations = enqueue(sms(acme, api.url("/v1/{{account}}/messages"), auth=auth), 20)
    workers.start()
    rows = ended(invocations)
    assert {r.status for r in rows} == {"succeeded"}
    assert len(api.paths("/oauth/token")) == 2


def test_a_batch_that_runs_long_gives_back_what_it_has_not_sent_and_nothing_is_sent_twice(workers, acme, provider):
    # Two calls open at once and 0.4 s each: 40 calls take 8 s, far past the workers' 1 s batch budget.
    slow = provider(delay_s=0.4)
    EndpointLimit.objects.create(organization=acme, host="127.0.0.1", max_concurrent=2)
    invocations = enqueue(sms(acme, slow.url("/v1/{{account}}/messages")), 40)
    workers.start()
    workers.start(beat=False)
    rows = ended(invocations, timeout=90)
    assert {r.status for r in rows} == {"succeeded"} and {r.attempts for r in rows} == {1}
    keys = Counter(headers["Idempotency-Key"] for _, _, headers, _ in slow.requests)
    assert len(keys) == 40 and set(keys.values()) == {1}
    assert slow.most_open <= 2


class SlowSMTP:
    """Accepts every message after `delay_s`, counting the messages being received at once."""

    def __init__(self, delay_s: float):
        self.delay_s, self.lock = delay_s, threading.Lock()
        self.messages: list[bytes] = []
        self.receiving = self.most_receiving = 0

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        with self.lock:
            self.receiving += 1
            self.most_receiving = max(self.most_receiving, self.receiving)
        await asyncio.sleep(self.delay_s)
        with self.lock:
            self.receiving -= 1
            self.messages.append(envelope.content)
        return "250 OK"


def test_a_slow_smtp_server_holds_back_no_http_call_and_gets_a_few_connections(workers, acme, provider):
    handler = SlowSMTP(delay_s=0.5)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        EmailSettings.objects.create(
            organization=acme, host="127.0.0.1", port=port,
            security=EmailSettings.Security.NONE, default_from="news@acme.test",
        )  # fmt: skip
        email = action_create(organization=acme, data={
            "name": "Welcome", "kind": "email", "status": "active",
            "email": {"to": "{{account}}@example.com", "subject": "Hello", "text": "{{text}}"},
            "parameters": SMS_ACTION["parameters"],
        })  # fmt: skip
        emails = enqueue(email, 16)
        fast = provider(delay_s=0.05)
        calls = enqueue(sms(acme, fast.url("/v1/{{account}}/messages")), 20)
        workers.start()
        assert {r.status for r in ended(calls)} == {"succeeded"}
        assert len(handler.messages) < 16  # the HTTP calls were done while emails were still going out
        assert {r.status for r in ended(emails)} == {"succeeded"}
        assert 1 < handler.most_receiving <= 4  # several connections at once, never more than the bound
    finally:
        controller.stop()


def test_a_fast_host_that_turns_slow_holds_the_task_for_one_call_then_gets_its_calls_at_once(workers, acme, provider):
    host = provider(delay_s=0.0)
    action = sms(acme, host.url("/v1/{{account}}/messages"))
    workers.start()
    for _ in range(6):  # answered at once, one by one: the worker now sends this host's calls from its task's thread
        ended(enqueue(action, 1))
    host.delay_s, sent_before = 0.4, len(host.requests)
    rows = ended(enqueue(action, 48))
    assert {r.status for r in rows} == {"succeeded"}
    slow = host.requests[sent_before:]
    keys = Counter(headers["Idempotency-Key"] for _, _, headers, _ in slow)
    assert len(keys) == 48 and set(keys.values()) == {1}
    arrivals = sorted(at for at, _, _, _ in slow)
    alone = sum(1 for earlier, later in zip(arrivals, arrivals[1:], strict=False) if later - earlier > 0.3)
    # One call found the host slow; the others went out together, not one more per group of calls.
    assert alone <= 1, f"{alone} calls were each waited for before the next went: {arrivals[:6]}"
