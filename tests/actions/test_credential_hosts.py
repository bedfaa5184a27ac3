"""Stored credentials do not follow an action (or the SMTP settings) to another host (issue 16, item 11):
a move is refused with a 400 naming the field unless the credentials are given again in the same change."""

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.urls import reverse

from actions.models import Action, EmailSettings
from actions.services.actions import action_test
from actions.services.email_settings import email_settings_save
from tests.actions.helpers import admin_form_data, make_action
from tests.actions.test_secrets_at_rest import TokenEndpoint
from tests.conftest import token_client

ACTIONS = "/api/v1/orgs/acme/actions/"
SETTINGS_URL = "/api/v1/orgs/acme/email-settings/"
VALUES = {"account": "acc1", "phone": "+33600000000", "text": "hello"}
OLD_TOKEN = "tok-SECRET-123456"  # the helpers' SMS action


@pytest.fixture
def tech(world):
    return token_client(world.user("technical"))


def _patch(tech, action: Action, change: dict):
    return tech.patch(f"{ACTIONS}{action.pk}/", change, format="json")


# --- the action's URL, over the API ----------------------------------------------------------


@pytest.fixture
def loopback_action(world, allow_loopback, httpserver):
    """An action with a bearer token that calls the loopback server as `localhost`."""
    world.acme.allow_http = True
    world.acme.save()
    httpserver.expect_request("/v1/acc1/messages").respond_with_data("ok")
    return make_action(world.acme, url=f"http://localhost:{httpserver.port}/v1/{{{{account}}}}/messages")


def _authorizations(httpserver) -> list[str | None]:
    return [request.headers.get("Authorization") for request, _ in httpserver.log]


def test_moving_the_url_to_another_host_without_credentials_is_a_400_naming_url(tech, loopback_action, httpserver):
    moved = f"http://127.0.0.1:{httpserver.port}/v1/{{{{account}}}}/messages"  # the same server, another host
    response = _patch(tech, loopback_action, {"url": moved})
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["url"]
    assert "token" in response.json()["errors"]["url"][0] and OLD_TOKEN not in response.content.decode()
    loopback_action.refresh_from_db()
    assert loopback_action.url.startswith("http://localhost:")
    assert action_test(action=loopback_action, values=VALUES).outcome == "succeeded"
    assert _authorizations(httpserver) == [f"Bearer {OLD_TOKEN}"]  # still only to the host it was given for


def test_moving_the_url_with_new_credentials_sends_the_new_ones(tech, loopback_action, httpserver):
    moved = f"http://127.0.0.1:{httpserver.port}/v1/{{{{account}}}}/messages"
    response = _patch(tech, loopback_action, {"url": moved, "auth": {"type": "bearer", "token": "tok-NEW-2"}})
    assert response.status_code == 200, response.content
    loopback_action.refresh_from_db()
    assert action_test(action=loopback_action, values=VALUES).outcome == "succeeded"
    assert _authorizations(httpserver) == ["Bearer tok-NEW-2"]
    assert httpserver.log[0][0].host.startswith("127.0.0.1:")


def test_moving_the_url_and_removing_the_credentials_sends_none(tech, loopback_action, httpserver):
    moved = f"http://127.0.0.1:{httpserver.port}/v1/{{{{account}}}}/messages"
    assert _patch(tech, loopback_action, {"url": moved, "auth": {"type": "none"}}).status_code == 200
    loopback_action.refresh_from_db()
    assert action_test(action=loopback_action, values=VALUES).outcome == "succeeded"
    assert _authorizations(httpserver) == [None]


def test_another_path_on_the_same_host_keeps_the_credentials(tech, loopback_action, httpserver):
    httpserver.expect_request("/v2/acc1/sms").respond_with_data("ok")
    moved = f"http://LocalHost:{httpserver.port}/v2/{{{{account}}}}/sms?x=1"
    assert _patch(tech, loopback_action, {"url": moved}).status_code == 200
    loopback_action.refresh_from_db()
    assert action_test(action=loopback_action, values=VALUES).outcome == "succeeded"
    assert _authorizations(httpserver) == [f"Bearer {OLD_TOKEN}"]


