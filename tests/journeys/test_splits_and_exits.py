"""Split steps (customers shared between paths by percent) and exit events (a goal reached ends the run)."""

import pytest
from django.test import Client

from actions.models import Invocation
from journeys.models import Journey, JourneyRun, StepRun
from journeys.reports import journey_report
from journeys.services import events_ingest, journey_create, journey_publish, journey_test, journey_update
from journeys.steps import split_draw
from journeys.validation import check_publishable
from tests.conftest import token_client
from tests.journeys.helpers import PARAMETERS, drain, live_journey, path, send
from tests.workers import wait_for

JOURNEYS = "/api/v1/orgs/acme/journeys/"
SPLIT = [
    {"key": "ab", "type": "split", "branches": [{"percent": 50, "next": "a"}, {"percent": 50, "next": "b"}]},
    {"key": "a", "type": "end"},
    {"key": "b", "type": "end"},
]


def _events(count: int, name: str = "cart_abandoned") -> list[dict]:
    return [{"name": name, "profile_id": f"p{n}", "profile": {"n": n}} for n in range(count)]


# --- split ----------------------------------------------------------------------------


def test_a_split_of_1000_profiles_is_close_to_its_percentages_and_the_report_shows_each_branch(world):
    journey = live_journey(world, SPLIT, "ab")
    for start in range(0, 1000, 250):
        events_ingest(organization=world.acme, events=_events(1000)[start : start + 250])
    drain(rounds=20)
    ends = {key: JourneyRun.objects.filter(journey=journey, current_step=key).count() for key in ("a", "b")}
    assert ends["a"] + ends["b"] == 1000
    assert 450 <= ends["a"] <= 550, ends  # the draw is a hash: close to 50/50, never exactly promised
    branches = next(s for s in journey_report(journey=journey)["steps"] if s["key"] == "ab")["branches"]
    assert [(b["outcome"], b["runs"], b["share"]) for b in branches] == [
        ("branches[0]", ends["a"], 50), ("branches[1]", ends["b"], 50),
    ]  # fmt: skip
    client = Client()
    client.force_login(world.user("marketer"))
    page = client.get(f"/admin/journeys/journey/{journey.pk}/report/").content.decode()
    assert "branch 1 (50 % planned): " + str(ends["a"]) in page


def test_the_draw_is_stable_per_profile_so_the_test_mode_and_a_second_run_take_the_same_branch(world):
    journey = live_journey(world, SPLIT, "ab", reentry="always")
    send(world, profile="ada")
    send(world, profile="ada")
    drain()
    taken = {run.current_step for run in JourneyRun.objects.filter(journey=journey)}
    assert len(taken) == 1  # both runs of the same profile went the same way
    expected = "a" if split_draw(f"{journey.pk}:ada", "ab") < 50 else "b"
    assert taken == {expected}
    tested = journey_test(journey=journey, profile={"external_id": "ada"}, event={}, responses={}, sees_bodies=True)
    assert [step["key"] for step in tested["path"]] == ["ab", expected]


def test_a_split_that_sends_everyone_one_way_does_so(world):
    steps = [{**SPLIT[0], "branches": [{"percent": 0, "next": "a"}, {"percent": 100, "next": "b"}]}, *SPLIT[1:]]
    journey = live_journey(world, steps, "ab")
    events_ingest(organization=world.acme, events=_events(40))
    drain()
    assert set(JourneyRun.objects.filter(journey=journey).values_list("current_step", flat=True)) == {"b"}


@pytest.mark.parametrize(
    "branches, where, said",
    [
        ([{"percent": 60, "next": "a"}, {"percent": 50, "next": "b"}], "steps[ab].branches", "add up to 110"),
        ([{"percent": 100, "next": "a"}], "steps[ab].branches", "at least two branches"),
        ([{"percent": 50, "next": "a"}, {"percent": 50}], "steps[ab].branches[1].next", "which step"),
    ],
)  # fmt: skip
def test_publishing_refuses_a_split_whose_branches_do_not_add_up(world, branches, where, said):
    steps = [{"key": "ab", "type": "split", "branches": branches}, *SPLIT[1:]]
    problems = check_publishable(steps=steps, start="ab", entry_event="x", actions={})
    assert any(said in message for message in problems[where]), problems


