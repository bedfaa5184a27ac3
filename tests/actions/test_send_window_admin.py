"""Send windows in the admin: the action form's days, times and dates to skip, the invocation page's wait, and the
organization's default time zone, checked as an IANA name."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from actions.models import Action, Invocation
from tests.actions.helpers import make_action
from tests.actions.test_admin import FORM


@pytest.fixture
def technical(world, client):
    client.force_login(world.user("technical"))
    return client


def test_the_action_form_saves_a_window_from_checkboxes_times_and_lines(technical):
    response = technical.post(reverse("admin:actions_action_add"), {
        **FORM, "send_window_days": ["0", "1", "2", "3", "4"], "send_window_start": "22:00",
        "send_window_end": "06:00", "send_window_skip_dates": "2026-12-25\n2027-01-01\n",
    })  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors
    action = Action.objects.get(name="Send SMS")
    assert action.send_window == {"days": [0, 1, 2, 3, 4], "start": "22:00", "end": "06:00",
                                  "skip_dates": ["2026-12-25", "2027-01-01"]}  # fmt: skip
    page = technical.get(reverse("admin:actions_action_change", args=[action.pk])).content.decode()
    assert "Send window" in page and 'value="22:00"' in page and "2027-01-01" in page
    assert 'name="send_window_days" value="4" id="id_send_window_days_4" checked' in page


def test_the_action_form_names_the_part_of_a_malformed_window(technical):
    response = technical.post(reverse("admin:actions_action_add"), {
        **FORM, "send_window_start": "09:00", "send_window_skip_dates": "Christmas",
    })  # fmt: skip
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert (
        "required" in errors["send_window_end"][0] and "Christmas is not a date" in errors["send_window_skip_dates"][0]
    )
    refused = technical.post(reverse("admin:actions_action_add"), {**FORM, "send_window_start": "25:00"})
    assert "send_window_start" in refused.context["adminform"].form.errors
    assert refused.status_code == 200 and not Action.objects.exists()


def test_no_window_filled_in_means_any_time(technical):
    response = technical.post(reverse("admin:actions_action_add"), FORM)
    assert response.status_code == 302
    assert Action.objects.get().send_window is None


def test_the_invocation_page_says_until_when_a_call_waits(world, client):
    action = make_action(world.acme)
    invocation = Invocation.objects.create(
        organization=world.acme, action=action, request={}, time_zone="Europe/Paris",
        window_wait_until=datetime(2026, 6, 2, 7, 0, tzinfo=UTC),
    )  # fmt: skip
    client.force_login(world.user("viewer"))
    page = client.get(reverse("admin:actions_invocation_change", args=[invocation.pk])).content.decode()
    assert "waiting for the send window until 2026-06-02 09:00 (Europe/Paris)" in page
    client.force_login(world.globex_admin.user)
    assert client.get(reverse("admin:actions_invocation_change", args=[invocation.pk])).status_code in (302, 404)


def test_the_organizations_default_time_zone_must_be_an_iana_name(world, client, admin_user):
    client.force_login(admin_user)
    url = reverse("admin:tenants_organization_change", args=[world.acme.pk])
    form = {"slug": "acme", "name": "Acme Inc", "is_active": "on", "time_zone_attribute": "timezone"}
    for bad in ("Paris", "../../etc/passwd", "europe/paris"):
        refused = client.post(url, {**form, "default_time_zone": bad})
        assert refused.status_code == 200 and "Not a time zone" in refused.content.decode()
    assert client.post(url, {**form, "default_time_zone": "Europe/Paris\x00"}).status_code == 200
    assert client.post(url, {**form, "default_time_zone": "Europe/Paris"}).status_code == 302
    world.acme.refresh_from_db()
    assert world.acme.default_time_zone == "Europe/Paris"
