"""The invocation runtime in-process: state transitions, the sweeper, database round trips."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from actions.models import Invocation
from actions.runtime import invocation_enqueue, invocation_send, invocations_sweep
from actions.services.actions import action_create
from tests.actions.helpers import SMS_ACTION

VALUES = {"account": "acc1", "phone": "+33600000000", "text": "hello"}


@pytest.fixture
def action(world, httpserver, allow_loopback):
    world.acme.allow_http = True
    world.acme.save()
    httpserver.expect_request("/v1/acc1/messages").respond_with_json({"id": "m1"})
    return action_create(
        organization=world.acme, data={**SMS_ACTION, "url": httpserver.url_for("/v1/{{account}}/messages")}
    )


def test_values_that_do_not_fit_fail_the_invocation_at_once(action):
    invocation = invocation_enqueue(action=action, values={**VALUES, "phone": None})
    assert invocation.status == "failed" and invocation.outcome == "error"
    assert "parameter phone: required" in invocation.error


def test_send_claims_calls_and_records(action, httpserver):
    invocation = invocation_enqueue(action=action, values=VALUES)
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    assert (invocation.status, invocation.outcome, invocation.attempts) == ("succeeded", "succeeded", 1)
    assert invocation.response_status == 200 and '"m1"' in invocation.response_body
    assert invocation.request["body"] == '{"to":"+33600000000","text":"hello"}'
    assert "tok-SECRET" not in str(invocation.request) + invocation.response_body
    invocation_send(invocation_id=invocation.pk)  # a duplicate message finds it done
    assert len(httpserver.log) == 1


def _statements(run) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        run()
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]


def test_database_round_trips_per_invocation(action, settings):
    """The hot path's cost in statements, stated in the README (embedded limiter: the database)."""
    invocation_send(invocation_id=invocation_enqueue(action=action, values=VALUES).pk)  # creates the circuit row
    alone = invocation_enqueue(action=action, values=VALUES)
    statements = _statements(lambda: invocation_send(invocation_id=alone.pk))
    # claim: select + update; load the rows, then their actions once each; circuit read; endpoint
    # limit read; limiter: lock + update; the host's slots taken: lock + update; ownership check;
    # attempts insert; invocations update; circuit update; the slots given back: lock + update.
    # With Redis the limiter's and the slots' go there.
    expected = 10 if settings.REDIS_URL else 16
    assert len(statements) == expected, "\n".join(statements)
    batch = [invocation_enqueue(action=action, values=VALUES) for _ in range(20)]
    statements = _statements(lambda: invocation_send(invocation_id=batch[0].pk))
    assert len(statements) == expected, "\n".join(statements)  # the same for twenty calls
    assert Invocation.objects.filter(status="succeeded").count() == 22


def test_sweeper_frees_a_row_stuck_running_and_wakes_due_rows(action, settings):
    invocation = invocation_enqueue(action=action, values=VALUES)
    past = timezone.now() - timedelta(minutes=5)
    Invocation.objects.filter(pk=invocation.pk).update(status="running", claimed_until=past)
    assert invocations_sweep() == {"stuck": 1, "woken": 1}
    assert Invocation.objects.get(pk=invocation.pk).status == "pending"
    lost = invocation_enqueue(action=action, values=VALUES)
    Invocation.objects.filter(pk=lost.pk).update(next_attempt_at=past)
    result = invocations_sweep()
    assert result["woken"] >= 1
