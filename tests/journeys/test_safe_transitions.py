"""Publish, pause, stop and archive say what they will do and act only once confirmed; an archived or
stopped journey is started over as a copy; Publish stays disabled while the checklist has problems."""

import html

import pytest
from django.urls import reverse

from journeys.models import Journey, JourneyRun
from journeys.services import journey_create, journey_stop
from tests.conftest import token_client
from tests.journeys.helpers import drain, live_journey, send

ORG = "/api/v1/orgs/acme"
WAITING = [{"key": "pause", "type": "wait", "duration_s": 3600, "next": "done"}, {"key": "done", "type": "end"}]


def url(view: str, *args) -> str:
    return reverse(f"admin:journeys_journey_{view}", args=args)


def page_of(client, journey) -> str:
    return html.unescape(client.get(url("change", journey.pk)).content.decode())


@pytest.fixture
def marketer(world, client):
    client.force_login(world.user("marketer"))
    return client


@pytest.fixture
def waiting(world):
    """A live journey with two runs waiting in it."""
    journey = live_journey(world, WAITING, "pause")
    send(world, profile="a")
    send(world, profile="b")
    drain()
    assert JourneyRun.objects.filter(journey=journey, status="waiting").count() == 2
    return journey


def test_stop_says_how_many_runs_will_end_before_it_acts(marketer, waiting):
    text = page_of(marketer, waiting)

    assert "2 open runs will end as stopped, and their calls not yet sent are cancelled." in text
    assert "2 open runs will be held where they are" in text  # pause
    waiting.refresh_from_db()
    assert waiting.status == "live"  # showing what a button does does nothing


def test_a_transition_without_its_confirmation_does_nothing(marketer, waiting):
    response = marketer.post(url("transition", waiting.pk, "stop"), follow=True)

    assert "Nothing was done: confirm first." in html.unescape(response.content.decode())
    waiting.refresh_from_db()
    assert waiting.status == "live"
    assert JourneyRun.objects.filter(journey=waiting, status="waiting").count() == 2


def test_confirmed_stop_ends_the_runs(marketer, waiting):
    marketer.post(url("transition", waiting.pk, "stop"), {"confirm": "yes"})

    waiting.refresh_from_db()
    assert waiting.status == "stopped"
    assert set(JourneyRun.objects.filter(journey=waiting).values_list("status", flat=True)) == {"stopped"}


def test_close_is_archive_and_an_archived_journey_is_duplicated_into_a_new_draft(marketer, waiting):
    journey_stop(journey=waiting)
    text = page_of(marketer, waiting)
    assert 'value="Yes, archive"' in text and "It is archived for good" in text
    assert "Close" not in text

    marketer.post(url("transition", waiting.pk, "close"), {"confirm": "yes"})
    text = page_of(marketer, waiting)
    assert "Archived" in text and 'value="Yes, duplicate"' in text

    response = marketer.post(url("transition", waiting.pk, "duplicate"), {"confirm": "yes"})
    copy = Journey.objects.get(name="Cart (copy)")
    assert response["Location"] == url("change", copy.pk)
    assert (copy.status, copy.version, copy.previous_id) == ("draft", 1, None)
    assert (copy.steps, copy.start, copy.entry_event) == (waiting.steps, waiting.start, waiting.entry_event)
    assert not JourneyRun.objects.filter(journey=copy).exists()


def test_publish_is_disabled_while_the_checklist_has_problems(world, marketer):
    draft = journey_create(organization=world.acme, data={"name": "Half", "entry_event": "", "start": "",
                                                          "steps": []})  # fmt: skip
    text = page_of(marketer, draft)

    assert "Before it can be published" in text
    assert 'disabled title="Fix the problems listed below first.">Publish</button>' in text
    # The confirmation is there for the canvas to show once the problems are fixed, hidden until then.
    assert '<details class="journey-confirm" data-publish-ready hidden>' in text


def test_publishing_says_the_event_that_will_start_runs(world, marketer):
    draft = journey_create(organization=world.acme, data={"name": "Ready", "entry_event": "signup",
                                                          "start": "done", "steps": [WAITING[1]]})  # fmt: skip
    assert "It goes live: from now on each \u201csignup\u201d event starts a run." in page_of(marketer, draft)


def test_the_api_archives_and_duplicates(world, waiting):
    marketer = token_client(world.user("marketer"))
    journey_stop(journey=waiting)

    assert marketer.post(f"{ORG}/journeys/{waiting.pk}/archive/").json()["status"] == "closed"
    response = marketer.post(f"{ORG}/journeys/{waiting.pk}/duplicate/")
    assert response.status_code == 201
    assert (response.json()["name"], response.json()["status"], response.json()["version"]) == (
        "Cart (copy)", "draft", 1)  # fmt: skip


def test_a_long_name_still_fits_once_copied(world):
    journey = journey_create(organization=world.acme, data={"name": "n" * 200, "entry_event": "x", "steps": []})
    copy = token_client(world.user("marketer")).post(f"{ORG}/journeys/{journey.pk}/duplicate/").json()
    assert copy["name"] == "n" * 193 + " (copy)"


def test_a_viewer_cannot_duplicate_and_another_organization_gets_404(world, waiting, client):
    assert token_client(world.user("viewer")).post(f"{ORG}/journeys/{waiting.pk}/duplicate/").status_code == 403
    other = token_client(world.globex_admin.user)
    assert other.post(f"/api/v1/orgs/globex/journeys/{waiting.pk}/duplicate/").status_code == 404
    client.force_login(world.user("viewer"))
    assert client.post(url("transition", waiting.pk, "duplicate"), {"confirm": "yes"}).status_code == 403
    assert Journey.objects.count() == 1
