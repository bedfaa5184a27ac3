"""The report tells what happened: a run whose step failed shows it even when the run completed,
steps have percentages, a range and a step narrow the runs, runs per hour, times with seconds."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from journeys.models import JourneyRun
from tests.conftest import token_client
from tests.journeys.helpers import cart_steps, drain, live_journey, send

ORG = "/api/v1/orgs/acme"


@pytest.fixture
def journey(world, action, receiver):
    """Three runs: one sent, one whose call got a 404 (it goes on through on_error and completes), one small."""
    journey = live_journey(world, cart_steps(action.pk), "check")
    send(world, profile="a", total=150.0)
    send(world, profile="b", total=150.0, phone="+404")
    send(world, profile="c", total=5.0)
    drain()
    return journey


def report(world, journey, role="viewer", **params):
    return token_client(world.user(role)).get(f"{ORG}/journeys/{journey.pk}/report/", params)


def test_a_run_that_completed_after_a_failed_call_shows_its_failed_step(world, journey):
    runs = token_client(world.user("marketer")).get(f"{ORG}/runs/", {"profile": "b"}).json()["results"]

    assert runs[0]["status"] == "completed"
    assert runs[0]["failed_step"]["key"] == "sms" and runs[0]["failed_step"]["outcome"] == "http_404"
    assert "127.0.0.1" not in str(runs[0])  # a marketer reads the outcome in words, never the host
    body = report(world, journey).json()
    assert body["runs"]["completed"] == 3 and body["runs_with_a_failed_step"] == 1


def test_steps_have_percentages(world, journey):
    steps = {s["key"]: s for s in report(world, journey).json()["steps"]}

    assert steps["sms"]["percent"] == {"entered": 66.7, "succeeded": 50.0, "failed": 50.0, "waiting": 0.0,
                                       "exited": 0.0, "capped": 0.0}  # fmt: skip
    assert steps["sent"]["percent"]["exited"] == 100.0
    assert steps["check"]["percent"]["entered"] == 100.0


def test_a_range_counts_only_the_runs_started_in_it(world, journey):
    JourneyRun.objects.filter(profile__external_id="a").update(started_at=timezone.now() - timedelta(days=3))
    today = timezone.localdate().isoformat()

    body = report(world, journey, since=today).json()
    assert body["runs"]["completed"] == 2
    assert {s["key"]: s["entered"] for s in body["steps"]}["sms"] == 1
    earlier = (timezone.localdate() - timedelta(days=2)).isoformat()
    assert report(world, journey, until=earlier).json()["runs"]["completed"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [({"since": "yesterday"}, "since"), ({"since": "2026-12-03", "until": "2026-12-01"}, "until"),
     ({"sinse": "2026-12-01"}, "sinse")],
)  # fmt: skip
def test_a_bad_range_is_400_naming_the_field(world, journey, params, field):
    response = report(world, journey, **params)

    assert response.status_code == 400 and field in response.json()["errors"]


def test_runs_per_hour_cover_the_last_two_days_with_this_hours_runs(world, journey):
    hours = report(world, journey).json()["runs_per_hour"]

    assert len(hours) == 48
    assert hours[-1]["started"] == 3 and hours[-1]["failed"] == 0
    assert sum(h["started"] for h in hours[:-1]) == 0


def test_another_organization_gets_404_for_the_report(world, journey):
    other = token_client(world.globex_admin.user)
    assert other.get(f"/api/v1/orgs/globex/journeys/{journey.pk}/report/").status_code == 404


def test_the_report_page_shows_failed_steps_times_with_seconds_and_a_chart(world, journey, client):
    client.force_login(world.user("marketer"))
    page = client.get(reverse("admin:journeys_journey_report", args=[journey.pk])).content.decode()

    assert "sms failed: http_404" in page and "1 with a failed step" in page
    assert re.search(r">\d\d/\d\d/\d{4} \d\d:\d\d:\d\d</a>", page)  # when each run started, to the second
    assert "branch 1" in page and "branches[0]" not in page
    assert 'aria-label="Runs started per hour"' in page
    assert "127.0.0.1" not in page
    assert "(66.7 % of runs)" in page


def test_a_click_on_a_step_lists_the_runs_through_it(world, journey, client):
    client.force_login(world.user("viewer"))
    url = reverse("admin:journeys_journey_report", args=[journey.pk])

    page = client.get(url, {"step": "not_found"}).content.decode()
    assert "Runs through not_found" in page
    customers = re.findall(r"</a></td><td>([abc])</td>", page)
    assert customers == ["b"]


def test_a_range_on_the_page_with_no_run_says_so(world, journey, client):
    client.force_login(world.user("viewer"))
    url = reverse("admin:journeys_journey_report", args=[journey.pk])
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()

    assert "No run in this range." in client.get(url, {"since": tomorrow}).content.decode()
    backwards = client.get(url, {"since": tomorrow, "until": "2026-01-01"}).content.decode()
    assert "Give a day on or after the first one." in backwards
