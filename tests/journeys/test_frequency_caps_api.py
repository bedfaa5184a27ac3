"""Frequency caps through the API and the admin, and actions' categories: isolation, roles, 400s naming fields."""

import re

import pytest
from django import forms
from django.test import Client
from django.urls import reverse

from journeys.models import FrequencyCap, Journey
from tenants.services import api_key_create
from tests.actions.helpers import make_action
from tests.conftest import key_client, token_client

CAPS = "/api/v1/orgs/acme/frequency-caps/"
WEEKLY = {"category": "marketing-sms", "max_calls": 2, "period_days": 7}


def test_a_technical_user_creates_reads_updates_and_deletes_a_cap(world):
    technical = token_client(world.user("technical"))
    created = technical.post(CAPS, WEEKLY, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert set(body) == {"id", "category", "max_calls", "period_days", "created_at", "updated_at"}
    one = f"{CAPS}{body['id']}/"
    assert technical.get(CAPS).json()["results"][0]["category"] == "marketing-sms"
    assert technical.patch(one, {"max_calls": 3}, format="json").json()["max_calls"] == 3
    replaced = technical.put(one, {"category": "promotions", "max_calls": 1, "period_days": 1}, format="json")
    assert replaced.status_code == 200 and replaced.json()["category"] == "promotions"
    assert technical.delete(one).status_code == 204 and not FrequencyCap.objects.exists()


def test_several_caps_per_category_one_per_period(world):
    admin = token_client(world.user("admin"))
    assert admin.post(CAPS, WEEKLY, format="json").status_code == 201
    assert admin.post(CAPS, {**WEEKLY, "period_days": 1, "max_calls": 1}, format="json").status_code == 201
    again = admin.post(CAPS, {**WEEKLY, "max_calls": 5}, format="json")
    assert again.status_code == 400 and "category" in again.json()["errors"]
    other = token_client(world.globex_admin.user).post("/api/v1/orgs/globex/frequency-caps/", WEEKLY, format="json")
    assert other.status_code == 201  # another organization has caps of its own


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category": "Marketing SMS"}, "category"),
        ({"category": "-sms"}, "category"),
        ({"category": "x" * 65}, "category"),
        ({"category": ["sms"]}, "category"),
        ({"category": None}, "category"),
        ({"max_calls": 0}, "max_calls"),
        ({"max_calls": -1}, "max_calls"),
        ({"max_calls": "two"}, "max_calls"),
        ({"max_calls": True}, "max_calls"),
        ({"period_days": 0}, "period_days"),
        ({"period_days": 91}, "period_days"),
        ({"period_days": 2**70}, "period_days"),
        ({"owner": 1}, "owner"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(world, change, field):
    response = token_client(world.user("admin")).post(CAPS, {**WEEKLY, **change}, format="json")
    assert response.status_code == 400 and field in response.json()["errors"], response.json()
    assert not FrequencyCap.objects.exists()


def test_a_cap_without_its_numbers_is_a_400(world):
    response = token_client(world.user("admin")).post(CAPS, {"category": "sms"}, format="json")
    assert response.status_code == 400 and {"max_calls", "period_days"} <= set(response.json()["errors"])


def test_marketers_and_viewers_read_caps_but_only_admins_and_technical_users_write(world):
    cap = FrequencyCap.objects.create(organization=world.acme, **WEEKLY)
    one = f"{CAPS}{cap.pk}/"
    for role in ("marketer", "viewer"):
        client = token_client(world.user(role))
        assert client.get(CAPS).status_code == 200 and client.get(one).status_code == 200
        assert client.post(CAPS, {**WEEKLY, "period_days": 1}, format="json").status_code == 403
        assert client.patch(one, {"max_calls": 9}, format="json").status_code == 403
        assert client.delete(one).status_code == 403
    _, raw = api_key_create(organization=world.acme, name="reader", scopes=["read"])
    assert key_client(raw).get(CAPS).status_code == 200
    assert key_client(raw).post(CAPS, {**WEEKLY, "period_days": 1}, format="json").status_code == 403
    assert FrequencyCap.objects.get().max_calls == 2


def test_another_organizations_caps_are_404(world):
    theirs = FrequencyCap.objects.create(organization=world.globex, **WEEKLY)
    admin = token_client(world.user("admin"))
    one = f"{CAPS}{theirs.pk}/"
    assert admin.get(one).status_code == 404
    assert admin.patch(one, {"max_calls": 9}, format="json").status_code == 404
    assert admin.delete(one).status_code == 404
    assert admin.get(CAPS).json()["results"] == []
    assert admin.get("/api/v1/orgs/globex/frequency-caps/").status_code == 404
    assert admin.post("/api/v1/orgs/globex/frequency-caps/", WEEKLY, format="json").status_code == 404
    assert FrequencyCap.objects.get().max_calls == 2


# --- an action's categories --------------------------------------------------------------


def test_an_action_is_tagged_with_categories_through_the_api(world):
    technical = token_client(world.user("technical"))
    action = make_action(world.acme)
    url = f"/api/v1/orgs/acme/actions/{action.pk}/"
    assert technical.get(url).json()["categories"] == []
    response = technical.patch(url, {"categories": ["marketing-sms", "promotions"]}, format="json")
    assert response.status_code == 200 and response.json()["categories"] == ["marketing-sms", "promotions"]
    action.refresh_from_db()
    assert action.categories == ["marketing-sms", "promotions"]
    assert token_client(world.user("marketer")).patch(url, {"categories": []}, format="json").status_code == 403


@pytest.mark.parametrize(
    "categories", ["marketing-sms", [f"c{n}" for n in range(21)], ["Not A Slug"], [1], ["sms", "sms"], None]
)
def test_bad_categories_are_a_400_naming_categories(world, categories):
    action = make_action(world.acme)
    response = token_client(world.user("admin")).patch(
        f"/api/v1/orgs/acme/actions/{action.pk}/", {"categories": categories}, format="json"
    )
    assert response.status_code == 400 and "categories" in response.json()["errors"], response.json()
    action.refresh_from_db()
    assert action.categories == []


# --- the admin -----------------------------------------------------------------------------


def _client(world, role):
    client = Client()
    client.force_login(world.user(role))
    return client


def _field_errors(response, field):
    found = re.search(rf'errors field-{field}">\s*<ul class="errorlist[^>]*>(.*?)</ul>', response.content.decode(),
                      re.S)  # fmt: skip
    return found.group(1) if found else ""


def test_the_admin_lists_adds_and_changes_caps_of_the_active_organization(world):
    technical = _client(world, "technical")
    FrequencyCap.objects.create(organization=world.globex, category="theirs", max_calls=1, period_days=1)
    add = reverse("admin:journeys_frequencycap_add")
    response = technical.post(add, {"category": "Bad Slug", "max_calls": 0, "period_days": 7})
    assert response.status_code == 200 and "category" in _field_errors(response, "category")
    assert _field_errors(response, "max_calls")
    assert technical.post(add, WEEKLY).status_code == 302
    cap = FrequencyCap.objects.get(organization=world.acme)
    again = technical.post(add, WEEKLY)
    assert "already has a cap" in _field_errors(again, "category")
    change = reverse("admin:journeys_frequencycap_change", args=[cap.pk])
    assert technical.post(change, {**WEEKLY, "max_calls": 4}).status_code == 302
    cap.refresh_from_db()
    assert cap.max_calls == 4
    listing = technical.get(reverse("admin:journeys_frequencycap_changelist")).content.decode()
    assert "marketing-sms" in listing and "theirs" not in listing


def test_in_the_admin_marketers_read_caps_and_another_organizations_are_not_found(world):
    cap = FrequencyCap.objects.create(organization=world.acme, **WEEKLY)
    theirs = FrequencyCap.objects.create(organization=world.globex, category="theirs", max_calls=1, period_days=1)
    marketer = _client(world, "marketer")
    assert "marketing-sms" in marketer.get(reverse("admin:journeys_frequencycap_changelist")).content.decode()
    assert marketer.get(reverse("admin:journeys_frequencycap_change", args=[cap.pk])).status_code == 200
    assert marketer.post(reverse("admin:journeys_frequencycap_add"), {**WEEKLY, "period_days": 1}).status_code == 403
    changed = marketer.post(reverse("admin:journeys_frequencycap_change", args=[cap.pk]), {**WEEKLY, "max_calls": 9})
    assert changed.status_code == 403
    response = _client(world, "admin").get(reverse("admin:journeys_frequencycap_change", args=[theirs.pk]))
    assert response.status_code == 404 and "theirs" not in response.content.decode()


def _sent_back(response) -> dict:
    """What a browser sends back from a change page (secrets blank, boxes unticked)."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if not isinstance(field, forms.BooleanField):
            data[name] = "" if value is None else value
    return data


def test_the_action_form_takes_categories_as_words_separated_by_commas(world):
    action = make_action(world.acme, categories=["marketing-sms"])
    technical = _client(world, "technical")
    change = reverse("admin:actions_action_change", args=[action.pk])
    page = technical.get(change)
    assert 'name="categories"' in page.content.decode() and 'value="marketing-sms"' in page.content.decode()
    data = _sent_back(page)
    response = technical.post(change, {**data, "categories": "marketing-sms, promotions"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    action.refresh_from_db()
    assert action.categories == ["marketing-sms", "promotions"]
    response = technical.post(change, {**data, "categories": "marketing-sms, Not A Slug"})
    assert response.status_code == 200 and "Not A Slug" in _field_errors(response, "categories")
    action.refresh_from_db()
    assert action.categories == ["marketing-sms", "promotions"]


# --- on_capped in a journey ------------------------------------------------------------------


def test_on_capped_is_checked_at_publish_like_on_error(world):
    action = make_action(world.acme, categories=["marketing-sms"])
    admin = token_client(world.user("admin"))
    params = {"account": '"a1"', "phone": '"+33600000000"', "text": '"Hi"'}
    steps = [
        {"key": "sms", "type": "action", "action": action.pk, "parameters": params, "next": "done",
         "on_capped": "nowhere"},
        {"key": "done", "type": "end"},
    ]  # fmt: skip
    created = admin.post(
        "/api/v1/orgs/acme/journeys/",
        {"name": "Cart", "entry_event": "cart_abandoned", "steps": steps, "start": "sms"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    url = f"/api/v1/orgs/acme/journeys/{created.json()['id']}/"
    refused = admin.post(f"{url}publish/")
    assert refused.status_code == 400 and "steps[sms].on_capped" in refused.json()["errors"], refused.json()
    bad = admin.patch(url, {"steps": [{**steps[0], "on_capped": 3}, steps[1]]}, format="json")
    assert bad.status_code == 400 and "steps[sms].on_capped" in bad.json()["errors"]
    misplaced = admin.patch(url, {"steps": [steps[0], {**steps[1], "on_capped": "sms"}]}, format="json")
    assert misplaced.status_code == 400 and "steps[done].on_capped" in misplaced.json()["errors"]
    fixed = [steps[0] | {"on_capped": "held"}, steps[1], {"key": "held", "type": "end"}]
    assert admin.patch(url, {"steps": fixed}, format="json").status_code == 200
    assert admin.post(f"{url}publish/").status_code == 200


def test_the_step_form_and_the_diagram_show_on_capped(world):
    from journeys.admin.diagram import links

    action = make_action(world.acme, categories=["marketing-sms"])
    marketer = _client(world, "marketer")
    add = reverse("admin:journeys_journey_add")
    assert marketer.post(add, {"name": "Cart", "entry_event": "cart_abandoned", "reentry": "always"}).status_code == 302
    journey = Journey.objects.get(name="Cart")
    for key, kind in [("sms", "action"), ("done", "end"), ("held", "end")]:
        assert marketer.post(reverse("admin:journeys_journey_new_step", args=[journey.pk]),
                             {"key": key, "type": kind}).status_code == 302  # fmt: skip
    step = reverse("admin:journeys_journey_step", args=[journey.pk, "sms"])
    page = marketer.post(step, {"action": action.pk, "_choose_action": "1"}).content.decode()
    assert 'name="on_capped"' in page
    sms = {"action": action.pk, "param__account": '"a1"', "param__phone": '"+1"', "param__text": '"Hi"',
           "next": "done", "on_capped": "held"}  # fmt: skip
    assert marketer.post(step, sms).status_code == 302
    journey.refresh_from_db()
    saved = next(s for s in journey.steps if s["key"] == "sms")
    assert saved["on_capped"] == "held" and ("capped", "held") in links(saved)
    assert 'value="held" selected' in marketer.get(step).content.decode()