@pytest.mark.parametrize(
    "branches, where",
    [
        ("half", "steps[ab].branches"),
        ([{"percent": "50", "next": "a"}, {"percent": 50, "next": "b"}], "steps[ab].branches[0].percent"),
        ([{"percent": 101, "next": "a"}, {"percent": 50, "next": "b"}], "steps[ab].branches[0].percent"),
        ([{"percent": True, "next": "a"}, {"percent": 50, "next": "b"}], "steps[ab].branches[0].percent"),
        ([{"percent": 50, "next": "a", "expression": "true"}, {"percent": 50}], "steps[ab].branches[0]"),
        ([{"percent": 50, "next": ["a"]}, {"percent": 50}], "steps[ab].branches[0].next"),
        ([{"percent": 10, "next": "a"}] * 11, "steps[ab].branches"),
    ],
)  # fmt: skip
def test_a_malformed_split_is_a_400_naming_the_field(world, branches, where):
    client = token_client(world.user("marketer"))
    steps = [{"key": "ab", "type": "split", "branches": branches}, *SPLIT[1:]]
    answer = client.post(JOURNEYS, {"name": "AB", "entry_event": "x", "steps": steps, "start": "ab"}, format="json")
    assert answer.status_code == 400 and where in answer.json()["errors"], answer.content


def test_a_marketer_sets_a_split_in_the_admin_step_form(world):
    journey = journey_create(organization=world.acme, data={"name": "AB", "entry_event": "x", "steps": SPLIT,
                                                             "start": "ab"})  # fmt: skip
    client = Client()
    client.force_login(world.user("marketer"))
    url = f"/admin/journeys/journey/{journey.pk}/steps/ab/"
    assert 'name="branch0_percent" value="50"' in client.get(url).content.decode()
    form = {"branch0_percent": "30", "branch0_next": "a", "branch1_percent": "70", "branch1_next": "b"}
    assert client.post(url, form).status_code == 302
    journey.refresh_from_db()
    assert journey.steps[0]["branches"] == [{"percent": 30, "next": "a"}, {"percent": 70, "next": "b"}]
    refused = client.post(url, {**form, "branch1_percent": "60"})
    assert refused.status_code == 302  # saved as a draft may be; publishing names the sum
    assert "add up to 90" in client.get(f"/admin/journeys/journey/{journey.pk}/change/").content.decode()


# --- exit events -------------------------------------------------------------------


WAITING = [
    {"key": "pause", "type": "wait", "duration_s": 86400, "next": "done"},
    {"key": "done", "type": "end"},
]


def _exiting(world, steps, start, reentry="after_exit") -> Journey:
    journey = journey_create(
        organization=world.acme,
        data={"name": "Cart", "entry_event": "cart_abandoned", "reentry": reentry, "steps": steps, "start": start,
              "exit_events": ["order_placed"]},
    )  # fmt: skip
    return journey_publish(journey=journey)


def test_an_exit_event_ends_a_waiting_run_as_exited_with_the_event(world):
    journey = _exiting(world, WAITING, "pause")
    send(world, profile="ada")
    send(world, profile="bob")
    drain()
    assert set(JourneyRun.objects.values_list("status", flat=True)) == {"waiting"}
    send(world, profile="ada", name="order_placed")
    drain()
    ada = JourneyRun.objects.get(journey=journey, profile__external_id="ada")
    bob = JourneyRun.objects.get(journey=journey, profile__external_id="bob")
    assert ada.status == "exited" and ada.exit_event.name == "order_placed" and ada.ended_at is not None
    assert path(ada) == [("pause", "stopped", "")] and bob.status == "waiting"
    assert journey_report(journey=journey)["runs"]["exited"] == 1
    send(world, profile="ada")  # after_exit: the profile may enter again
    drain()
    assert JourneyRun.objects.filter(journey=journey, profile__external_id="ada", status="waiting").count() == 1


