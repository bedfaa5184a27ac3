"""Credentials with line breaks or control characters: refused at save, never sent, never shown or logged."""

import logging

import pytest
from werkzeug import Response

from actions.models import Action
from actions.services.actions import action_test
from tests.actions.helpers import SMS_ACTION
from tests.conftest import token_client

VALUES = {"account": "acc1", "phone": "+33600000000", "text": "hello"}
ACTIONS = "/api/v1/orgs/acme/actions/"


@pytest.fixture
def technical(world):
    return token_client(world.user("technical"))


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ({"type": "bearer", "token": "tok-SECRET-1\n"}, "token"),
        ({"type": "bearer", "token": "tok-SECRET-1\r\nX-Injected: yes"}, "token"),
        ({"type": "bearer", "token": "tok-SECRET-1\x1b[31m"}, "token"),
        ({"type": "api_key", "in": "header", "name": "X-Api-Key", "value": "key-SECRET-1\r"}, "value"),
        ({"type": "basic", "username": "ada", "password": "pw-SECRET-1\n"}, "password"),
        ({"type": "basic", "username": "ada\r\n", "password": "pw-SECRET-1"}, "username"),
        (
            {
                "type": "oauth2_client_credentials",
                "token_url": "https://auth.example.com/token",
                "client_id": "conduit",
                "client_secret": "cs-SECRET-1\n",
            },
            "client_secret",
        ),  # fmt: skip
    ],
)
def test_a_credential_with_a_line_break_is_a_400_that_does_not_repeat_it(world, technical, caplog, auth, field):
    caplog.set_level(logging.DEBUG)
    response = technical.post(ACTIONS, {**SMS_ACTION, "auth": auth}, format="json")
    assert response.status_code == 400, response.content
    [problem] = [p for p in response.json()["errors"]["auth"] if p.startswith(f"{field}:")]
    assert "line break or another control character" in problem
    assert "SECRET" not in response.content.decode() and "SECRET" not in caplog.text
    assert not Action.objects.exists()


def test_a_credential_stored_before_the_check_is_not_sent_and_not_shown(world, httpserver, allow_loopback, caplog):
    world.acme.allow_http = True
    world.acme.save()
    url = httpserver.url_for("/v1/{{account}}/messages")
    response = token_client(world.user("technical")).post(
        ACTIONS, {**SMS_ACTION, "url": url, "auth": {"type": "bearer", "token": "tok-SECRET-ok"}}, format="json"
    )
    action = Action.objects.get(pk=response.json()["id"])
    action.auth_secrets = {"token": "tok-SECRET-2\r\nX-Injected: yes"}  # as an older version could save it
    action.save(update_fields=["auth_secrets"])
    caplog.set_level(logging.DEBUG)
    result = action_test(action=action, values=VALUES)
    assert result.outcome == "error" and "line break" in result.error
    assert httpserver.log == []
    assert "SECRET-2" not in result.error and "SECRET-2" not in caplog.text


def test_a_token_with_a_line_break_from_the_token_endpoint_is_not_used(world, httpserver, allow_loopback, caplog):
    world.acme.allow_http = True
    world.acme.save()
    httpserver.expect_request("/oauth/token").respond_with_json(
        {"access_token": "at-SECRET-3\r\nX-Injected: yes", "expires_in": 3600}
    )
    httpserver.expect_request("/v1/acc1/messages").respond_with_handler(lambda r: Response("{}", status=200))
    auth = {"type": "oauth2_client_credentials", "token_url": httpserver.url_for("/oauth/token"),
            "client_id": "conduit", "client_secret": "cs-value"}  # fmt: skip
    response = token_client(world.user("technical")).post(
        ACTIONS, {**SMS_ACTION, "url": httpserver.url_for("/v1/{{account}}/messages"), "auth": auth}, format="json"
    )
    assert response.status_code == 201, response.content
    caplog.set_level(logging.DEBUG)
    result = action_test(action=Action.objects.get(pk=response.json()["id"]), values=VALUES)
    assert result.outcome == "error" and "token the token endpoint answered" in result.error
    assert [r.path for r, _ in httpserver.log] == ["/oauth/token"]  # the API itself never called
    assert "SECRET-3" not in result.error and "SECRET-3" not in caplog.text


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"X-Key": "k-SECRET-4\r\nX-Injected: yes"}, "X-Key holds a line break"),
        ({"X-Key": "k-SECRET-4\n"}, "X-Key holds a line break"),
        ({"Host": "evil.example.com"}, "'Host' is not a header that may be set"),
        ({"X-Key\r\nX": "v"}, "is not a header that may be set"),
        ({"Transfer-Encoding": "chunked"}, "'Transfer-Encoding' is not a header that may be set"),
    ],
)
def test_token_endpoint_headers_follow_the_actions_header_rules(world, technical, headers, problem):
    auth = {
        "type": "token_endpoint", "token_path": "access_token", "cache_seconds": 60, "inject": {"as": "bearer"},
        "request": {"url": "https://auth.example.com/token", "method": "POST", "headers": headers, "body": {}},
    }  # fmt: skip
    response = technical.post(ACTIONS, {**SMS_ACTION, "auth": auth}, format="json")
    assert response.status_code == 400, response.content
    assert any(problem in p for p in response.json()["errors"]["auth"]), response.json()
    assert "SECRET" not in response.content.decode()