@pytest.mark.parametrize(
    "url",
    [
        "https://SMS.Example.COM/v1/accounts/{{account}}/messages",
        "https://sms.example.com./v1/accounts/{{account}}/messages",
        "https://sms.example.com:443/v1/accounts/{{account}}/messages",
        "https://sms.example.com/v3/{{account}}",
    ],
    ids=["case", "trailing-dot", "default-port", "other-path"],
)
def test_the_same_host_written_otherwise_keeps_the_credentials(world, tech, url):
    action = make_action(world.acme)
    assert _patch(tech, action, {"url": url}).status_code == 200
    assert Action.objects.get(pk=action.pk).auth_secrets == {"token": OLD_TOKEN}


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/v1/accounts/{{account}}/messages",
        "https://sms.example.com:8443/v1/accounts/{{account}}/messages",
        "http://sms.example.com/v1/accounts/{{account}}/messages",
        "https://sms.example.com@evil.example/v1/{{account}}",
        "https://sms.example.com.evil.example/v1/{{account}}",
        "https://evil.example/sms.example.com/{{account}}",
        "https://[::1]/v1/{{account}}",
    ],
    ids=["host", "port", "scheme", "userinfo", "suffix", "host-in-path", "ipv6"],
)
def test_another_origin_without_credentials_is_a_400_naming_url(world, tech, url):
    world.acme.allow_http = True  # so that only the move itself is what a plain http:// URL is refused for
    world.acme.save()
    action = make_action(world.acme)
    response = _patch(tech, action, {"url": url, "description": "moved"})
    assert response.status_code == 400, response.content
    assert "url" in response.json()["errors"]
    stored = Action.objects.get(pk=action.pk)
    assert stored.url == "https://sms.example.com/v1/accounts/{{account}}/messages" and stored.description != "moved"


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "basic", "username": "u1", "password": "p@ss-1"},
        {"type": "api_key", "in": "query", "name": "key", "value": "key-SECRET-1"},
    ],
    ids=["basic", "api_key"],
)
def test_every_credential_type_is_bound_to_the_host(world, tech, auth):
    action = make_action(world.acme, auth=auth)
    kept = {key: value for key, value in auth.items() if key in ("type", "username", "in", "name")}
    response = _patch(tech, action, {"url": "https://evil.example/{{account}}", "auth": kept})
    assert response.status_code == 400 and "url" in response.json()["errors"]
    secret = {"basic": "password", "api_key": "value"}[auth["type"]]
    assert secret in response.json()["errors"]["url"][0] and auth[secret] not in response.content.decode()
    again = _patch(tech, action, {"url": "https://evil.example/{{account}}", "auth": auth})
    assert again.status_code == 200, again.content


# --- token URLs -----------------------------------------------------------------------------

OAUTH2 = {"type": "oauth2_client_credentials", "token_url": "https://auth.example.com/oauth/token",
          "client_id": "cid", "client_secret": "cs-SECRET-1"}  # fmt: skip


def test_a_token_url_on_another_host_needs_the_client_secret_again(world, tech):
    action = make_action(world.acme, auth=OAUTH2)
    without_secret = {key: value for key, value in OAUTH2.items() if key != "client_secret"}
    moved = {**without_secret, "token_url": "https://auth.evil.example/oauth/token"}
    response = _patch(tech, action, {"auth": moved})
    assert response.status_code == 400, response.content
    (problem,) = response.json()["errors"]["auth"]
    assert problem.startswith("token_url:") and "client_secret" in problem and "cs-SECRET" not in problem
    same_host = {**without_secret, "token_url": "https://AUTH.example.com:443/v2/token"}
    assert _patch(tech, action, {"auth": same_host}).status_code == 200
    assert Action.objects.get(pk=action.pk).auth_secrets == {"client_secret": "cs-SECRET-1"}
    with_secret = _patch(tech, action, {"auth": {**moved, "client_secret": "cs-NEW-2"}})
    assert with_secret.status_code == 200, with_secret.content
    assert Action.objects.get(pk=action.pk).auth_secrets == {"client_secret": "cs-NEW-2"}