def test_an_exit_event_cancels_a_call_not_yet_sent(world, action):
    steps = [{"key": "sms", "type": "action", "action": action.pk, "parameters": PARAMETERS, "next": "done"},
             {"key": "done", "type": "end"}]  # fmt: skip
    journey = _exiting(world, steps, "sms", reentry="never")
    from journeys.engine import events_process, runs_advance

    send(world, profile="ada")
    events_process()
    runs_advance()  # the call is queued, not sent: no dispatcher ran
    invocation = Invocation.objects.get()
    assert invocation.status == "pending"
    send(world, profile="ada", name="order_placed")
    drain()
    invocation.refresh_from_db()
    run = JourneyRun.objects.get(journey=journey)
    assert invocation.status == "failed" and "exit event" in invocation.error and invocation.attempts == 0
    assert run.status == "exited" and run.step_runs.get().status == StepRun.Status.STOPPED
    send(world, profile="ada")  # never: the profile does not enter again
    drain()
    assert JourneyRun.objects.filter(journey=journey).count() == 1


def test_an_exit_event_of_another_organization_or_another_profile_ends_nothing(world):
    _exiting(world, WAITING, "pause")
    send(world, profile="ada")
    drain()
    events_ingest(organization=world.globex, events=[{"name": "order_placed", "profile_id": "ada"}])
    send(world, profile="bob", name="order_placed")
    drain()
    assert JourneyRun.objects.get(profile__external_id="ada").status == "waiting"


@pytest.mark.parametrize(
    "exit_events",
    ["order_placed", [1], [""], ["a"] * 2, [f"e{n}" for n in range(21)], ["x" * 201], [{"name": "a"}]],
)
def test_bad_exit_events_are_a_400_naming_the_field(world, exit_events):
    client = token_client(world.user("marketer"))
    answer = client.post(JOURNEYS, {"name": "C", "entry_event": "x", "exit_events": exit_events}, format="json")
    assert answer.status_code == 400 and "exit_events" in answer.json()["errors"], answer.content


def test_exit_events_are_set_by_the_api_and_the_admin_and_fixed_once_live(world):
    client = token_client(world.user("marketer"))
    made = client.post(JOURNEYS, {"name": "C", "entry_event": "x", "exit_events": ["order_placed"]}, format="json")
    assert made.status_code == 201 and made.json()["exit_events"] == ["order_placed"]
    journey = Journey.objects.get(pk=made.json()["id"])
    admin = Client()
    admin.force_login(world.user("marketer"))
    form = {"name": "C", "entry_event": "x", "reentry": "after_exit", "exit_events": "order_placed, unsubscribed"}
    admin.post(f"/admin/journeys/journey/{journey.pk}/change/", form)
    journey.refresh_from_db()
    assert journey.exit_events == ["order_placed", "unsubscribed"]
    journey = journey_update(journey=journey, data={"steps": SPLIT, "start": "ab"})
    journey_publish(journey=journey)
    refused = client.patch(f"{JOURNEYS}{journey.pk}/", {"exit_events": []}, format="json")
    assert refused.status_code == 409


@pytest.mark.worker
def test_with_a_real_worker_a_split_and_an_exit_event_move_runs(workers, world):
    steps = [
        {"key": "ab", "type": "split", "branches": [{"percent": 50, "next": "a"}, {"percent": 50, "next": "b"}]},
        {"key": "a", "type": "wait", "duration_s": 3600, "next": "done"},
        {"key": "b", "type": "wait", "duration_s": 3600, "next": "done"},
        {"key": "done", "type": "end"},
    ]
    journey = _exiting(world, steps, "ab")
    workers.start()
    events_ingest(organization=world.acme, events=_events(200))
    waiting = wait_for(
        lambda: JourneyRun.objects.filter(journey=journey, status="waiting").count() == 200 or None,
        message="200 runs to wait in a branch",
    )
    assert waiting
    in_a = JourneyRun.objects.filter(journey=journey, current_step="a").count()
    assert 70 <= in_a <= 130
    events_ingest(organization=world.acme, events=_events(200, name="order_placed"))
    wait_for(
        lambda: JourneyRun.objects.filter(journey=journey, status="exited").count() == 200 or None,
        message="200 runs to exit",
    )
