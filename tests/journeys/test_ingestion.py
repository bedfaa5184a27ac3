"""Event ingestion and profiles through the API (SPEC section 4)."""

import json

import pytest

from journeys.models import Event, Profile
from tenants.services import api_key_create
from tests.conftest import key_client, token_client

EVENTS = "/api/v1/orgs/acme/events/"


@pytest.fixture
def sender(world):
    _, raw = api_key_create(organization=world.acme, name="shop", scopes=["events:write"])
    return key_client(raw)


def _event(i=0, **extra):
    return {"id": f"evt-{i}", "name": "cart_abandoned", "profile_id": "cust-42", "data": {"total": 10 + i}, **extra}


def test_one_event_is_stored_and_its_profile_created(sender, world):
    response = sender.post(EVENTS, _event(profile={"first_name": "Ada"}), format="json")
    assert response.status_code == 202 and response.json() == {"accepted": 1, "duplicates": 0}
    event = Event.objects.get()
    assert (event.organization, event.name, event.data) == (world.acme, "cart_abandoned", {"total": 10})
    assert event.profile.attributes == {"first_name": "Ada"}


def test_a_batch_merges_profiles_and_stores_an_id_once(sender):
    batch = [_event(0, profile={"a": 1}), _event(1, profile={"b": 2}), _event(0), _event(2, profile_id="cust-7")]
    assert sender.post(EVENTS, batch, format="json").json() == {"accepted": 3, "duplicates": 1}
    assert sender.post(EVENTS, batch, format="json").json() == {"accepted": 0, "duplicates": 4}
    assert Event.objects.count() == 3
    assert Profile.objects.get(external_id="cust-42").attributes == {"a": 1, "b": 2}
    assert Profile.objects.filter(external_id="cust-7").exists()


def test_events_without_an_id_are_each_stored(sender):
    sender.post(EVENTS, [{"name": "view", "profile_id": "p"}] * 3, format="json")
    assert Event.objects.count() == 3


def test_a_batch_with_bad_items_is_refused_whole_naming_indexes_and_fields(sender):
    batch = [_event(0), {"profile_id": "x"}, _event(2, occurred_at="yesterday"), _event(3, color="red"), "text"]
    response = sender.post(EVENTS, batch, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"events[1]", "events[2]", "events[3]", "events[4]"}
    assert "name" in errors["events[1]"] and "occurred_at" in errors["events[2]"] and "color" in errors["events[3]"]
    assert not Event.objects.exists() and not Profile.objects.exists()


def test_size_limits(sender):
    big = _event(data={"blob": "x" * 70_000})
    response = sender.post(EVENTS, [_event(0), big], format="json")
    assert response.status_code == 400 and response.json()["errors"]["events[1]"] == {
        "event": ["is larger than 64 KB."]
    }
    huge = [_event(i, data={"blob": "x" * 60_000}) for i in range(20)]
    response = sender.post(EVENTS, huge, format="json")
    assert response.status_code == 413 and "1 MiB" in response.json()["detail"]
    response = sender.post(EVENTS, [{"name": "n", "profile_id": "p"}] * 1001, format="json")
    assert response.status_code == 400 and "At most 1000" in response.json()["errors"]["events"][0]
    assert not Event.objects.exists()


def test_malformed_json_and_wrong_shapes_get_400(sender):
    assert sender.post(EVENTS, data="{nope", content_type="application/json").status_code == 400
    assert sender.post(EVENTS, [], format="json").status_code == 400
    assert sender.post(EVENTS, data=json.dumps(5), content_type="application/json").status_code == 400


def test_keys_need_the_events_write_scope(world):
    _, raw = api_key_create(organization=world.acme, name="reader", scopes=["read"])
    assert key_client(raw).post(EVENTS, _event(), format="json").status_code == 403
    _, globex = api_key_create(organization=world.globex, name="g", scopes=["events:write"])
    assert key_client(globex).post(EVENTS, _event(), format="json").status_code == 404


def test_profile_put_creates_then_replaces_and_get_reads_it(world):
    client = token_client(world.user("technical"))
    url = "/api/v1/orgs/acme/profiles/cust%2042@x/"
    assert client.put(url, {"attributes": {"a": 1}}, format="json").status_code == 201
    assert client.put(url, {"attributes": {"b": 2}}, format="json").status_code == 200
    assert client.get(url).json()["attributes"] == {"b": 2}
    assert client.put(url, {"attributes": "x"}, format="json").status_code == 400
    assert token_client(world.user("technical")).get("/api/v1/orgs/acme/profiles/nobody/").status_code == 404
    assert token_client(world.globex_admin.user).get("/api/v1/orgs/globex/profiles/cust%2042@x/").status_code == 404
