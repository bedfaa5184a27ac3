"""Segments: CRUD and count through the API, the expression checked at save, and the admin pages."""

import re
import time

import pytest
from django.test import Client
from django.urls import reverse

from journeys.audience.segments import segment_count, segment_create, segment_sample
from journeys.models import Profile, Segment
from tenants.services import api_key_create
from tests.conftest import key_client, token_client

SEGMENTS = "/api/v1/orgs/acme/segments/"
FRENCH = {"name": "French buyers", "expression": 'profile.country == "FR" && profile.orders > 2'}


def _profiles(organization, rows):
    Profile.objects.bulk_create(
        [Profile(organization=organization, external_id=f"p{i}", attributes=a) for i, a in enumerate(rows)]
    )


@pytest.fixture
def known(world):
    """Three French buyers (p0, p2, p5) among seven profiles; globex has French buyers of its own."""
    _profiles(world.acme, [
        {"country": "FR", "orders": 3}, {"country": "FR", "orders": 1}, {"country": "FR", "orders": 9},
        {"country": "DE", "orders": 5}, {"orders": 7}, {"country": "FR", "orders": 4.5}, "not an object",
    ])  # fmt: skip
    Profile.objects.create(organization=world.globex, external_id="g1", attributes={"country": "FR", "orders": 8})


