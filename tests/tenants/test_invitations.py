"""Issue 16 (18): people join an organization by accepting an invitation, and inviting tells nobody who exists."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import Invitation, Membership
from tenants.services import api_key_create, invitation_create
from tests.conftest import key_client, token_client
from tests.factories import UserFactory

INVITATIONS = "/api/v1/orgs/acme/invitations/"
ACCEPT = "/api/v1/invitations/accept/"


def _invite(world, **body):
    response = token_client(world.user("admin")).post(INVITATIONS, {"role": "marketer", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _accept(user, token: str):
    return token_client(user).post(ACCEPT, {"token": token}, format="json")


def test_an_invited_user_becomes_a_member_only_by_accepting(world):
    alice = UserFactory(username="alice")
    invitation = _invite(world, username="alice", role="technical")
    assert invitation["status"] == "pending" and invitation["token"].startswith("inv_")
    assert not Membership.objects.filter(user=alice).exists()
    assert token_client(alice).get("/api/v1/orgs/acme/").status_code == 404

    response = _accept(alice, invitation["token"])
    assert response.status_code == 201
    assert response.json() == {"organization": "acme", "role": "technical"}
    assert token_client(alice).get("/api/v1/orgs/acme/").json()["role"] == "technical"
    shown = token_client(world.user("admin")).get(f"{INVITATIONS}{invitation['id']}/").json()
    assert shown["status"] == "accepted" and "token" not in shown


def test_an_invitation_by_email_is_accepted_by_the_account_with_that_email_whatever_its_case(world):
    bob = UserFactory(username="bob", email="Bob.Builder@Example.COM")
    invitation = _invite(world, email="bob.builder@example.com")
    assert _accept(bob, invitation["token"]).status_code == 201
    assert Membership.objects.get(user=bob, organization=world.acme).role == "marketer"


# What differs between two invitations whatever their invitee; everything else must be the same.
VARYING = {"id", "token", "created_at", "expires_at", "email", "username"}


def test_the_answer_is_the_same_whether_or_not_the_invitee_has_an_account(world):
    UserFactory(username="alice", email="alice@example.com")
    client = token_client(world.user("admin"))
    bodies = [
        {"username": "alice", "role": "viewer"},
        {"username": "nobody-here", "role": "viewer"},
        {"username": "acme_viewer", "role": "viewer"},  # a member already
        {"username": "globex_admin", "role": "viewer"},  # another organization's
        {"email": "alice@example.com", "role": "viewer"},
        {"email": "nobody@example.com", "role": "viewer"},
    ]
    answers = [client.post(INVITATIONS, body, format="json") for body in bodies]
    assert {answer.status_code for answer in answers} == {201}
    shapes = [{k: v for k, v in answer.json().items() if k not in VARYING} for answer in answers]
    assert all(shape == shapes[0] for shape in shapes), shapes
    assert [set(answer.json()) for answer in answers] == [set(answers[0].json())] * len(answers)
    assert not Membership.objects.filter(user__username__in=["alice", "globex_admin"], organization=world.acme).exists()


def test_the_members_api_adds_nobody_and_names_nobody(world):
    UserFactory(username="alice")
    client = token_client(world.user("admin"))
    answers = [
        client.post("/api/v1/orgs/acme/members/", {"username": name, "role": "admin"}, format="json")
        for name in ("alice", "ghost")
    ]
    assert [a.status_code for a in answers] == [405, 405]
    assert answers[0].json() == answers[1].json()
    assert not Membership.objects.filter(user__username="alice").exists()


def test_a_token_in_the_hands_of_someone_else_is_not_found(world):
    UserFactory(username="alice", email="alice@example.com")
    mallory = UserFactory(username="mallory", email="")
    by_username = _invite(world, username="alice")
    by_email = _invite(world, email="alice@example.com")
    for invitation in (by_username, by_email):
        response = _accept(mallory, invitation["token"])
        assert response.status_code == 404
        assert response.json()["detail"] == "Invitation not found."
    # Another organization's admin, or the inviter, cannot take the place either.
    assert _accept(world.globex_admin.user, by_username["token"]).status_code == 404
    assert _accept(world.user("admin"), by_username["token"]).status_code == 404
    assert not Membership.objects.filter(user=mallory).exists()
    assert Invitation.objects.get(pk=by_username["id"]).status == "pending"


def test_an_invitation_works_once_and_not_after_it_expired_or_was_revoked(world, settings):
    alice = UserFactory(username="alice")
    admin = token_client(world.user("admin"))

    used = _invite(world, username="alice")
    assert _accept(alice, used["token"]).status_code == 201
    again = _accept(alice, used["token"])
    assert again.status_code == 409 and "accepted already" in again.json()["detail"]

    Membership.objects.filter(user=alice).delete()
    expired = _invite(world, username="alice")
    Invitation.objects.filter(pk=expired["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _accept(alice, expired["token"])
    assert response.status_code == 409 and "expired" in response.json()["detail"]

    revoked = _invite(world, username="alice")
    answer = admin.post(f"{INVITATIONS}{revoked['id']}/revoke/")
    assert answer.status_code == 200 and answer.json()["status"] == "revoked"
    response = _accept(alice, revoked["token"])
    assert response.status_code == 409 and "revoked" in response.json()["detail"]
    assert not Membership.objects.filter(user=alice).exists()


def test_invitations_expire_after_the_setting(world, settings):
    settings.CONDUIT_INVITATION_TTL_S = 3600
    invitation = _invite(world, username="alice")
    assert Invitation.objects.get(pk=invitation["id"]).expires_at - timezone.now() <= timedelta(hours=1)


def test_inviting_the_same_person_again_replaces_the_pending_invitation(world):
    alice = UserFactory(username="alice")
    first = _invite(world, username="alice", role="viewer")
    second = _invite(world, username="alice", role="technical")
    assert Invitation.objects.get(pk=first["id"]).status == "revoked"
    assert _accept(alice, first["token"]).status_code == 409
    assert _accept(alice, second["token"]).status_code == 201
    assert Membership.objects.get(user=alice).role == "technical"


def test_an_accepted_invitation_cannot_be_revoked(world):
    alice = UserFactory(username="alice")
    invitation = _invite(world, username="alice")
    _accept(alice, invitation["token"])
    response = token_client(world.user("admin")).post(f"{INVITATIONS}{invitation['id']}/revoke/")
    assert response.status_code == 409
    assert Membership.objects.filter(user=alice).exists()


def test_a_member_already_cannot_accept_a_second_role(world):
    invitation = _invite(world, username="acme_viewer", role="admin")
    response = _accept(world.user("viewer"), invitation["token"])
    assert response.status_code == 409
    assert Membership.objects.get(pk=world.members["viewer"].pk).role == "viewer"


def test_an_inactive_organizations_invitation_is_not_found(world):
    alice = UserFactory(username="alice")
    invitation = _invite(world, username="alice")
    world.acme.is_active = False
    world.acme.save()
    assert _accept(alice, invitation["token"]).status_code == 404


def test_accepting_needs_a_logged_in_user(world):
    invitation = _invite(world, username="alice")
    assert APIClient().post(ACCEPT, {"token": invitation["token"]}, format="json").status_code == 401
    raw_key = api_key_create(organization=world.acme, name="shop", scopes=["read"])[1]
    assert key_client(raw_key).post(ACCEPT, {"token": invitation["token"]}, format="json").status_code == 403


@pytest.mark.parametrize(
    "token",
    ["", "inv_" + "a" * 96, "a" * 101, "inv_\x00", "inv_\r\nX: y", ["inv_x"], {"a": 1}, 7, None, "../../x"],
)
def test_a_malformed_or_unknown_token_is_a_400_or_404_never_a_500(world, token):
    response = token_client(world.user("viewer")).post(ACCEPT, {"token": token}, format="json")
    assert response.status_code in (400, 404), response.content
    if response.status_code == 400 and "NUL" not in response.json()["detail"]:  # the parser refuses NUL anywhere
        assert "token" in response.json()["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "viewer"}, "username"),
        ({"email": "a@example.com", "username": "a", "role": "viewer"}, "email"),
        ({"email": "not-an-email", "role": "viewer"}, "email"),
        ({"email": "a\r\n@example.com", "role": "viewer"}, "email"),
        ({"email": "x" * 250 + "@example.com", "role": "viewer"}, "email"),
        ({"username": "has spaces", "role": "viewer"}, "username"),
        ({"username": "tab\tstop", "role": "viewer"}, "username"),
        ({"username": "u" * 151, "role": "viewer"}, "username"),
        ({"username": ["a"], "role": "viewer"}, "username"),
        ({"username": "alice", "role": "boss"}, "role"),
        ({"username": "alice"}, "role"),
        ({"username": "alice", "role": "viewer", "organization": "globex"}, "organization"),
    ],
)
def test_bad_invitation_input_gets_400_naming_the_field(world, body, field):
    response = token_client(world.user("admin")).post(INVITATIONS, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not Invitation.objects.exists()


def test_another_organizations_invitation_is_404_on_your_own_url(world):
    acme_invitation, _ = invitation_create(organization=world.acme, username="alice", role="viewer")
    client = token_client(world.globex_admin.user)
    for method, suffix in (("get", ""), ("post", "revoke/")):
        response = getattr(client, method)(f"/api/v1/orgs/globex/invitations/{acme_invitation.pk}/{suffix}")
        assert response.status_code == 404
        assert response.json()["detail"] == "Invitation not found."
    assert client.get("/api/v1/orgs/globex/invitations/").json()["results"] == []
    assert Invitation.objects.get(pk=acme_invitation.pk).status == "pending"


@pytest.mark.parametrize("role", ["technical", "marketer", "viewer"])
def test_a_lesser_role_cannot_list_invite_or_revoke(world, role):
    invitation, _ = invitation_create(organization=world.acme, username="alice", role="viewer")
    client = token_client(world.user(role))
    assert client.get(INVITATIONS).status_code == 403
    assert client.post(INVITATIONS, {"username": "alice", "role": "admin"}, format="json").status_code == 403
    assert client.post(f"{INVITATIONS}{invitation.pk}/revoke/").status_code == 403
    assert Invitation.objects.count() == 1


# --- the admin


def test_an_organization_admin_invites_in_the_admin_and_the_token_is_shown_once(world, client):
    alice = UserFactory(username="alice")
    client.force_login(world.user("admin"))
    assert client.get(reverse("admin:tenants_membership_add")).status_code == 403  # no adding without consent
    response = client.post(
        reverse("admin:tenants_invitation_add"), {"username": "alice", "role": "marketer"}, follow=True
    )
    assert response.status_code == 200
    invitation = Invitation.objects.get(username="alice")
    assert invitation.organization == world.acme and invitation.invited_by == world.user("admin")
    token = re.search(r"(inv_[\w-]{40,})", response.content.decode()).group(1)
    assert token not in client.get(reverse("admin:tenants_invitation_change", args=[invitation.pk])).content.decode()
    assert not Membership.objects.filter(user=alice).exists()
    assert _accept(alice, token).status_code == 201
    assert Membership.objects.get(user=alice).organization == world.acme


def test_the_admin_lists_and_revokes_invitations(world, client):
    pending, _ = invitation_create(organization=world.acme, email="carol@example.com", role="viewer")
    invitation_create(organization=world.globex, email="globex-guest@example.com", role="viewer")
    client.force_login(world.user("admin"))
    changelist = reverse("admin:tenants_invitation_changelist")
    page = client.get(changelist).content.decode()
    assert "carol@example.com" in page and "globex-guest" not in page
    client.post(changelist, {"action": "revoke_invitations", "_selected_action": [pending.pk]})
    assert Invitation.objects.get(pk=pending.pk).status == "revoked"


def test_the_admin_form_names_a_bad_invitee(world, client):
    client.force_login(world.user("admin"))
    for form, message in [
        ({"role": "viewer"}, "Give an email or a username."),
        ({"email": "a@example.com", "username": "a", "role": "viewer"}, "not both"),
        ({"username": "has spaces", "role": "viewer"}, "only letters"),
    ]:
        response = client.post(reverse("admin:tenants_invitation_add"), form)
        assert response.status_code == 200 and message in response.content.decode(), form
    assert not Invitation.objects.exists()


def test_only_the_organization_admin_sees_invitations_in_the_admin(world, client):
    client.force_login(world.user("technical"))
    assert client.get(reverse("admin:tenants_invitation_changelist")).status_code == 403
    assert client.get(reverse("admin:tenants_invitation_add")).status_code == 403
