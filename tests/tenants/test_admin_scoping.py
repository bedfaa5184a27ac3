"""The admin, through Django's test client, as each role of acme (and a user of both)."""

import re

import pytest
from django.contrib import admin
from django.urls import reverse

from tenants.models import ApiKey, Membership
from tenants.services import api_key_create
from tests.factories import MembershipFactory, UserFactory

GLOBEX_MARKERS = ["globex", "Globex"]


@pytest.fixture
def globex_rows(world):
    from journeys.models import Journey, JourneyRun, Profile, StepRun

    key, _ = api_key_create(organization=world.globex, name="Globex shop key", scopes=["read"])
    journey = Journey.objects.create(organization=world.globex, name="Globex journey", entry_event="globex_event")
    profile = Profile.objects.create(organization=world.globex, external_id="globex-customer")
    run = JourneyRun.objects.create(organization=world.globex, journey=journey, profile=profile, current_step="s")
    StepRun.objects.create(organization=world.globex, journey=journey, run=run, sequence=1, step_key="globex_step",
                           step_type="end", status="succeeded")  # fmt: skip
    return {"membership": world.globex_admin, "api key": key, "organization": world.globex, "journey": journey,
            "profile": profile, "run": run}  # fmt: skip


def _changelist_urls():
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist") for model in admin.site._registry
    ]


def _assert_no_globex(content: bytes, url: str) -> None:
    text = content.decode()
    for marker in GLOBEX_MARKERS:
        assert marker not in text, f"{marker} visible on {url}"


@pytest.mark.parametrize("role", ["admin", "technical", "marketer", "viewer"])
def test_no_globex_row_in_any_changelist(world, globex_rows, client, role):
    client.force_login(world.user(role))
    seen = 0
    for url in _changelist_urls():
        response = client.get(url)
        assert response.status_code in (200, 403), url
        if response.status_code == 200:
            seen += 1
            _assert_no_globex(response.content, url)
    assert seen >= 1


@pytest.mark.parametrize("role", ["admin", "technical", "marketer", "viewer"])
def test_globex_object_urls_do_not_open(world, globex_rows, client, role):
    client.force_login(world.user(role))
    for obj in globex_rows.values():
        meta = obj._meta
        for view in ("change", "delete", "history"):
            url = reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=[obj.pk])
            response = client.get(url, follow=True)
            assert response.status_code in (200, 403, 404)  # 200: redirected away with a message
            if response.status_code == 200:
                assert response.redirect_chain, f"{url} opened for {role}"
                _assert_no_globex(response.content, url)


def test_no_globex_object_in_any_dropdown_of_any_form(world, globex_rows, client):
    client.force_login(world.user("admin"))
    for model in admin.site._registry:
        meta = model._meta
        response = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
        if response.status_code != 200:
            continue
        for select in re.findall(r"<select.*?</select>", response.content.decode(), flags=re.S):
            _assert_no_globex(select.encode(), meta.label)


def test_technical_user_cannot_manage_members_or_keys(world, client):
    client.force_login(world.user("technical"))
    for name in ("membership", "apikey", "invitation"):
        assert client.get(reverse(f"admin:tenants_{name}_changelist")).status_code == 403
        assert client.get(reverse(f"admin:tenants_{name}_add")).status_code == 403
    index = client.get(reverse("admin:index")).content.decode()
    assert "Memberships" not in index and "API keys" not in index and "Invitations" not in index


def test_platform_staff_add_a_member_at_once_and_an_admin_creates_a_key_shown_once(world, client):
    UserFactory(username="alice")
    client.force_login(UserFactory(username="staff", is_superuser=True, is_staff=True))
    response = client.post(
        reverse("admin:tenants_membership_add"),
        {"username": "alice", "role": "marketer", "organization": world.acme.pk},
        follow=True,
    )
    assert response.status_code == 200
    assert Membership.objects.get(user__username="alice").organization == world.acme

    client.force_login(world.user("admin"))
    response = client.post(reverse("admin:tenants_apikey_add"), {"name": "crm", "scopes": ["read"]}, follow=True)
    key = ApiKey.objects.get(name="crm")
    assert key.organization == world.acme
    shown = re.search(r"(cdt_[0-9a-f]{8}_[\w-]+)", response.content.decode()).group(1)
    assert shown.startswith(key.prefix)
    again = client.get(reverse("admin:tenants_apikey_change", args=[key.pk])).content.decode()
    assert shown not in again


def test_admin_cannot_remove_the_last_admin(world, client):
    admin_membership = world.members["admin"]
    client.force_login(admin_membership.user)
    url = reverse("admin:tenants_membership_delete", args=[admin_membership.pk])
    response = client.post(url, {"post": "yes"}, follow=True)
    assert "last one" in response.content.decode()
    assert Membership.objects.filter(pk=admin_membership.pk).exists()
    response = client.post(reverse("admin:tenants_membership_change", args=[admin_membership.pk]), {"role": "viewer"})
    assert response.status_code == 200  # the form again
    assert "needs at least one admin" in response.content.decode()
    assert Membership.objects.get(pk=admin_membership.pk).role == "admin"


def test_user_in_two_organizations_works_in_each_with_its_role(world, client):
    dual = UserFactory(username="dual")
    MembershipFactory(organization=world.acme, user=dual, role="viewer")
    MembershipFactory(organization=world.globex, user=dual, role="admin")
    client.force_login(dual)
    members_url = reverse("admin:tenants_membership_changelist")
    assert client.get(members_url).status_code == 403  # acme first: viewer

    client.post(reverse("switch-organization"), {"organization": "globex", "next": members_url})
    response = client.get(members_url)
    assert response.status_code == 200
    assert "globex_admin" in response.content.decode()
    assert "acme_viewer" not in response.content.decode()

    client.post(reverse("switch-organization"), {"organization": "acme"})
    assert client.get(members_url).status_code == 403


def test_switching_to_an_organization_you_are_not_in_does_nothing(world, client):
    client.force_login(world.user("marketer"))
    client.post(reverse("switch-organization"), {"organization": "globex"})
    response = client.get(reverse("admin:tenants_organization_changelist"))
    _assert_no_globex(response.content, "organizations")
