from tenants.models import Membership
from tests.conftest import token_client
from tests.factories import UserFactory

MEMBERS = "/api/v1/orgs/acme/members/"


def test_admin_adds_a_member_by_username_and_changes_the_role(world):
    UserFactory(username="alice")
    client = token_client(world.user("admin"))
    created = client.post(MEMBERS, {"username": "alice", "role": "technical"}, format="json")
    assert created.status_code == 201
    assert created.json()["username"] == "alice" and created.json()["role"] == "technical"
    changed = client.patch(f"{MEMBERS}{created.json()['id']}/", {"role": "viewer"}, format="json")
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
    cases = [
        ({"username": "ghost", "role": "viewer"}, "username"),
        ({"username": "acme_viewer", "role": "viewer"}, "username"),  # already a member
        ({"username": "globex_admin", "role": "boss"}, "role"),
        ({"username": "globex_admin"}, "role"),
        ({"username": "globex_admin", "role": "viewer", "is_superuser": True}, "is_superuser"),
        ({"username": ["a"], "role": "viewer"}, "username"),
    ]
    for body, field in cases:
        response = client.post(MEMBERS, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in response.json()["errors"], (body, response.json())
    assert not Membership.objects.filter(organization=world.acme, user__username="globex_admin").exists()


def test_malformed_json_gets_400_not_500(world):
    client = token_client(world.user("admin"))
    response = client.post(MEMBERS, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")
    response = client.post(MEMBERS, data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
