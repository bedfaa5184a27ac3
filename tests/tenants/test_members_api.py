from tenants.models import Membership
from tests.conftest import token_client
from tests.factories import UserFactory

MEMBERS = "/api/v1/orgs/acme/members/"
INVITATIONS = "/api/v1/orgs/acme/invitations/"


def test_admin_changes_the_role_of_a_member_who_accepted_an_invitation(world):
    alice = UserFactory(username="alice")
    client = token_client(world.user("admin"))
    invitation = client.post(INVITATIONS, {"username": "alice", "role": "technical"}, format="json").json()
    token_client(alice).post("/api/v1/invitations/accept/", {"token": invitation["token"]}, format="json")
    member = Membership.objects.get(user=alice, organization=world.acme)
    assert client.get(f"{MEMBERS}{member.pk}/").json()["role"] == "technical"
    changed = client.patch(f"{MEMBERS}{member.pk}/", {"role": "viewer"}, format="json")
    assert changed.json()["role"] == "viewer"
    usernames = [m["username"] for m in client.get(MEMBERS).json()["results"]]
    assert "alice" in usernames and "globex_admin" not in usernames


def test_removed_member_loses_access(world):
    client = token_client(world.user("admin"))
    viewer = world.members["viewer"]
    assert client.delete(f"{MEMBERS}{viewer.pk}/").status_code == 204
    assert token_client(viewer.user).get("/api/v1/orgs/acme/").status_code == 404


def test_last_admin_cannot_be_removed_or_demoted(world):
    admin = world.members["admin"]
    client = token_client(admin.user)
    response = client.delete(f"{MEMBERS}{admin.pk}/")
    assert response.status_code == 409
    assert "last one" in response.json()["detail"]
    response = client.patch(f"{MEMBERS}{admin.pk}/", {"role": "viewer"}, format="json")
    assert response.status_code == 409
    assert Membership.objects.get(pk=admin.pk).role == "admin"


def test_second_admin_makes_the_first_removable(world):
    client = token_client(world.user("admin"))
    client.patch(f"{MEMBERS}{world.members['technical'].pk}/", {"role": "admin"}, format="json")
    assert client.delete(f"{MEMBERS}{world.members['admin'].pk}/").status_code == 204


def test_bad_member_input_gets_400_naming_the_field(world):
    client = token_client(world.user("admin"))
    url = f"{MEMBERS}{world.members['viewer'].pk}/"
    cases = [
        ({"role": "boss"}, "role"),
        ({}, "role"),
        ({"role": ["admin"]}, "role"),
        ({"role": "admin", "is_superuser": True}, "is_superuser"),
        ({"role": "admin", "username": "globex_admin"}, "username"),
    ]
    for body, field in cases:
        response = client.patch(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in response.json()["errors"], (body, response.json())
    assert Membership.objects.get(pk=world.members["viewer"].pk).role == "viewer"


def test_members_are_not_added_through_the_members_api(world):
    UserFactory(username="alice")
    response = token_client(world.user("admin")).post(MEMBERS, {"username": "alice", "role": "viewer"}, format="json")
    assert response.status_code == 405
    assert not Membership.objects.filter(user__username="alice").exists()


def test_malformed_json_gets_400_not_500(world):
    client = token_client(world.user("admin"))
    url = f"{MEMBERS}{world.members['viewer'].pk}/"
    response = client.patch(url, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")
    response = client.patch(url, data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
