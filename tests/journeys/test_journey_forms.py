"""A journey's first form asks only what can be answered before any step exists (no start), and
its entry event offers the event names the organization has already received."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from journeys.models import Event, Journey, Profile
from journeys.selectors import EVENT_NAMES_LISTED, recent_event_names


@pytest.fixture
def marketer(world, client):
    client.force_login(world.user("marketer"))
    return client


def received(organization, name: str, minutes_ago: int) -> Event:
    profile, _ = Profile.objects.get_or_create(organization=organization, external_id="cust-1")
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return Event.objects.create(organization=organization, profile=profile, name=name, occurred_at=at, received_at=at)


def offered(html: str) -> list[str]:
    """The names the entry event's input offers: its datalist's options, in order."""
    field = re.search(r'<input[^>]*name="entry_event"[^>]*>', html).group(0)
    list_id = re.search(r'list="([^"]+)"', field).group(1)
    datalist = re.search(rf'<datalist id="{list_id}">(.*?)</datalist>', html, re.S).group(1)
    return re.findall(r'<option value="([^"]*)"', datalist)


def test_the_add_form_has_no_start_and_offers_the_organizations_event_names(world, marketer):
    received(world.acme, "signup", minutes_ago=30)
    received(world.acme, "cart_abandoned", minutes_ago=20)
    received(world.acme, "signup", minutes_ago=1)  # received again, most recently: first
    received(world.acme, "order_paid", minutes_ago=10)
    received(world.globex, "globex_only", minutes_ago=0)  # another organization's: never offered

    html = marketer.get(reverse("admin:journeys_journey_add")).content.decode()
    assert 'name="start"' not in html and "The first step of every run." not in html
    assert offered(html) == ["signup", "order_paid", "cart_abandoned"]
    assert 'value="after_exit" selected' in html  # the reentry still starts as "after exit"

    response = marketer.post(reverse("admin:journeys_journey_add"),
                             {"name": "Welcome", "entry_event": "signup", "reentry": "never"})  # fmt: skip
    journey = Journey.objects.get(name="Welcome")
    assert response.status_code == 302 and journey.start == "" and journey.entry_event == "signup"


def test_the_settings_form_keeps_the_start_and_offers_the_event_names_too(world, marketer):
    received(world.acme, "signup", minutes_ago=5)
    received(world.globex, "globex_only", minutes_ago=0)
    journey = Journey.objects.create(organization=world.acme, name="Win back", entry_event="signup",
                                     steps=[{"key": "done", "type": "end"}], start="done")  # fmt: skip

    html = marketer.get(reverse("admin:journeys_journey_change", args=[journey.pk])).content.decode()
    assert re.search(r'<select name="start"[^>]*>.*<option value="done" selected>', html, re.S)
    assert offered(html) == ["signup"]


def test_event_names_are_distinct_latest_first_and_at_most_fifty(world):
    for number in range(EVENT_NAMES_LISTED + 5):
        received(world.acme, f"event_{number:02d}", minutes_ago=100 - number)
    received(world.acme, "event_00", minutes_ago=0)  # the oldest name, received again

    names = recent_event_names(world.acme)
    assert len(names) == EVENT_NAMES_LISTED == len(set(names))
    assert names[:3] == ["event_00", "event_54", "event_53"]
    assert recent_event_names(world.globex) == [] and recent_event_names(None) == []


def test_a_new_organization_gets_an_empty_list_and_a_name_is_escaped(world, marketer):
    html = marketer.get(reverse("admin:journeys_journey_add")).content.decode()
    assert offered(html) == []
    received(world.acme, '"><script>x</script>', minutes_ago=0)
    html = marketer.get(reverse("admin:journeys_journey_add")).content.decode()
    assert "<script>x</script>" not in html and offered(html) == ["&quot;&gt;&lt;script&gt;x&lt;/script&gt;"]
