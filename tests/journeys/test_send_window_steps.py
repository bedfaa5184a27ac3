"""Send windows in journeys: a step's own window wins over its action's, calls are timed in the profile's time
zone (else the organization's), and the run says it waits for the window; with a controllable clock."""

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from actions.models import Invocation
from actions.services.actions import action_update
from journeys import steps
from journeys.models import JourneyRun
from journeys.services import events_ingest, journey_create
from tests.conftest import token_client
from tests.journeys.helpers import cart_steps, drain, live_journey

PARIS = ZoneInfo("Europe/Paris")
NINE_TO_EIGHT = {"start": "09:00", "end": "20:00"}


@pytest.fixture
def at_22_in_paris(monkeypatch):
    moment = datetime(2027, 6, 1, 22, 0, tzinfo=PARIS).astimezone(UTC)  # in UTC, as Django's clock answers
    monkeypatch.setattr(timezone, "now", lambda: moment)
    # Published steps are cached by (journey, published_at): with the clock stopped, ids reused by the
    # next test would find this one's steps.
    monkeypatch.setattr(steps, "_steps", {})
    return moment


@pytest.fixture
def windowed(world, action):
    world.acme.default_time_zone = "Europe/Paris"
    world.acme.save()
    return action_update(action=action, data={"send_window": NINE_TO_EIGHT})


def enter(world, profile: str = "cust-1", **attributes) -> None:
    event = {"name": "cart_abandoned", "profile_id": profile, "data": {"total": 150.0},
             "profile": {"phone": "+33600000000", "first_name": "Ada", **attributes}}  # fmt: skip
    events_ingest(organization=world.acme, events=[event])


def test_a_journey_call_outside_the_actions_window_waits_and_the_run_says_until_when(
    world, client, windowed, receiver, at_22_in_paris
):
    journey = live_journey(world, cart_steps(windowed.pk), "check")
    enter(world)
    drain()
    invocation = Invocation.objects.get()
    assert (invocation.status, invocation.send_window, invocation.time_zone) == ("pending", None, "Europe/Paris")
    assert invocation.window_wait_until == datetime(2027, 6, 2, 7, 0, tzinfo=UTC) and receiver == []
    run = JourneyRun.objects.get()
    step = token_client(world.user("viewer")).get(f"/api/v1/orgs/acme/runs/{run.pk}/").json()["steps"][1]
    assert step["key"] == "sms" and step["status"] == "running"
    assert step["waiting"] == "waiting for the send window until 2027-06-02 09:00 (Europe/Paris)"
    assert step["window_wait_until"] == "2027-06-02T07:00:00Z"
    client.force_login(world.user("marketer"))
    page = client.get(reverse("admin:journeys_journeyrun_change", args=[run.pk])).content.decode()
    assert "waiting for the send window until 2027-06-02 09:00 (Europe/Paris)" in page
    assert journey.pk == run.journey_id


def test_the_steps_own_window_wins_over_the_actions(world, windowed, receiver, at_22_in_paris):
    night = {"start": "21:00", "end": "23:00"}
    live_journey(world, cart_steps(windowed.pk, send_window=night), "check")
    enter(world)
    drain()
    invocation = Invocation.objects.get()
    assert invocation.send_window == night and invocation.status == "succeeded"
    assert receiver == [{"to": "+33600000000", "text": "Hi Ada"}]
    assert JourneyRun.objects.get().status == "completed"


def test_the_profiles_own_time_zone_times_its_calls(world, windowed, receiver, at_22_in_paris):
    live_journey(world, cart_steps(windowed.pk), "check", reentry="always")
    enter(world, "tokyo", timezone="Asia/Tokyo")  # 05:00 the next morning there
    enter(world, "mars", timezone="Mars/Olympus")
    enter(world, "hostile", timezone="../../../../etc/passwd")
    drain()
    by_profile = {i.origin_ref: i for i in Invocation.objects.all()}
    zones = {run.profile.external_id: by_profile[str(run.step_runs.get(step_key="sms").pk)] for run in
             JourneyRun.objects.select_related("profile")}  # fmt: skip
    assert zones["tokyo"].time_zone == "Asia/Tokyo"
    assert zones["tokyo"].window_wait_until == datetime(2027, 6, 2, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert zones["mars"].time_zone == zones["hostile"].time_zone == "Europe/Paris"  # the organization's default


def test_the_organization_names_the_attribute_that_holds_the_time_zone(world, windowed, receiver, at_22_in_paris):
    world.acme.time_zone_attribute = "tz"
    world.acme.save()
    live_journey(world, cart_steps(windowed.pk), "check")
    enter(world, tz="America/New_York", timezone="Asia/Tokyo")
    drain()
    assert Invocation.objects.get().time_zone == "America/New_York"


JOURNEYS = "/api/v1/orgs/acme/journeys/"


def test_a_malformed_step_window_is_a_400_naming_it(world, action):
    client = token_client(world.user("marketer"))
    body = {"name": "Cart", "entry_event": "cart_abandoned", "start": "check",
            "steps": cart_steps(action.pk, send_window={"start": "9h", "end": "20:00", "days": [8]})}  # fmt: skip
    refused = client.post(JOURNEYS, body, format="json")
    assert refused.status_code == 400
    errors = refused.json()["errors"]
    assert "steps[sms].send_window.start" in errors and "steps[sms].send_window.days" in errors
    body["steps"] = cart_steps(action.pk, send_window=NINE_TO_EIGHT)
    created = client.post(JOURNEYS, body, format="json")
    assert created.status_code == 201 and created.json()["steps"][1]["send_window"] == NINE_TO_EIGHT


def _errors(response) -> str:
    return " ".join(re.findall(r'class="errorlist[^>]*>(.*?)</ul>', response.content.decode(), re.S))


def test_the_builder_sets_a_steps_window_and_refuses_a_malformed_one(world, client, action):
    document = {"name": "Cart", "entry_event": "cart_abandoned", "steps": cart_steps(action.pk), "start": "check"}
    draft = journey_create(organization=world.acme, data=document)
    client.force_login(world.user("marketer"))
    step_url = reverse("admin:journeys_journey_step", args=[draft.pk, "sms"])
    form = {"action": action.pk, "param__account": '"a1"', "param__phone": "profile.phone",
            "param__text": '"Hi"', "next": "sent", "on_error": "missing"}  # fmt: skip
    saved = client.post(step_url, {**form, "send_window_days": ["0", "4"], "send_window_start": "09:00",
                                   "send_window_end": "20:00", "send_window_skip_dates": "2026-12-25\n"})  # fmt: skip
    assert saved.status_code == 302, _errors(saved)
    draft.refresh_from_db()
    step = next(s for s in draft.steps if s["key"] == "sms")
    assert step["send_window"] == {"days": [0, 4], "start": "09:00", "end": "20:00", "skip_dates": ["2026-12-25"]}
    page = client.get(step_url).content.decode()
    assert 'value="09:00"' in page and "2026-12-25" in page
    refused = client.post(step_url, {**form, "send_window_start": "09:00", "send_window_skip_dates": "soon"})
    assert refused.status_code == 200
    assert "required, a time of day" in _errors(refused) and "soon is not a date" in _errors(refused)
    cleared = client.post(step_url, form)
    assert cleared.status_code == 302
    draft.refresh_from_db()
    assert "send_window" not in next(s for s in draft.steps if s["key"] == "sms")
