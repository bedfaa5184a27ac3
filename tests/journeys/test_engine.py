"""The engine in-process: events start runs, steps run, calls end, runs go on (a real receiver on loopback).

The same functions the workers run are called here one after another, so each step of a run can be
looked at; tests/journeys/test_engine_worker.py runs them through real Celery workers.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from actions.models import Action, Invocation
from journeys.engine import events_process, journeys_sweep, runs_advance
from journeys.models import Event, Journey, JourneyRun, StepRun
from journeys.services import events_ingest, journey_pause, journey_resume, journey_stop
from tests.actions.helpers import make_action
from tests.journeys.helpers import PARAMETERS, cart_steps, drain, live_journey, path, send


def test_an_event_moves_a_profile_through_condition_action_and_end(world, action, receiver):
    live_journey(world, cart_steps(action.pk), "check")
    send(world)
    drain()
    run = JourneyRun.objects.get()
    assert run.status == "completed" and run.ended_at is not None
    assert path(run) == [("check", "succeeded", "branches[0]"), ("sms", "succeeded", "succeeded"),
                         ("sent", "succeeded", "")]  # fmt: skip
    assert receiver == [{"to": "+33600000000", "text": "Hi Ada"}]
    sms = run.step_runs.get(step_key="sms")
    assert sms.invocation.origin == "journey" and sms.invocation.origin_ref == str(sms.pk)
    assert run.context["sms"] == {"status": "succeeded", "response": {"id": "m1"}, "error_response": None}
    assert Event.objects.get().processed_at is not None


def test_a_404_is_branched_on_with_steps_status(world, action, receiver):
    live_journey(world, cart_steps(action.pk), "check")
    send(world, phone="+404")
    drain()
    run = JourneyRun.objects.get()
    assert [key for key, _, _ in path(run)] == ["check", "sms", "missing", "not_found"]
    assert run.step_runs.get(step_key="sms").outcome == "http_404"
    assert run.context["sms"]["error_response"] == {"id": "m1"} and run.status == "completed"


def test_a_failed_call_with_no_branch_ends_the_run_as_failed(world, action, receiver):
    steps = cart_steps(action.pk)
    del steps[1]["on_error"]
    steps = [s for s in steps if s["key"] not in ("missing", "not_found")]
    live_journey(world, steps, "check")
    send(world, phone="+404")
    drain()
    run = JourneyRun.objects.get()
    assert run.status == "failed" and "'sms' failed" in run.error


def test_a_runtime_expression_error_is_recorded_and_follows_on_error(world, action, receiver):
    steps = cart_steps(action.pk)
    steps[1]["parameters"] = {**PARAMETERS, "phone": "profile.no_such_field"}
    live_journey(world, steps, "check")
    send(world)
    drain()
    run = JourneyRun.objects.get()
    sms = run.step_runs.get(step_key="sms")
    assert sms.status == "failed" and "no_such_field" in sms.error and sms.invocation is None
    assert [key for key, _, _ in path(run)] == ["check", "sms", "missing", "small"]
    assert receiver == []


def test_a_wait_is_a_row_resumed_when_due(world, action, receiver):
    steps = [{"key": "pause", "type": "wait", "duration_s": 3600, "next": "sms"}, *cart_steps(action.pk)[1:]]
    live_journey(world, steps, "pause")
    send(world)
    drain()
    run = JourneyRun.objects.get()
    assert run.status == "waiting" and path(run) == [("pause", "waiting", "")]
    assert run.due_at > timezone.now() + timedelta(minutes=59) and receiver == []
    JourneyRun.objects.update(due_at=timezone.now())  # the hour has passed
    assert journeys_sweep()["runs"] == 1
    drain()
    run.refresh_from_db()
    assert run.status == "completed" and [s for s, _, _ in path(run)] == ["pause", "sms", "sent"]
    assert run.step_runs.get(step_key="pause").status == "succeeded"


def test_until_waits_for_the_time_an_expression_gives(world, action, receiver):
    steps = [{"key": "pause", "type": "wait", "until": 'now + duration("2h")', "next": "done"},
             {"key": "done", "type": "end"}]  # fmt: skip
    live_journey(world, steps, "pause")
    send(world)
    drain()
    run = JourneyRun.objects.get()
    assert run.status == "waiting" and run.due_at > timezone.now() + timedelta(minutes=119)


def test_pause_holds_runs_before_their_next_step_resume_continues_stop_ends(world, action, receiver):
    journey = live_journey(world, cart_steps(action.pk), "check")
    send(world)
    events_process()
    journey_pause(journey=journey)
    send(world, profile="cust-2")
    drain()
    run = JourneyRun.objects.get()  # a paused journey admits no new run
    assert run.status == "active" and path(run) == [] and receiver == []
    journey_resume(journey=journey)
    drain()
    run.refresh_from_db()
    assert run.status == "completed" and len(receiver) == 1


def test_stop_ends_open_runs_and_cancels_their_unsent_calls(world, action, receiver):
    journey = live_journey(world, cart_steps(action.pk), "check")
    send(world)
    events_process()
    runs_advance()  # the call is enqueued, not sent
    journey_stop(journey=journey)
    drain()
    run = JourneyRun.objects.get()
    assert run.status == "stopped" and receiver == []
    assert run.step_runs.get(step_key="sms").status == "stopped"
    invocation = Invocation.objects.get()
    assert invocation.status == "failed" and "stopped" in invocation.error
    send(world, profile="cust-2")
    drain()
    assert JourneyRun.objects.count() == 1  # a stopped journey starts no run


@pytest.mark.parametrize(
    ("reentry", "runs_while_open", "runs_after_exit"),
    [("never", 1, 1), ("after_exit", 1, 2), ("always", 2, 3)],
)
def test_reentry_rules(world, action, receiver, reentry, runs_while_open, runs_after_exit):
    steps = [{"key": "pause", "type": "wait", "duration_s": 3600, "next": "done"}, {"key": "done", "type": "end"}]
    live_journey(world, steps, "pause", reentry=reentry)
    send(world)
    send(world)
    drain()
    assert JourneyRun.objects.count() == runs_while_open
    JourneyRun.objects.update(due_at=timezone.now())
    drain()
    assert not JourneyRun.objects.filter(status__in=JourneyRun.OPEN).exists()
    send(world)
    drain()
    assert JourneyRun.objects.count() == runs_after_exit


def test_the_same_event_id_twice_starts_one_run(world, action, receiver):
    live_journey(world, cart_steps(action.pk), "check", reentry="always")
    send(world, event_id="e-1")
    send(world, event_id="e-1")
    drain()
    assert JourneyRun.objects.count() == 1 and len(receiver) == 1


def test_a_run_claimed_by_a_worker_that_died_is_taken_over_and_its_step_runs_once(world, action, receiver):
    live_journey(world, cart_steps(action.pk), "check")
    send(world)
    events_process()
    JourneyRun.objects.update(claimed_until=timezone.now() + timedelta(minutes=1))  # a worker holds it
    assert runs_advance() == 0
    JourneyRun.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))  # and died
    drain()
    run = JourneyRun.objects.get()
    assert run.status == "completed" and StepRun.objects.filter(step_key="sms").count() == 1
    assert len(receiver) == 1


def test_only_the_matching_organizations_journeys_start(world, action, receiver):
    live_journey(world, cart_steps(action.pk), "check")
    events_ingest(organization=world.globex, events=[{"name": "cart_abandoned", "profile_id": "cust-1"}])
    drain()
    assert JourneyRun.objects.count() == 0


# --- what a review found ------------------------------------------------------------


def test_a_value_json_cannot_hold_fails_its_step_and_the_batch_goes_on(world, httpserver, allow_loopback, receiver):
    """A CEL duration inside an object parameter cannot become JSON: that step fails, not the batch."""
    from tests.actions.helpers import SMS_ACTION

    parameters = [*SMS_ACTION["parameters"], {"name": "meta", "type": "object", "required": False}]
    action = make_action(world.acme, url=httpserver.url_for("/v1/accounts/{{account}}/messages"),
                         auth={"type": "none"}, max_retries=0, parameters=parameters,
                         body={"to": "{{phone}}", "text": "{{text}}", "meta": "{{meta}}"})  # fmt: skip
    steps = cart_steps(action.pk)
    steps[1]["parameters"] = {**PARAMETERS, "meta": 'profile.first_name == "Bad" ? {"d": duration("1h")} : {}'}
    live_journey(world, steps, "check")
    send(world, profile="bad", phone="+1")
    events_ingest(organization=world.acme, events=[{"name": "cart_abandoned", "profile_id": "bad2",
                  "profile": {"phone": "+9", "first_name": "Bad"}, "data": {"total": 500.0}}])  # fmt: skip
    drain()
    runs = {r.profile.external_id: r for r in JourneyRun.objects.select_related("profile")}
    failed = runs["bad2"].step_runs.get(step_key="sms")
    assert failed.status == "failed" and "serializable" in failed.invocation.error
    assert runs["bad"].status == "completed" and runs["bad"].step_runs.get(step_key="sms").status == "succeeded"
    assert [call["to"] for call in receiver] == ["+1"]


def test_a_nul_value_fails_the_step_along_on_error_and_other_runs_of_the_batch_complete(world, action, receiver):
    steps = cart_steps(action.pk)
    # A NUL made by an expression (stored data cannot hold one: the API and PostgreSQL refuse it).
    steps[1]["parameters"] = {
        **PARAMETERS,
        "text": 'profile.first_name + (profile.first_name == "A" ? "\\u0000" : "!")',
    }
    live_journey(world, steps, "check")
    events_ingest(organization=world.acme, events=[
        {"name": "cart_abandoned", "profile_id": "bad", "data": {"total": 500.0},
         "profile": {"phone": "+1", "first_name": "A"}},
        {"name": "cart_abandoned", "profile_id": "good", "data": {"total": 500.0},
         "profile": {"phone": "+2", "first_name": "B"}},
    ])  # fmt: skip
    drain()
    runs = {r.profile.external_id: r for r in JourneyRun.objects.select_related("profile")}
    bad = runs["bad"].step_runs.get(step_key="sms")
    assert bad.status == "failed" and "NUL" in bad.error and runs["bad"].status == "completed"
    assert runs["good"].status == "completed" and receiver == [{"to": "+2", "text": "B!"}]


def test_a_provider_answer_with_nul_is_stored_and_the_run_goes_on(world, httpserver, allow_loopback):
    world.acme.allow_http = True
    world.acme.save()
    httpserver.expect_request("/v1/accounts/a1/messages").respond_with_data(
        '{"id": "x\\u0000y"}', content_type="application/json"
    )
    action = make_action(world.acme, url=httpserver.url_for("/v1/accounts/{{account}}/messages"),
                         auth={"type": "none"}, max_retries=0)  # fmt: skip
    live_journey(world, cart_steps(action.pk), "check")
    send(world)
    drain()
    run = JourneyRun.objects.get()
    assert run.status == "completed" and run.context["sms"]["response"] == {"id": "x\ufffdy"}


def test_an_archived_action_fails_its_step_along_on_error(world, action, receiver):
    live_journey(world, cart_steps(action.pk), "check")
    Action.objects.filter(pk=action.pk).update(status="archived")
    send(world)
    drain()
    run = JourneyRun.objects.get()
    assert "archived" in run.step_runs.get(step_key="sms").error and receiver == []
    assert [key for key, _, _ in path(run)] == ["check", "sms", "missing", "small"]


def test_a_run_started_as_its_journey_stopped_ends_without_calling(world, action, receiver):
    journey = live_journey(world, cart_steps(action.pk), "check")
    send(world)
    events_process()
    Journey.objects.filter(pk=journey.pk).update(status="stopped")  # stopped between start and first step
    drain()
    run = JourneyRun.objects.get()
    assert run.status == "stopped" and receiver == []


def test_an_until_that_is_no_date_follows_on_error(world, action, receiver):
    steps = [{"key": "pause", "type": "wait", "until": '"2024-02-30T10:00:00"', "next": "done", "on_error": "oops"},
             {"key": "done", "type": "end"}, {"key": "oops", "type": "end"}]  # fmt: skip
    live_journey(world, steps, "pause")
    send(world)
    drain()
    assert [key for key, _, _ in path(JourneyRun.objects.get())] == ["pause", "oops"]


def test_an_action_in_use_by_a_live_journey_is_not_deleted(world, action):
    from actions.services.actions import action_delete
    from config.common.exceptions import Conflict

    live_journey(world, cart_steps(action.pk), "check")
    with pytest.raises(Conflict):
        action_delete(action=action)
    assert Action.objects.filter(pk=action.pk).exists()


def test_a_batch_that_cannot_be_written_is_written_run_by_run_and_only_the_culprit_fails(
    world, action, receiver, monkeypatch
):
    from django.db import DatabaseError

    from journeys.models import Profile

    live_journey(world, cart_steps(action.pk), "check")
    send(world, profile="good")
    send(world, profile="bad")
    events_process()
    bad = Profile.objects.get(external_id="bad").pk
    original = StepRun.objects.bulk_create

    def refuse_the_bad_run(rows, *args, **kwargs):  # stands in for a row the database refuses
        if any(row.run.profile_id == bad for row in rows):
            raise DatabaseError("value refused")
        return original(rows, *args, **kwargs)

    monkeypatch.setattr(StepRun.objects, "bulk_create", refuse_the_bad_run)
    assert runs_advance() == 2
    runs = {r.profile.external_id: r for r in JourneyRun.objects.select_related("profile")}
    assert runs["bad"].status == "failed" and "could not record" in runs["bad"].error
    assert runs["good"].status == "active" and runs["good"].step_runs.get(step_key="sms").invocation_id
    monkeypatch.undo()
    drain()
    runs["good"].refresh_from_db()
    assert runs["good"].status == "completed" and len(receiver) == 1