def test_the_url_of_an_oauth2_action_is_bound_too_the_token_would_follow_it(world, tech):
    action = make_action(world.acme, auth=OAUTH2)
    response = _patch(tech, action, {"url": "https://evil.example/{{account}}"})
    assert response.status_code == 400 and "client_secret" in response.json()["errors"]["url"][0]


def test_a_token_fetched_for_one_host_is_not_sent_to_the_next(world, tech, allow_loopback, httpserver):
    world.acme.allow_http = True
    world.acme.save()
    endpoint = TokenEndpoint(httpserver)
    auth = {**OAUTH2, "token_url": httpserver.url_for("/oauth/token")}
    action = make_action(world.acme, url=f"http://localhost:{httpserver.port}/v1/{{{{account}}}}/messages", auth=auth)
    assert action_test(action=action, values=VALUES).outcome == "succeeded"
    moved = f"http://127.0.0.1:{httpserver.port}/v1/{{{{account}}}}/messages"
    assert _patch(tech, action, {"url": moved, "auth": auth}).status_code == 200  # the same client secret, given again
    action.refresh_from_db()
    assert action_test(action=action, values=VALUES).outcome == "succeeded"
    assert endpoint.issued == ["access-1-a1b2c3", "access-2-a1b2c3"]  # a token of its own for the new host
    assert _authorizations(httpserver)[-1] == "Bearer access-2-a1b2c3"


def test_a_token_request_on_another_host_needs_its_secret_headers_again(world, tech):
    request = {"url": "https://login.example.com/token", "method": "POST", "headers": {"X-Login": "hdr-SECRET"}}
    auth = {"type": "token_endpoint", "request": request, "token_path": "token", "cache_seconds": 60,
            "inject": {"as": "bearer"}}  # fmt: skip
    action = make_action(world.acme, auth=auth)
    moved = {**auth, "request": {"url": "https://login.evil.example/token", "method": "POST"}}
    response = _patch(tech, action, {"auth": moved})
    assert response.status_code == 400, response.content
    (problem,) = response.json()["errors"]["auth"]
    assert problem.startswith("request.url:") and "request.headers" in problem and "hdr-SECRET" not in problem
    given = {**moved, "request": {**moved["request"], "headers": {"X-Login": "hdr-NEW"}}}
    assert _patch(tech, action, {"auth": given}).status_code == 200


def _service_account_key_file() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps({"type": "service_account", "client_email": "conduit@demo.iam.gserviceaccount.com",
                       "private_key": pem, "token_uri": "https://oauth2.googleapis.com/token"})  # fmt: skip


def test_a_google_service_account_action_is_bound_to_its_url(world, tech):
    auth = {"type": "google_service_account", "service_account_json": _service_account_key_file()}
    action = make_action(world.acme, auth=auth)
    response = _patch(tech, action, {"url": "https://evil.example/{{account}}"})
    assert response.status_code == 400 and "service_account_json" in response.json()["errors"]["url"][0]
    assert "PRIVATE KEY" not in response.content.decode()


# --- the SMTP server ------------------------------------------------------------------------

SMTP = {"host": "smtp.example.com", "port": 587, "security": "starttls", "username": "shop",
        "password": "smtp-SECRET-1", "default_from": "Acme <shop@acme.test>"}  # fmt: skip


@pytest.fixture
def admin_api(world):
    email_settings_save(organization=world.acme, data=SMTP)
    return token_client(world.user("admin"))


