"""The field picker: what expressions can read (names and types, never a customer's values), and a
warning for a field that nothing has had, such as profile.id where profile.external_id was meant."""

import pytest
from django.urls import reverse

from journeys.services import journey_create
from tests.conftest import token_client
from tests.journeys.helpers import PARAMETERS, cart_steps, drain, live_journey, send

ORG = "/api/v1/orgs/acme"
DELIVERY = {"type": "object", "properties": {"state": {"type": "string"}}}
SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}, "delivery": DELIVERY}}


@pytest.fixture
def journey(world, action, receiver):
    action.response_schema = SCHEMA
    action.save()
    journey = live_journey(world, cart_steps(action.pk), "check")
    send(world, profile="a", total=150.0)
    events_of_another_kind = {"name": "page_view", "profile_id": "a", "data": {"url": "/x"}}
    stored = token_client(world.user("admin")).post(f"{ORG}/events/", events_of_another_kind, format="json")
    assert stored.status_code in (200, 201, 202), stored.content
    drain()
    return journey


def fields_of(world, journey, role="viewer"):
    return token_client(world.user(role)).get(f"{ORG}/journeys/{journey.pk}/fields/").json()


def test_the_picker_lists_what_expressions_can_read(world, journey):
    found = {f["path"]: f for f in fields_of(world, journey)["fields"]}

    assert list(found)[0] == "profile.external_id"
    assert found["profile.phone"]["type"] == "string" and found["profile.first_name"]["source"] == "profile"
    assert found["event.data.total"]["type"] == "decimal"
    assert "event.data.url" not in found  # another event's field: not the entry event's
    assert "succeeded" in found["steps.sms.status"]["values"]
    assert found["steps.sms.response.delivery.state"]["type"] == "string"
    assert "now" in found


def test_the_picker_shows_no_customers_value(world, journey):
    assert "+33600000000" not in str(fields_of(world, journey)) and "Ada" not in str(fields_of(world, journey))


def test_a_field_nothing_has_had_is_warned_about(world, journey, action):
    steps = cart_steps(action.pk)
    steps[0]["branches"][0]["expression"] = 'event.data.totl > 100.0 && profile.id != ""'
    draft = journey_create(organization=world.acme, data={"name": "Typo", "entry_event": "cart_abandoned",
                                                          "start": "check", "steps": steps})  # fmt: skip
    warnings = fields_of(world, draft)["warnings"]

    assert warnings["steps[check].branches[0].expression"] == [
        "No \u201ccart_abandoned\u201d event has had a field \u201ctotl\u201d yet.",
        "No profile has had a field \u201cid\u201d yet (the customer's id is profile.external_id).",
    ]
    assert fields_of(world, journey)["warnings"] == {}  # the cart journey reads only fields seen


def test_a_new_organization_gets_no_warning(world, action):
    steps = cart_steps(action.pk)
    steps[1]["parameters"] = {**PARAMETERS, "phone": "profile.mobile"}
    draft = journey_create(organization=world.acme, data={"name": "Fresh", "entry_event": "signup",
                                                          "start": "check", "steps": steps})  # fmt: skip
    assert fields_of(world, draft)["warnings"] == {}


def test_the_step_page_offers_the_fields_and_says_what_nothing_has_had(world, journey, action, client):
    steps = cart_steps(action.pk)
    steps[1]["parameters"] = {**PARAMETERS, "phone": "profile.mobile"}
    draft = journey_create(organization=world.acme, data={"name": "Typo", "entry_event": "cart_abandoned",
                                                          "start": "check", "steps": steps})  # fmt: skip
    client.force_login(world.user("marketer"))

    page = client.get(reverse("admin:journeys_journey_step", args=[draft.pk, "sms"])).content.decode()
    assert 'list="journey-fields"' in page and '<option value="profile.first_name">' in page
    assert '<option value="steps.sms.status">' not in page  # its own answer is not known where it runs
    assert "steps[sms].parameters.phone" in page and "\u201cmobile\u201d" in page
    journey_page = client.get(reverse("admin:journeys_journey_change", args=[draft.pk])).content.decode()
    assert "Fields nothing has had yet" in journey_page


def test_another_organization_gets_404_for_the_fields(world, journey):
    other = token_client(world.globex_admin.user)
    assert other.get(f"/api/v1/orgs/globex/journeys/{journey.pk}/fields/").status_code == 404


def test_an_attribute_whose_name_is_not_a_word_is_offered_in_brackets_and_breaks_nothing(world, journey, action):
    from journeys.services import profile_put

    profile_put(organization=world.acme, external_id="z", attributes={"first name": "Zoe", "a.b": {"c-d": 1}})
    steps = cart_steps(action.pk)
    steps[0]["branches"][0]["expression"] = 'profile["first name"] != "" && profile.nickname != ""'
    draft = journey_create(organization=world.acme, data={"name": "Spaces", "entry_event": "cart_abandoned",
                                                          "start": "check", "steps": steps})  # fmt: skip
    body = fields_of(world, draft)

    paths = {f["path"] for f in body["fields"]}
    assert {'profile["first name"]', 'profile["a.b"]', 'profile["a.b"]["c-d"]'} <= paths
    assert body["warnings"] == {
        "steps[check].branches[0].expression": ["No profile has had a field \u201cnickname\u201d yet."]
    }


def test_a_wait_event_step_offers_the_awaited_events_fields_and_later_steps_read_them_under_its_key(
    world, journey, client
):
    """Its condition's `event` is the event it waits for (here page_view), not the entry event."""
    steps = [
        {"key": "w", "type": "wait_event", "event": "page_view", "timeout_s": 60, "next": "done", "on_timeout": "done"},
        {"key": "done", "type": "end"},
    ]
    draft = journey_create(organization=world.acme, data={"name": "Reacts", "entry_event": "cart_abandoned",
                                                          "start": "w", "steps": steps})  # fmt: skip
    client.force_login(world.user("marketer"))
    page = client.get(reverse("admin:journeys_journey_step", args=[draft.pk, "w"])).content.decode()
    assert '<option value="event.data.url">' in page and '<option value="event.data.total">' not in page
    found = {f["path"] for f in fields_of(world, draft)["fields"]}
    assert "steps.w.event.data.url" in found and "event.data.total" in found
