"""Edge cases of the runtime and of bad input, each once a bug found in review."""

from datetime import timedelta

import pytest
from django.utils import timezone
from werkzeug import Response

from actions.models import CircuitBreaker, Invocation
from actions.runtime import invocation_enqueue, invocation_send
from actions.runtime.circuit import circuit_admit, circuit_release_trial
from actions.services.actions import action_create, action_test, action_update
from tests.actions.helpers import SMS_ACTION
from tests.conftest import token_client

VALUES = {"account": "acc1", "phone": "+33600000000", "text": "hello"}


@pytest.fixture
def make(world, httpserver, allow_loopback):
    world.acme.allow_http = True
    world.acme.save()

    def make(**overrides):
        data = {**SMS_ACTION, "url": httpserver.url_for("/v1/{{account}}/messages"), **overrides}
        return action_create(organization=world.acme, data=data)

    return make


@pytest.mark.parametrize("retry_after", ["²", "soon", "Mon, 01 Jan 2001 00:00:00 -0000", "99999999999999"])
def test_an_odd_retry_after_header_still_schedules_a_retry(make, httpserver, retry_after):
    httpserver.expect_request("/v1/acc1/messages").respond_with_handler(
        lambda r: Response("busy", status=429, headers={"Retry-After": retry_after})
    )
    invocation = invocation_enqueue(action=make(), values=VALUES)
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    assert (invocation.status, invocation.attempts, invocation.outcome) == ("pending", 1, "http_429")


def test_a_never_sent_invocation_cannot_be_replayed(world, make):
    invocation = invocation_enqueue(action=make(), values={**VALUES, "phone": None})
    response = token_client(world.user("technical")).post(
        "/api/v1/orgs/acme/invocations/replay/", {"invocation": str(invocation.pk)}, format="json"
    )
    assert response.status_code == 409 and "never sent" in response.json()["detail"]


def test_a_call_made_for_a_host_the_action_left_is_not_sent(make, httpserver):
    action = make()
    invocation = invocation_enqueue(action=action, values=VALUES)
    moved = {"url": "https://other.example.com/v1/{{account}}/messages", "auth": {"type": "bearer", "token": "t-2"}}
    action_update(action=action, data=moved)
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    assert invocation.status == "failed" and "another host" in invocation.error
    assert httpserver.log == []


def test_results_are_not_written_over_a_claim_that_was_taken_over(transactional_db, make, httpserver):
    """A worker whose lease ran out must not overwrite what the next holder does."""
    action = make()
    invocation = invocation_enqueue(action=action, values=VALUES)

    def slow_then_stolen(request):
        from django.db import connection

        Invocation.objects.filter(pk=invocation.pk).update(claimed_until=timezone.now() + timedelta(hours=1))
        connection.close()  # this server thread's own connection, so the test database can be dropped
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/v1/acc1/messages").respond_with_handler(slow_then_stolen)
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    assert invocation.status == "running" and invocation.attempt_log.count() == 0


def test_an_unsent_trial_call_leaves_the_circuit_half_open(world):
    now = timezone.now()
    CircuitBreaker.objects.create(
        organization=world.acme, host="api.example.com", state="open", opened_at=now - timedelta(minutes=5)
    )
    assert circuit_admit(organization_id=world.acme.pk, host="api.example.com", now=now, lease_s=30)[0] == "trial"
    circuit_release_trial(organization_id=world.acme.pk, host="api.example.com")
    circuit = CircuitBreaker.objects.get()
    assert circuit.state == "half_open" and circuit.trial_until is None
    assert circuit_admit(organization_id=world.acme.pk, host="api.example.com", now=now, lease_s=30)[0] == "trial"