def test_a_marketer_creates_reads_updates_and_deletes_a_segment(world):
    marketer = token_client(world.user("marketer"))
    created = marketer.post(SEGMENTS, {**FRENCH, "description": "Buy often"}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert set(body) == {"id", "name", "description", "expression", "created_at", "updated_at"}
    one = f"{SEGMENTS}{body['id']}/"
    assert marketer.get(SEGMENTS).json()["results"][0]["name"] == "French buyers"
    assert marketer.get(one).json()["expression"] == FRENCH["expression"]
    assert marketer.patch(one, {"name": "FR"}, format="json").json()["name"] == "FR"
    replaced = marketer.put(one, {"name": "FR 2", "expression": "profile.orders > 1"}, format="json")
    assert replaced.status_code == 200 and replaced.json()["expression"] == "profile.orders > 1"
    assert marketer.delete(one).status_code == 204 and not Segment.objects.exists()


def test_an_expression_that_does_not_parse_is_a_400_naming_expression(world):
    admin = token_client(world.user("admin"))
    for expression in ["profile.country ==", "", "country == 1", "x" * 2001]:
        response = admin.post(SEGMENTS, {"name": "S", "expression": expression}, format="json")
        assert response.status_code == 400 and "expression" in response.json()["errors"], expression
    assert not Segment.objects.exists()


def test_a_segment_reads_only_the_profile(world):
    admin = token_client(world.user("technical"))
    for expression in ['event.name == "order"', 'steps.sms.status == "succeeded"']:
        response = admin.post(SEGMENTS, {"name": "S", "expression": expression}, format="json")
        assert response.status_code == 400
        assert "not" in response.json()["errors"]["expression"][0], response.json()
    segment = admin.post(SEGMENTS, {"name": "S", "expression": "profile.orders > 1"}, format="json").json()
    response = admin.patch(f"{SEGMENTS}{segment['id']}/", {"expression": "event.x == 1"}, format="json")
    assert response.status_code == 400 and "expression" in response.json()["errors"]
    assert Segment.objects.get().expression == "profile.orders > 1"


def test_names_are_unique_in_an_organization_and_fields_strict(world):
    admin = token_client(world.user("admin"))
    assert admin.post(SEGMENTS, FRENCH, format="json").status_code == 201
    again = admin.post(SEGMENTS, FRENCH, format="json")
    assert again.status_code == 400 and "name" in again.json()["errors"]
    other = token_client(world.globex_admin.user).post("/api/v1/orgs/globex/segments/", FRENCH, format="json")
    assert other.status_code == 201  # another organization may use the name
    unknown = admin.post(SEGMENTS, {**FRENCH, "name": "B", "owner": 1}, format="json")
    assert unknown.status_code == 400 and "owner" in unknown.json()["errors"]
    assert admin.post(SEGMENTS, {**FRENCH, "name": ["x"]}, format="json").status_code == 400


def test_count_is_right_on_a_known_set_and_never_counts_another_organization(world, known):
    segment = segment_create(organization=world.acme, data=FRENCH)
    response = token_client(world.user("viewer")).get(f"{SEGMENTS}{segment.pk}/count/")
    assert response.status_code == 200 and response.json() == {"count": 3}
    assert [p["external_id"] for p in segment_sample(segment=segment)] == ["p0", "p2", "p5"]
    loops = segment_create(organization=world.acme, data={"name": "L", "expression": "[1, 2].exists(x, x == 2)"})
    assert segment_count(segment=loops) == 7  # an expression with a loop, in the sandbox


def test_a_count_that_runs_out_of_expression_budget_is_refused_not_wrong(world, known, settings):
    settings.CONDUIT_EXPRESSION_BUDGET_S = 0.0
    segment = segment_create(organization=world.acme, data={"name": "L", "expression": "[1].exists(x, x == 1)"})
    response = token_client(world.user("viewer")).get(f"{SEGMENTS}{segment.pk}/count/")
    assert response.status_code == 429 and "over budget" in response.json()["detail"]


def test_roles_and_organizations(world, known):
    segment = segment_create(organization=world.acme, data=FRENCH)
    one = f"{SEGMENTS}{segment.pk}/"
    viewer = token_client(world.user("viewer"))
    assert viewer.get(one).status_code == 200
    assert viewer.post(SEGMENTS, {**FRENCH, "name": "V"}, format="json").status_code == 403
    assert viewer.patch(one, {"name": "V"}, format="json").status_code == 403
    assert viewer.delete(one).status_code == 403
    globex = token_client(world.globex_admin.user)
    for response in [globex.get(one), globex.get(f"{one}count/"), globex.patch(one, {"name": "x"}, format="json"),
                     globex.delete(one)]:  # fmt: skip
        assert response.status_code == 404
    theirs = segment_create(organization=world.globex, data=FRENCH)
    admin = token_client(world.user("admin"))
    assert admin.get(f"{SEGMENTS}{theirs.pk}/count/").status_code == 404
    assert admin.get(f"/api/v1/orgs/globex/segments/{theirs.pk}/count/").status_code == 404
    assert globex.get(f"/api/v1/orgs/globex/segments/{theirs.pk}/count/").json() == {"count": 1}
    _, raw = api_key_create(organization=world.acme, name="writer", scopes=["profiles:write", "events:write"])
    assert key_client(raw).post(SEGMENTS, {**FRENCH, "name": "K"}, format="json").status_code == 403
    assert Segment.objects.filter(organization=world.acme).count() == 1


def test_counting_a_hundred_thousand_profiles(world):
    """Not a timed test: the figure goes to the README; the bound only catches a query per profile."""
    Profile.objects.bulk_create(
        [Profile(organization=world.acme, external_id=f"c{i}", attributes={"country": "FR" if i % 3 else "DE",
                 "orders": i % 7, "email": f"c{i}@example.com"}) for i in range(100_000)], batch_size=5000,
    )  # fmt: skip
    segment = segment_create(organization=world.acme, data=FRENCH)
    started = time.perf_counter()
    count = segment_count(segment=segment)
    spent = time.perf_counter() - started
    assert count == sum(1 for i in range(100_000) if i % 3 and i % 7 > 2)
    print(f"\ncounted 100,000 profiles in {spent:.2f} s")
    assert spent < 60


# --- the admin ---------------------------------------------------------------------------------------


@pytest.fixture
def marketer(world):
    client = Client()
    client.force_login(world.user("marketer"))
    return client


def _field_errors(response, field):
    found = re.search(rf'errors field-{field}">\s*<ul class="errorlist[^>]*>(.*?)</ul>', response.content.decode(),
                      re.S)  # fmt: skip
    return found.group(1) if found else ""


def test_the_admin_checks_the_expression_on_its_field(world, marketer):
    response = marketer.post(reverse("admin:journeys_segment_add"), {"name": "S", "expression": "event.x == 1",
                                                                     "description": ""})  # fmt: skip
    assert response.status_code == 200 and "event" in _field_errors(response, "expression")
    response = marketer.post(reverse("admin:journeys_segment_add"), {"name": "S", "expression": "profile.a ==",
                                                                     "description": ""})  # fmt: skip
    assert "does not parse" in _field_errors(response, "expression")
    response = marketer.post(reverse("admin:journeys_segment_add"), {**FRENCH, "description": ""})
    assert response.status_code == 302
    assert Segment.objects.get().organization == world.acme
    response = marketer.post(reverse("admin:journeys_segment_add"), {**FRENCH, "description": ""})
    assert "name" in _field_errors(response, "name")


def test_the_change_page_shows_the_count_and_a_sample(world, marketer, known):
    segment = segment_create(organization=world.acme, data=FRENCH)
    html = marketer.get(reverse("admin:journeys_segment_change", args=[segment.pk])).content.decode()
    assert "3 profiles match this segment now." in html
    sample = re.search(r'<table id="segment-sample">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r"<tr><td>(p\d)</td>", sample) == ["p0", "p2", "p5"] and "country: FR" in sample
    assert not re.search(r"\bg1\b", html)  # the other organization's profile (a token may hold "g1")


def test_another_organizations_segment_is_not_found_in_the_admin(world, marketer):
    theirs = segment_create(organization=world.globex, data=FRENCH)
    response = marketer.get(reverse("admin:journeys_segment_change", args=[theirs.pk]))
    assert response.status_code == 404 and "French buyers" not in response.content.decode()
    assert "French buyers" not in marketer.get(reverse("admin:journeys_segment_changelist")).content.decode()
    viewer = Client()
    viewer.force_login(world.user("viewer"))
    assert viewer.post(reverse("admin:journeys_segment_add"), {**FRENCH, "description": ""}).status_code == 403
