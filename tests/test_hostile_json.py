"""JSON that cannot be stored is refused where it comes in: 400 naming the limit or the field."""

import json

import pytest
from rest_framework.test import APIClient

from journeys.models import Event, Profile
from tenants.services import api_key_create
from tests.conftest import key_client

EVENTS = "/api/v1/orgs/acme/events/"


@pytest.fixture
def shop(world):
    return key_client(api_key_create(organization=world.acme, name="shop", scopes=["events:write"])[1])


def post_raw(client, url: str, text: str):
    return client.generic("POST", url, text.encode(), content_type="application/json")


def nested(depth: int, opening: str = "[", closing: str = "]", inner: str = "1") -> str:
    return opening * depth + inner + closing * depth


@pytest.mark.parametrize(
    "body",
    [
        nested(10_000),  # arrays, past what the decoder itself can take
        nested(10_000, '{"a":', "}"),  # objects
        nested(5_000, '[{"a":', "}]"),  # both, in turn
        nested(65),  # just past the limit
    ],
    ids=["arrays", "objects", "both", "65-levels"],
)
def test_json_nested_too_deep_is_a_400_naming_the_limit_even_anonymously(db, body):
    response = post_raw(APIClient(), "/api/v1/auth/token/", body)
    assert response.status_code == 400, response.content[:200]
    assert "nested at most 64 levels" in response.json()["detail"]


def test_deep_event_data_is_refused_and_nothing_is_stored(world, shop):
    event = {"name": "cart", "profile_id": "p1", "data": json.loads(nested(70, '{"x":', "}"))}
    response = shop.post(EVENTS, [{"name": "ok", "profile_id": "p0"}, event], format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("[1].data.x.x")
    assert not Event.objects.exists()


def test_event_data_nested_to_the_limit_is_stored(world, shop):
    data = json.loads(nested(62, '{"x":', "}"))  # the event and its data make 64 levels
    response = shop.post(EVENTS, {"id": "deep", "name": "cart", "profile_id": "p1", "data": data}, format="json")
    assert response.status_code == 202, response.content
    assert Event.objects.get(client_id="deep").data == data


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"name": "cart", "profile_id": "p1", "data": {"total": 1e400}}', "data.total"),
        ('{"name": "cart", "profile_id": "p1", "data": {"items": [1, -1e999]}}', "data.items[1]"),
        ('{"name": "cart", "profile_id": "p1", "profile": {"score": 1E+309}}', "profile.score"),
        ('[{"name": "a", "profile_id": "p1"}, {"name": "b", "profile_id": "p2", "data": {"t": 9e9999}}]', "[1].data.t"),
    ],
)
def test_a_number_out_of_range_is_a_400_naming_its_field_and_nothing_is_stored(world, shop, text, where):
    response = post_raw(shop, EVENTS, text)
    assert response.status_code == 400, response.content
    assert response.json()["detail"] == f"{where}: numbers must be finite (this one is out of range)."
    assert not Event.objects.exists() and not Profile.objects.exists()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_are_a_400(world, shop, literal):
    response = post_raw(shop, EVENTS, f'{{"name": "cart", "profile_id": "p1", "data": {{"x": {literal}}}}}')
    assert response.status_code == 400
    assert not Event.objects.exists()


def test_an_integer_with_thousands_of_digits_is_a_400(world, shop):
    response = post_raw(shop, EVENTS, '{"name": "cart", "profile_id": "p1", "data": {"x": ' + "9" * 5000 + "}}")
    assert response.status_code == 400
    assert not Event.objects.exists()


