"""wait_event steps (until the customer does something, or a timeout), jumps to another journey, and a
journey's longest run."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from journeys.engine import journeys_sweep
from journeys.models import Journey, JourneyRun
from journeys.services import events_ingest, journey_create, journey_publish, journey_test
from journeys.validation import check_publishable
from tenants.services import api_key_create
from tests.conftest import key_client, token_client
from tests.journeys.helpers import drain, live_journey, path, send
from tests.workers import wait_for

JOURNEYS = "/api/v1/orgs/acme/journeys/"
WAIT_FOR_ORDER = [
    {"key": "w", "type": "wait_event", "event": "order_placed", "condition": "event.data.total > 50.0",
     "timeout_s": 3600, "next": "big", "on_timeout": "remind"},
    {"key": "big", "type": "condition", "branches": [{"expression": "steps.w.event.data.total > 100.0",
                                                     "next": "vip"}], "else": "thanks"},
    {"key": "vip", "type": "end"}, {"key": "thanks", "type": "end"}, {"key": "remind", "type": "end"},
]  # fmt: skip


def _order(world, profile: str, total: float, organization=None) -> None:
    events_ingest(organization=organization or world.acme,
                  events=[{"name": "order_placed", "profile_id": profile, "data": {"total": total}}])  # fmt: skip


def test_a_run_waits_for_its_profiles_event_whose_condition_holds_and_reads_it_afterwards(world):
    journey = live_journey(world, WAIT_FOR_ORDER, "w")
    send(world, profile="ada")
    send(world, profile="bob")
    drain()
    run = JourneyRun.objects.get(profile__external_id="ada")
    assert run.status == "waiting" and run.awaiting_event == "order_placed"
    _order(world, "ada", 10.0)  # the condition is false: still waiting
    _order(world, "bob", 500.0, organization=world.globex)  # another organization's bob
    drain()
    assert set(JourneyRun.objects.values_list("status", flat=True)) == {"waiting"}
    _order(world, "ada", 150.0)
    drain()
    run.refresh_from_db()
    assert run.status == "completed" and run.current_step == "vip" and run.awaiting_event == ""
    assert path(run)[0] == ("w", "succeeded", "received")
    assert run.context["w"]["event"]["data"] == {"total": 150.0} and run.context["w"]["status"] == "received"
    assert JourneyRun.objects.get(journey=journey, profile__external_id="bob").status == "waiting"


def test_the_timeout_takes_on_timeout_and_says_so(world):
    live_journey(world, WAIT_FOR_ORDER, "w")
    send(world, profile="ada")
    drain()
    JourneyRun.objects.update(due_at=timezone.now() - timedelta(seconds=1))  # an hour later
    drain()
    run = JourneyRun.objects.get()
    assert run.status == "completed" and run.current_step == "remind"
    assert path(run)[0] == ("w", "succeeded", "timedout") and run.context["w"] == {"status": "timedout", "event": None}
    _order(world, "ada", 150.0)  # too late: nothing waits any more
    drain()
    assert JourneyRun.objects.get().current_step == "remind"


def test_a_condition_that_fails_at_run_time_does_not_resume_and_the_timeout_still_comes(world):
    steps = [{**WAIT_FOR_ORDER[0], "condition": "event.data.total > 50.0"}, *WAIT_FOR_ORDER[1:]]
    live_journey(world, steps, "w")
    send(world, profile="ada")
    drain()
    events_ingest(organization=world.acme, events=[{"name": "order_placed", "profile_id": "ada", "data": {}}])
    drain()  # event.data.total does not exist: an error, not a match
    assert JourneyRun.objects.get().status == "waiting"


@pytest.mark.parametrize(
    "change, where",
    [
        ({"timeout_s": 0}, "steps[w].timeout_s"),
        ({"timeout_s": "1h"}, "steps[w].timeout_s"),
        ({"timeout_s": 10**9}, "steps[w].timeout_s"),
        ({"event": ["order_placed"]}, "steps[w].event"),
        ({"event": "x" * 201}, "steps[w].event"),
        ({"condition": "event.data.total >"}, "steps[w].condition"),
        ({"until": "now"}, "steps[w].until"),
    ],
)
def test_a_malformed_wait_event_is_a_400_naming_the_field(world, change, where):
    steps = [{**WAIT_FOR_ORDER[0], **change}, *WAIT_FOR_ORDER[1:]]
    answer = token_client(world.user("marketer")).post(
        JOURNEYS, {"name": "W", "entry_event": "x", "steps": steps, "start": "w"}, format="json"
    )
    assert answer.status_code == 400 and where in answer.json()["errors"], answer.content


def test_publishing_asks_a_wait_event_for_its_event_timeout_and_next(world):
    step = {"key": "w", "type": "wait_event"}
    problems = check_publishable(steps=[step], start="w", entry_event="x", actions={})
    assert {"steps[w].event", "steps[w].timeout_s", "steps[w].next"} <= set(problems)


def test_the_test_mode_goes_past_a_wait_event_as_if_it_came(world):
    journey = journey_create(organization=world.acme, data={"name": "W", "entry_event": "x", "steps": WAIT_FOR_ORDER,
                                                             "start": "w"})  # fmt: skip
    tested = journey_test(journey=journey, profile={}, event={}, responses={}, sees_bodies=True)
    assert [(s["key"], s.get("outcome")) for s in tested["path"]][0] == ("w", "skipped")


# --- jumps ---------------------------------------------------------------------------


def _target(world, reentry="never", organization=None) -> Journey:
    journey = journey_create(
        organization=organization or world.acme,
        data={"name": "Welcome", "entry_event": "signed_up", "reentry": reentry, "start": "hi",
              "steps": [{"key": "hi", "type": "wait", "duration_s": 3600, "next": "bye"},
                        {"key": "bye", "type": "end"}]},
    )  # fmt: skip
    return journey_publish(journey=journey)


def test_a_jump_ends_the_run_and_the_profile_enters_the_other_journey_under_its_reentry_rule(world):
    target = _target(world)
    source = live_journey(world, [{"key": "go", "type": "jump", "journey": target.pk}], "go", reentry="always")
    send(world, profile="ada")
    drain()
    jumped = JourneyRun.objects.get(journey=source)
    assert jumped.status == "completed" and path(jumped) == [("go", "succeeded", "jumped")]
    entered = JourneyRun.objects.get(journey=target)
    assert entered.profile == jumped.profile and entered.status == "waiting" and entered.current_step == "hi"
    send(world, profile="ada")  # the target's rule is never: the profile does not enter it twice
    drain()
    assert JourneyRun.objects.filter(journey=source).count() == 2
    assert JourneyRun.objects.filter(journey=target).count() == 1


def test_publishing_refuses_a_jump_to_a_draft_another_organizations_journey_or_itself(world):
    draft = journey_create(organization=world.acme, data={"name": "D", "entry_event": "x"})
    theirs = _target(world, organization=world.globex)
    for target in (draft.pk, theirs.pk, None, "x"):
        journey = journey_create(organization=world.acme, data={
            "name": f"J{target}", "entry_event": "x", "steps": [{"key": "go", "type": "jump"}], "start": "go",
        })  # fmt: skip
        journey.steps = [{"key": "go", "type": "jump", "journey": target if target != "x" else journey.pk}]
        journey.save()
        answer = token_client(world.user("marketer")).post(f"{JOURNEYS}{journey.pk}/publish/", format="json")
        assert answer.status_code == 400 and "steps[go].journey" in answer.json()["errors"], (target, answer.content)


def test_a_jump_step_is_chosen_in_the_admin_among_live_journeys(world):
    target = _target(world)
    _target(world, organization=world.globex)
    data = {"name": "J", "entry_event": "x", "steps": [{"key": "go", "type": "jump"}], "start": "go"}
    journey = journey_create(organization=world.acme, data=data)
    client = Client()
    client.force_login(world.user("marketer"))
    url = f"/admin/journeys/journey/{journey.pk}/steps/go/"
    page = client.get(url).content.decode()
    assert f'<option value="{target.pk}">Welcome v1</option>' in page and page.count("Welcome v1") == 1
    assert client.post(url, {"journey": str(target.pk)}).status_code == 302
    journey.refresh_from_db()
    assert journey.steps == [{"key": "go", "type": "jump", "journey": target.pk}]
    assert "to Welcome v1" in client.get(f"/admin/journeys/journey/{journey.pk}/change/").content.decode()


def test_a_wait_event_step_is_set_in_the_admin(world):
    journey = journey_create(organization=world.acme, data={"name": "W", "entry_event": "x", "steps": WAIT_FOR_ORDER,
                                                             "start": "w"})  # fmt: skip
    client = Client()
    client.force_login(world.user("marketer"))
    url = f"/admin/journeys/journey/{journey.pk}/steps/w/"
    assert 'value="order_placed"' in client.get(url).content.decode()
    form = {"event": "paid", "condition": "", "timeout_s": "60", "next": "thanks", "on_timeout": "remind"}
    assert client.post(url, form).status_code == 302
    journey.refresh_from_db()
    assert journey.steps[0] == {"key": "w", "type": "wait_event", "event": "paid", "timeout_s": 60, "next": "thanks",
                                "on_timeout": "remind"}  # fmt: skip


# --- a journey's longest run ---------------------------------------------------------


def test_a_run_open_past_max_run_days_ends_as_timed_out(world):
    steps = [{"key": "w", "type": "wait", "duration_s": 400 * 86400, "next": "e"}, {"key": "e", "type": "end"}]
    journey = live_journey(world, steps, "w")
    send(world, profile="old")
    send(world, profile="new")
    drain()
    JourneyRun.objects.filter(profile__external_id="old").update(started_at=timezone.now() - timedelta(days=92))
    assert journeys_sweep()["timed_out"] == 1
    old = JourneyRun.objects.get(profile__external_id="old")
    assert old.status == "timed_out" and "91 days" in old.error and path(old) == [("w", "stopped", "")]
    assert JourneyRun.objects.get(profile__external_id="new").status == "waiting"
    send(world, profile="old")  # after_exit: a run that timed out lets the profile enter again
    drain()
    assert JourneyRun.objects.filter(journey=journey, profile__external_id="old", status="waiting").count() == 1


@pytest.mark.parametrize("days", [0, -1, 3651, "ninety", None, 1.5])
def test_max_run_days_out_of_range_is_a_400(world, days):
    answer = token_client(world.user("marketer")).post(
        JOURNEYS, {"name": "J", "entry_event": "x", "max_run_days": days}, format="json"
    )
    assert answer.status_code == 400 and "max_run_days" in answer.json()["errors"], answer.content


# --- with a real worker --------------------------------------------------------------


@pytest.mark.worker
def test_with_a_real_worker_one_wait_ends_by_its_event_and_another_by_its_timeout(workers, world):
    steps = [{**WAIT_FOR_ORDER[0], "timeout_s": 2}, *WAIT_FOR_ORDER[1:]]
    live_journey(world, steps, "w")
    workers.start()
    client = key_client(api_key_create(organization=world.acme, name="shop", scopes=["events:write"])[1])
    for who in ("ada", "bob"):
        answer = client.post("/api/v1/orgs/acme/events/", {"name": "cart_abandoned", "profile_id": who}, format="json")
        assert answer.status_code == 202
    wait_for(lambda: JourneyRun.objects.filter(status="waiting").count() == 2 or None, message="two runs to wait")
    order = {"name": "order_placed", "profile_id": "ada", "data": {"total": 80.0}}
    assert client.post("/api/v1/orgs/acme/events/", order, format="json").status_code == 202
    runs = wait_for(
        lambda: (found := {r.profile.external_id: r for r in JourneyRun.objects.select_related("profile")})
        and all(r.status == "completed" for r in found.values()) and found or None,
        timeout=30, message="both runs to end",
    )  # fmt: skip
    assert runs["ada"].current_step == "thanks" and runs["ada"].context["w"]["event"]["data"] == {"total": 80.0}
    assert runs["bob"].current_step == "remind" and runs["bob"].context["w"]["status"] == "timedout"