def test_query_string_secrets_are_masked_as_encoded(make, httpserver):
    httpserver.expect_request("/v1/acc1/messages").respond_with_data("ok")
    action = make(auth={"type": "api_key", "in": "query", "name": "key", "value": "abc+def/ghi=="})
    result = action_test(action=action, values=VALUES)
    assert result.error == "", result.error
    assert httpserver.log[0][0].args["key"] == "abc+def/ghi=="
    assert "abc" not in result.request["url"] and "key=********" in result.request["url"]


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("actions/", {**SMS_ACTION, "parameters": 5}, "parameters"),
        ("actions/", {**SMS_ACTION, "auth": {"type": ["bearer"]}}, "auth"),
        ("actions/import/", {"format": "conduit.action.v1", "name": "x", "url": "https://a.example.com/",
                             "client_certificate": 5}, "client_certificate"),
    ],
)  # fmt: skip
def test_wrong_types_get_400_naming_the_field(world, path, body, field):
    response = token_client(world.user("technical")).post(f"/api/v1/orgs/acme/{path}", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


def test_infer_handles_keys_with_dots(world):
    answer = token_client(world.user("technical")).post(
        "/api/v1/orgs/acme/actions/infer/", {"sample": {"a.b": 1, "c": {"d.e": "x"}}, "parameters": ["a.b", "c.d.e"]},
        format="json",
    )  # fmt: skip
    assert answer.status_code == 200
    assert answer.json()["body"] == {"a.b": "{{a_b}}", "c": {"d.e": "{{d_e}}"}}


def test_infinite_numbers_are_refused_not_crashed_on(world, make):
    action = make(parameters=[*SMS_ACTION["parameters"], {"name": "n", "type": "integer", "required": False}])
    response = token_client(world.user("technical")).post(
        f"/api/v1/orgs/acme/actions/{action.pk}/test/",
        data='{"parameters": {"account": "a", "phone": "1", "text": "t", "n": 1e400}}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "parameters.n: numbers must be finite (this one is out of range)."


def test_a_call_whose_rate_limit_was_taken_too_long_before_it_could_go_is_not_sent(
    make, httpserver, redis_url, settings
):
    """A call counted by the limiter and then held up (here: Redis paused 0.3 s) would reach the
    provider in a later window than it was counted in: it is not sent, and goes again."""
    import redis

    from actions.runtime import ratelimit
    from actions.runtime.thread_calls import send_calls

    settings.REDIS_URL = redis_url
    httpserver.expect_request("/v1/acc1/messages").respond_with_json({"ok": True})
    invocation = invocation_enqueue(action=make(), values=VALUES)
    limits = [ratelimit.Limit(f"late-test:{invocation.pk}", 10, 1)]
    ratelimit.acquire(limits, 0.0)  # the limiter connected and its script loaded beforehand
    redis.Redis.from_url(redis_url).execute_command("CLIENT", "PAUSE", 300, "WRITE")

    [(_, late)] = send_calls([(invocation, limits)])
    assert late is None  # given back by the loop, due again at once
    assert httpserver.log == []
    [(_, sent)] = send_calls([(invocation, limits)])
    assert sent.outcome == "succeeded" and len(httpserver.log) == 1


def test_a_waiting_call_whose_claim_ends_before_its_call_could_is_given_back_not_sent(make, httpserver):
    from actions.runtime.inflight import CallLoop

    httpserver.expect_request("/v1/acc1/messages").respond_with_json({"ok": True})
    invocation = invocation_enqueue(action=make(timeout_ms=2000), values=VALUES)
    loop = CallLoop(invocation.pk)
    loop._claim()
    # The claim holds one second more; the call may take 4 x 2 s (token, call, token, call).
    loop.claims[invocation.pk] = timezone.now() + timedelta(seconds=1)
    Invocation.objects.filter(pk=invocation.pk).update(claimed_until=loop.claims[invocation.pk])
    loop._start_waiting()
    loop._save()
    assert httpserver.log == []
    invocation.refresh_from_db()
    assert (invocation.status, invocation.attempts, invocation.claimed_until) == ("pending", 0, None)
    assert invocation.next_attempt_at <= timezone.now()
