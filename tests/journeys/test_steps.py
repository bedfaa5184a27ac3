"""The one step interpreter, the one transition table and the test mode's redaction, read directly."""

from datetime import UTC, datetime, timedelta

import pytest

from journeys import steps
from journeys.models import Journey
from journeys.services import journey_test
from tests.journeys.helpers import cart_steps, live_journey

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def scope(**profile) -> dict:
    return {"profile": profile, "event": {"name": "cart_abandoned", "data": {"total": 500.0}}, "steps": {}, "now": NOW}


def test_a_condition_takes_the_first_true_branch_or_else():
    step = {"key": "check", "type": "condition", "else": "small",
            "branches": [{"expression": "event.data.total > 1000.0", "next": "big"},
                         {"expression": "event.data.total > 100.0", "next": "medium"}]}  # fmt: skip
    decision = steps.decide(step, scope(), now=NOW, actions={})
    assert (decision.kind, decision.outcome, decision.next) == (steps.NEXT, "branches[1]", "medium")
    step["branches"] = step["branches"][:1]
    assert steps.decide(step, scope(), now=NOW, actions={}).outcome == "else"


def test_a_wait_waits_in_the_engine_and_is_skipped_in_the_test_mode():
    step = {"key": "pause", "type": "wait", "duration_s": 60, "next": "done"}
    waiting = steps.decide(step, scope(), now=NOW, actions={})
    assert (waiting.kind, waiting.wake_at, waiting.next) == (steps.WAIT, NOW + timedelta(seconds=60), "done")
    skipped = steps.decide(step, scope(), now=NOW, actions={}, skip_waits=True)
    assert (skipped.kind, skipped.outcome, skipped.next) == (steps.NEXT, "skipped", "done")


def test_a_broken_until_follows_on_error_in_both_modes_and_is_seen_by_later_steps():
    step = {"key": "pause", "type": "wait", "until": "profile.renewal", "next": "done", "on_error": "fix"}
    for skip_waits in (False, True):
        seen = scope(renewal="not a date")
        decision = steps.decide(step, seen, now=NOW, actions={}, skip_waits=skip_waits)
        assert (decision.outcome, decision.next, decision.failed) == ("error", "fix", True)
        assert "not a date and time" in decision.error and seen["steps"]["pause"]["status"] == "error"


def test_a_failed_call_goes_to_on_timeout_then_on_error_and_a_success_to_next():
    step = {"key": "sms", "type": "action", "next": "sent", "on_error": "missing", "on_timeout": "later"}
    seen: dict = {}
    assert steps.after_call(step, steps.call_entry("succeeded", {"id": 1}), seen).next == "sent"
    assert seen["sms"] == {"status": "succeeded", "response": {"id": 1}, "error_response": None}
    timed_out = steps.after_call(step, steps.call_entry("timedout", None), seen)
    assert (timed_out.next, timed_out.failed) == ("later", True)
    assert steps.after_call(step, steps.call_entry("http_500", "oops"), seen).next == "missing"
    assert seen["sms"]["error_response"] == "oops"


def test_the_test_mode_refuses_a_nul_value_as_the_engine_does(world, action):
    step = {"key": "sms", "type": "action", "action": action.pk, "parameters": {"text": "profile.text"}}
    decision = steps.decide(step, scope(text="a\u0000b"), now=NOW, actions={action.pk: action})
    assert decision.failed and "NUL" in decision.error


@pytest.mark.parametrize(
    ("status", "buttons"),
    [
        (Journey.Status.DRAFT, {"publish", "close"}),
        (Journey.Status.LIVE, {"pause", "stop", "new-version"}),
        (Journey.Status.PAUSED, {"resume", "stop", "new-version"}),
        (Journey.Status.STOPPED, {"close", "new-version"}),
        (Journey.Status.CLOSED, set()),
    ],
)
def test_the_transition_table_says_what_each_status_allows(status, buttons):
    assert {verb for verb in Journey.ALLOWED_FROM if Journey(status=status).allows(verb)} == buttons


def test_the_test_service_strips_requests_and_bodies_for_those_who_may_not_see_them(world, action, receiver):
    journey = live_journey(world, cart_steps(action.pk), "check")
    data = {"profile": {"phone": "+33611111111", "first_name": "Bo"}, "event": {"data": {"total": 500.0}}}
    hidden = journey_test(journey=journey, dry_run=False, sees_bodies=False, **data)["path"][1]
    assert "request" not in hidden and hidden["response"] == {"status_code": 200}
    shown = journey_test(journey=journey, dry_run=False, sees_bodies=True, **data)["path"][1]
    assert shown["request"]["body"] == '{"to":"+33611111111","text":"Hi Bo"}' and shown["response"]["body"] == {
        "id": "m2"
    }
