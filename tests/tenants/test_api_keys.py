import logging
from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from tenants.models import ApiKey
from tenants.services import api_key_create, api_key_revoke
from tests.conftest import key_client, token_client


def _create(world, scopes=("read",), **extra):
    response = token_client(world.user("admin")).post(
        "/api/v1/orgs/acme/api-keys/",
        {"name": "shop", "scopes": list(scopes), **extra},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_created_key_is_shown_once_and_works_as_bearer(world):
    created = _create(world)
    assert created["key"].startswith(created["prefix"] + "_")
    response = key_client(created["key"]).get("/api/v1/orgs/acme/")
    assert response.status_code == 200
    assert response.json() == {
        "slug": "acme",
        "name": "Acme Inc",
        "allow_http": False,
        "default_time_zone": "UTC",
        "time_zone_attribute": "timezone",
        "role": None,
    }

    listed = token_client(world.user("admin")).get("/api/v1/orgs/acme/api-keys/").json()["results"]
    assert [k["prefix"] for k in listed] == [created["prefix"]]
    assert "key" not in listed[0]
    assert listed[0]["last_used_at"] is not None


def test_raw_key_is_stored_nowhere(world, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    raw = _create(world)["key"]
    key_client(raw).get("/api/v1/orgs/acme/")
    dump = tmp_path / "dump.json"
    call_command("dumpdata", output=str(dump))
    assert raw not in dump.read_text()
    secret_part = raw.split("_", 2)[2]
    assert secret_part not in dump.read_text()
    assert raw not in caplog.text


def test_key_of_another_organization_is_refused(world):
    _, globex_key = api_key_create(organization=world.globex, name="globex", scopes=["read"])
    response = key_client(globex_key).get("/api/v1/orgs/acme/")
    assert response.status_code == 404
    assert key_client(globex_key).get("/api/v1/orgs/globex/").status_code == 200


def test_revoked_key_is_refused(world):
    key, raw = api_key_create(organization=world.acme, name="old", scopes=["read"])
    assert key_client(raw).get("/api/v1/orgs/acme/").status_code == 200
    api_key_revoke(api_key=key)
    response = key_client(raw).get("/api/v1/orgs/acme/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid, expired or revoked API key."


def test_revoke_through_the_api_stops_the_key(world):
    created = _create(world)
    response = token_client(world.user("admin")).post(f"/api/v1/orgs/acme/api-keys/{created['id']}/revoke/")
    assert response.status_code == 200
    assert response.json()["revoked"] is True
    assert key_client(created["key"]).get("/api/v1/orgs/acme/").status_code == 401


def test_expired_key_is_refused(world):
    key, raw = api_key_create(organization=world.acme, name="short", scopes=["read"])
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert key_client(raw).get("/api/v1/orgs/acme/").status_code == 401


def test_unknown_or_malformed_key_is_401(world):
    assert key_client("cdt_deadbeef_nothing").get("/api/v1/orgs/acme/").status_code == 401
    assert key_client("not-a-key").get("/api/v1/orgs/acme/").status_code == 401


def test_key_without_the_needed_scope_gets_403(world):
    _, raw = api_key_create(organization=world.acme, name="events only", scopes=["events:write"])
    response = key_client(raw).get("/api/v1/orgs/acme/")
    assert response.status_code == 403
    assert "scope" in response.json()["detail"]


def test_keys_never_manage_members_or_keys(world):
    _, raw = api_key_create(organization=world.acme, name="all", scopes=["read", "events:write", "profiles:write"])
    assert key_client(raw).get("/api/v1/orgs/acme/members/").status_code == 403
    assert key_client(raw).post("/api/v1/orgs/acme/api-keys/", {"name": "x", "scopes": ["read"]}).status_code == 403


def test_last_used_at_is_written_at_most_once_a_minute(world):
    key, raw = api_key_create(organization=world.acme, name="busy", scopes=["read"])
    key_client(raw).get("/api/v1/orgs/acme/")
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    key_client(raw).get("/api/v1/orgs/acme/")
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(seconds=61))
    key_client(raw).get("/api/v1/orgs/acme/")
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first


def test_bad_key_requests_get_400_naming_the_field(world):
    client = token_client(world.user("admin"))
    cases = [
        ({"name": "x", "scopes": ["write-everything"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"scopes": ["read"]}, "name"),
        ({"name": "x", "scopes": ["read"], "owner": "me"}, "owner"),
        ({"name": "x", "scopes": ["read"], "expires_at": "yesterday"}, "expires_at"),
        ({"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "scopes": "read"}, "scopes"),
    ]
    for body, field in cases:
        response = client.post("/api/v1/orgs/acme/api-keys/", body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert response.json()["detail"] == "Invalid input."
        assert field in response.json()["errors"], (body, response.json())
    assert ApiKey.objects.count() == 0
