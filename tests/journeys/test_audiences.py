"""Audience journeys: every profile of a segment enters, at the journey's rate, once or each day or week."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from journeys.audience.rounds import audience_progress, audiences_enter, audiences_start
from journeys.audience.segments import segment_create
from journeys.models import AudienceRound, Journey, JourneyRun, Profile
from journeys.services import journey_create, journey_publish
from journeys.validation import check_publishable
from tests.conftest import token_client
from tests.workers import wait_for

JOURNEYS = "/api/v1/orgs/acme/journeys/"
STEPS = [{"key": "hi", "type": "wait", "duration_s": 3600, "next": "bye"}, {"key": "bye", "type": "end"}]


@pytest.fixture
def french(world):
    """30 profiles in France and 20 elsewhere, and the segment of the French."""
    Profile.objects.bulk_create(
        [Profile(organization=world.acme, external_id=f"fr{n}", attributes={"country": "FR"}) for n in range(30)]
        + [Profile(organization=world.acme, external_id=f"de{n}", attributes={"country": "DE"}) for n in range(20)]
        + [Profile(organization=world.globex, external_id=f"theirs{n}", attributes={"country": "FR"}) for n in range(5)]
    )
    return segment_create(organization=world.acme, data={"name": "French", "expression": 'profile.country == "FR"'})


def _audience_journey(world, segment, rate=10, reentry="after_exit", **audience) -> Journey:
    journey = journey_create(organization=world.acme, data={
        "name": "Newsletter", "reentry": reentry, "steps": STEPS, "start": "hi",
        "audience": {"segment": segment.pk, "rate_per_s": rate, "start_at": None, "repeat": "none", **audience},
    })  # fmt: skip
    return journey_publish(journey=journey)


def test_every_matching_profile_enters_once_at_the_rate_and_the_round_shows_its_progress(world, french):
    journey = _audience_journey(world, french, rate=10)
    t0 = timezone.now()
    assert audiences_start(now=t0) == 1 and audiences_start(now=t0) == 0  # one round per scheduled time
    assert audience_progress(journey)["total"] == 30
    assert audiences_enter(now=t0) == 0
    assert audiences_enter(now=t0 + timedelta(seconds=1)) == 10
    assert audiences_enter(now=t0 + timedelta(seconds=1)) == 0  # the same second again: nothing more is due
    progress = audience_progress(journey)
    assert (progress["entered"], progress["eta_s"], progress["finished_at"]) == (10, 2, None)
    assert audiences_enter(now=t0 + timedelta(seconds=2.5)) == 15
    assert audiences_enter(now=t0 + timedelta(seconds=9)) == 5
    runs = JourneyRun.objects.filter(journey=journey)
    assert runs.count() == 30 and set(runs.values_list("profile__attributes__country", flat=True)) == {"FR"}
    assert runs.values("profile").distinct().count() == 30 and set(runs.values_list("status", flat=True)) == {"active"}
    assert audience_progress(journey)["finished_at"] is not None
    assert audiences_enter(now=t0 + timedelta(seconds=60)) == 0


def test_after_workers_were_down_the_round_goes_on_at_its_rate_without_a_burst(world, french):
    journey = _audience_journey(world, french, rate=10)
    t0 = timezone.now()
    audiences_start(now=t0)
    assert audiences_enter(now=t0 + timedelta(seconds=1)) == 10
    assert audiences_enter(now=t0 + timedelta(minutes=5)) == 10  # not the 20 left at once
    assert audiences_enter(now=t0 + timedelta(minutes=5, seconds=1)) == 10
    assert JourneyRun.objects.filter(journey=journey).count() == 30


def test_a_round_interrupted_resumes_where_its_cursor_is_and_starts_no_one_twice(world, french):
    journey = _audience_journey(world, french, rate=10)
    t0 = timezone.now()
    audiences_start(now=t0)
    audiences_enter(now=t0 + timedelta(seconds=1))
    round_ = AudienceRound.objects.get()
    assert round_.scanned_to > 0 and round_.entered == 10
    JourneyRun.objects.filter(journey=journey).update(status="completed")  # those runs went on meanwhile
    audiences_enter(now=t0 + timedelta(seconds=2))  # another worker, after the first died
    audiences_enter(now=t0 + timedelta(seconds=3))
    assert JourneyRun.objects.filter(journey=journey).values("profile").distinct().count() == 30
    assert JourneyRun.objects.filter(journey=journey).count() == 30


@pytest.mark.parametrize("reentry, second_day", [("never", 0), ("always", 30)])
def test_the_reentry_rule_applies_across_daily_rounds(world, french, reentry, second_day):
    journey = _audience_journey(world, french, rate=1000, reentry=reentry, repeat="daily")
    t0 = journey.published_at
    audiences_start(now=t0)
    assert audiences_enter(now=t0 + timedelta(seconds=1)) == 30
    tomorrow = t0 + timedelta(days=1, seconds=1)
    assert audiences_start(now=tomorrow) == 1
    assert audiences_enter(now=tomorrow + timedelta(seconds=1)) == second_day
    assert audience_progress(journey)["skipped"] == 30 - second_day


def test_a_start_at_in_the_future_waits_for_its_time(world, french):
    later = timezone.now() + timedelta(hours=2)
    _audience_journey(world, french, start_at=later.isoformat())
    assert audiences_start(now=timezone.now()) == 0
    assert audiences_start(now=later + timedelta(seconds=1)) == 1


@pytest.mark.parametrize(
    "audience, where",
    [
        ("French", "audience"),
        ({"rate_per_s": 10}, "audience.segment"),
        ({"segment": "x", "rate_per_s": 10}, "audience.segment"),
        ({"segment": 1, "rate_per_s": 0}, "audience.rate_per_s"),
        ({"segment": 1, "rate_per_s": 20001}, "audience.rate_per_s"),
        ({"segment": 1, "rate_per_s": 10, "start_at": "tomorrow"}, "audience.start_at"),
        ({"segment": 1, "rate_per_s": 10, "start_at": "2026-12-24T09:00:00"}, "audience.start_at"),
        ({"segment": 1, "rate_per_s": 10, "repeat": "hourly"}, "audience.repeat"),
        ({"segment": 1, "rate_per_s": 10, "limit": 5}, "audience.limit"),
    ],
)
def test_a_malformed_audience_is_a_400_naming_the_field(world, audience, where):
    answer = token_client(world.user("marketer")).post(JOURNEYS, {"name": "A", "audience": audience}, format="json")
    assert answer.status_code == 400 and where in answer.json()["errors"], answer.content


def test_an_audience_needs_a_segment_of_this_organization_and_no_entry_event(world, french):
    theirs = segment_create(organization=world.globex, data={"name": "Theirs", "expression": "true"})
    client = token_client(world.user("marketer"))
    other = client.post(JOURNEYS, {"name": "A", "audience": {"segment": theirs.pk, "rate_per_s": 10}}, format="json")
    assert other.status_code == 400 and "audience.segment" in other.json()["errors"]
    both = {"name": "A", "entry_event": "x", "audience": {"segment": french.pk, "rate_per_s": 10}}
    assert "audience" in client.post(JOURNEYS, both, format="json").json()["errors"]
    problems = check_publishable(steps=STEPS, start="hi", entry_event="", actions={})
    assert "or give an audience" in problems["entry_event"][0]
    assert "entry_event" not in check_publishable(steps=STEPS, start="hi", entry_event="", actions={},
                                                  audience={"segment": french.pk})  # fmt: skip


def test_the_admin_sets_an_audience_and_the_report_shows_its_progress(world, french):
    journey = journey_create(organization=world.acme, data={"name": "News", "steps": STEPS, "start": "hi"})
    client = Client()
    client.force_login(world.user("marketer"))
    form = {"name": "News", "entry_event": "", "reentry": "after_exit", "start": "hi", "audience_segment": french.pk,
            "audience_rate_per_s": "5", "audience_repeat": "weekly"}  # fmt: skip
    assert client.post(f"/admin/journeys/journey/{journey.pk}/change/", form).status_code == 302
    journey.refresh_from_db()
    assert journey.audience == {"segment": french.pk, "rate_per_s": 5, "start_at": None, "repeat": "weekly"}
    journey = journey_publish(journey=journey)
    audiences_start(now=timezone.now())
    audiences_enter(now=timezone.now() + timedelta(seconds=2))
    page = client.get(f"/admin/journeys/journey/{journey.pk}/report/").content.decode()
    assert "Audience: 10 of 30 profiles entered" in page and "about 4 s left" in page
    report = token_client(world.user("viewer")).get(f"{JOURNEYS}{journey.pk}/report/").json()
    assert (report["audience"]["total"], report["audience"]["entered"], report["audience"]["eta_s"]) == (30, 10, 4)


@pytest.mark.worker
def test_with_a_real_worker_and_its_beat_an_audience_journey_enters_its_segment(workers, world, french):
    journey = _audience_journey(world, french, rate=20)
    workers.start()
    wait_for(lambda: JourneyRun.objects.filter(journey=journey, status="waiting").count() == 30 or None,
             timeout=30, message="the 30 French profiles to enter")  # fmt: skip
    assert audience_progress(journey)["finished_at"] is not None
    assert JourneyRun.objects.filter(journey=journey).count() == 30


@pytest.mark.worker
def test_the_worker_line_on_the_audiences_queue_alone_enters_the_segment(workers, world, french):
    """`make run`'s `audiences` line: the ticks reach it, whatever the main worker is busy with."""
    journey = _audience_journey(world, french, rate=50)
    workers.start(queues="audiences")
    wait_for(lambda: JourneyRun.objects.filter(journey=journey).count() == 30 or None,
             timeout=30, message="the 30 French profiles to enter")  # fmt: skip
    assert audience_progress(journey)["entered"] == 30


def test_a_segment_a_journey_enters_cannot_be_deleted_until_that_journey_is_archived(world, french):
    audience = {"segment": french.pk, "rate_per_s": 10}
    journey = journey_create(organization=world.acme, data={"name": "News", "audience": audience})
    client = token_client(world.user("marketer"))
    refused = client.delete(f"/api/v1/orgs/acme/segments/{french.pk}/")
    assert refused.status_code == 409 and "News v1" in refused.json()["detail"]
    admin = Client()
    admin.force_login(world.user("marketer"))
    page = admin.post(f"/admin/journeys/segment/{french.pk}/delete/", {"post": "yes"}, follow=True)
    assert "archive those journeys first" in page.content.decode()
    journey.status = Journey.Status.CLOSED
    journey.save()
    assert client.delete(f"/api/v1/orgs/acme/segments/{french.pk}/").status_code == 204