@pytest.mark.parametrize(
    "change, field",
    [({"host": "smtp.evil.example"}, "host"), ({"port": 2525}, "port"), ({"host": "mx.example.com"}, "host")],
)
def test_another_smtp_server_without_the_password_is_a_400_naming_the_field(admin_api, change, field):
    response = admin_api.patch(SETTINGS_URL, change, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [field] and "smtp-SECRET" not in response.content.decode()
    stored = EmailSettings.objects.get()
    assert (stored.host, stored.port, stored.password) == ("smtp.example.com", 587, "smtp-SECRET-1")


def test_another_smtp_server_with_the_password_or_without_any_is_accepted(admin_api):
    response = admin_api.patch(SETTINGS_URL, {"host": "smtp.other.example", "password": "smtp-NEW-2"}, format="json")
    assert response.status_code == 200, response.content
    assert EmailSettings.objects.get().password == "smtp-NEW-2"
    response = admin_api.patch(SETTINGS_URL, {"host": "smtp.third.example", "clear_password": True}, format="json")
    assert response.status_code == 200 and EmailSettings.objects.get().password == ""
    assert admin_api.patch(SETTINGS_URL, {"host": "smtp.fourth.example"}, format="json").status_code == 200


@pytest.mark.parametrize("change", [{"host": "SMTP.Example.com"}, {"host": "smtp.example.com", "port": 587}])
def test_the_same_smtp_server_written_otherwise_keeps_the_password(admin_api, change):
    response = admin_api.patch(SETTINGS_URL, {**change, "username": "shop2"}, format="json")
    assert response.status_code == 200, response.content
    assert EmailSettings.objects.get().password == "smtp-SECRET-1"


def test_a_put_that_repeats_the_smtp_server_keeps_the_password(admin_api):
    kept = {key: value for key, value in SMTP.items() if key != "password"}
    assert admin_api.put(SETTINGS_URL, {**kept, "timeout_s": 20}, format="json").status_code == 200
    assert EmailSettings.objects.get().password == "smtp-SECRET-1"


# --- the admin's forms ------------------------------------------------------------------------


def test_the_action_form_refuses_a_move_without_credentials_on_the_url_field(world, client):
    client.force_login(world.user("technical"))
    action = make_action(world.acme)
    page = reverse("admin:actions_action_change", args=[action.pk])
    data = {**admin_form_data(client.get(page)), "url": "https://evil.example/v1/{{account}}"}
    response = client.post(page, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "url" in errors and "token" in str(errors["url"]) and OLD_TOKEN not in response.content.decode()
    assert Action.objects.get(pk=action.pk).url.startswith("https://sms.example.com/")
    response = client.post(page, {**data, "bearer_token": "tok-ADMIN-NEW"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    stored = Action.objects.get(pk=action.pk)
    assert stored.url == "https://evil.example/v1/{{account}}" and stored.auth_secrets == {"token": "tok-ADMIN-NEW"}


def test_the_action_form_keeps_the_credentials_on_the_same_host(world, client):
    client.force_login(world.user("technical"))
    action = make_action(world.acme)
    page = reverse("admin:actions_action_change", args=[action.pk])
    data = {**admin_form_data(client.get(page)), "url": "https://SMS.example.com:443/v2/{{account}}"}
    assert client.post(page, data).status_code == 302
    assert Action.objects.get(pk=action.pk).auth_secrets == {"token": OLD_TOKEN}


def test_the_action_form_refuses_a_token_url_on_another_host_on_its_field(world, client):
    client.force_login(world.user("technical"))
    action = make_action(world.acme, auth=OAUTH2)
    page = reverse("admin:actions_action_change", args=[action.pk])
    data = {**admin_form_data(client.get(page)), "oauth2_token_url": "https://auth.evil.example/oauth/token"}
    response = client.post(page, data)
    assert response.status_code == 200
    assert "client_secret" in str(response.context["adminform"].form.errors["oauth2_token_url"])
    assert client.post(page, {**data, "oauth2_client_secret": "cs-ADMIN-NEW"}).status_code == 302
    assert Action.objects.get(pk=action.pk).auth_secrets == {"client_secret": "cs-ADMIN-NEW"}


def test_the_email_settings_form_refuses_another_server_without_the_password(world, client):
    email_settings_save(organization=world.acme, data=SMTP)
    client.force_login(world.user("admin"))
    page = reverse("admin:actions_emailsettings_change", args=[EmailSettings.objects.get().pk])
    data = {**admin_form_data(client.get(page)), "host": "smtp.evil.example"}
    response = client.post(page, data)
    assert response.status_code == 200
    assert "password" in str(response.context["adminform"].form.errors["host"])
    assert EmailSettings.objects.get().host == "smtp.example.com"
    assert client.post(page, {**data, "password": "smtp-ADMIN-NEW"}).status_code == 302
    stored = EmailSettings.objects.get()
    assert (stored.host, stored.password) == ("smtp.evil.example", "smtp-ADMIN-NEW")