def test_every_accepted_event_is_stored(world, shop):
    events = [
        {"id": f"e{i}", "name": "cart", "profile_id": f"p{i % 3}", "data": {"total": 1e308, "n": -(2**53), "f": 1e-320}}
        for i in range(20)
    ]
    response = shop.post(EVENTS, events, format="json")
    assert response.status_code == 202 and response.json()["accepted"] == 20
    assert set(Event.objects.values_list("client_id", flat=True)) == {f"e{i}" for i in range(20)}
    assert float(Event.objects.get(client_id="e0").data["total"]) == 1e308  # PostgreSQL gives it back as an integer


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"name": "c", "profile_id": "p1", "data": {"note": "a\\ud800"}}', "data.note: text may not contain a lone"),
        ('{"name": "c", "profile_id": "p1", "profile": {"n": "\\udfff"}}', "profile.n: text may not contain a lone"),
        ('{"name": "c", "profile_id": "p1", "data": {"\\uDBFF": 1}}', "data: text may not contain a lone"),
        ('{"name": "c", "profile_id": "p1", "data": {"x": "a\\u0000b"}}', "data.x: text may not contain the NUL"),
    ],
    ids=["data", "profile", "a-key", "nul"],
)
def test_lone_surrogates_and_nul_are_a_400_naming_the_field(world, shop, text, problem):
    """No character, so no UTF-8 (PostgreSQL's JSON, a log line, a request) can carry one."""
    response = post_raw(shop, EVENTS, text)
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith(problem)
    assert not Event.objects.exists() and not Profile.objects.exists()


def test_a_surrogate_pair_is_one_character_and_is_stored(world, shop):
    response = post_raw(shop, EVENTS, '{"id": "e1", "name": "c", "profile_id": "p1", "data": {"s": "\\ud83d\\ude00"}}')
    assert response.status_code == 202
    assert Event.objects.get(client_id="e1").data == {"s": "\U0001f600"}


def test_a_profile_put_with_a_lone_surrogate_is_a_400(world):
    from tests.conftest import token_client

    client = token_client(world.user("admin"))
    response = client.generic(
        "PUT", "/api/v1/orgs/acme/profiles/p1/", b'{"attributes": {"n": "\\ud800"}}', content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["detail"].startswith("attributes.n:")
    assert not Profile.objects.exists()


def test_a_provider_answer_with_a_lone_surrogate_is_kept_as_a_replacement_character(db):
    from actions.models import Invocation
    from journeys.steps import outcome_entry

    entry = outcome_entry(Invocation(outcome="succeeded", response_body='{"id": "m\\ud800", "\\udc00": 1}'))
    assert entry["response"] == {"id": "m\ufffd", "\ufffd": 1}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "u" * 151, "password": "x"}, "username"),
        ({"username": "admin", "password": "x" * 4097}, "password"),
        ({"username": "admin", "password": "x", "otp": "1"}, "otp"),
    ],
)
def test_a_login_past_its_bounds_or_with_an_unknown_field_is_a_400_naming_it(db, body, field):
    response = APIClient().post("/api/v1/auth/token/", body, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"to": "\\ud800"}', "to: text may not contain a lone surrogate"),
        ('{"to": "a\\u0000"}', "to: text may not contain the NUL character"),
        ('{"total": 1e400}', "total: numbers must be finite"),
        ("[" * 100 + "]" * 100, "nested at most 32 levels"),  # the body's own bound (template_bounds.py)
        ("[" * 100_000 + "]" * 100_000, "nested at most 32 levels"),  # past what the decoder can take
    ],
    ids=["surrogate", "nul", "1e400", "100-deep", "100000-deep"],
)
def test_the_admins_json_boxes_refuse_what_the_api_refuses(world, client, body, problem):
    """The action form's JSON boxes read JSON themselves: the same checks, an error on the field, no 500."""
    from django.urls import reverse

    from actions.models import Action
    from tests.actions.test_admin import FORM

    client.force_login(world.user("technical"))
    response = client.post(reverse("admin:actions_action_add"), {**FORM, "body": body})
    assert response.status_code == 200
    assert problem in " ".join(response.context["adminform"].form.errors["body"])
    assert not Action.objects.exists()
