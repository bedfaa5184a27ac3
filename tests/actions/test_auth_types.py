"""Each auth type against a real HTTP server on loopback: the exact header or query received."""

import base64
import json

import pytest
from werkzeug import Request, Response

from actions.services.actions import action_test
from tests.actions.helpers import make_action

VALUES = {"account": "acc1", "phone": "+33600000000", "text": "hello"}


@pytest.fixture
def http_acme(world, allow_loopback):
    world.acme.allow_http = True
    world.acme.save()
    return world.acme


def _action(org, httpserver, auth, **extra):
    return make_action(org, url=httpserver.url_for("/v1/{{account}}/messages"), auth=auth, **extra)


def _received(httpserver) -> Request:
    assert len(httpserver.log) >= 1
    return httpserver.log[-1][0]


def test_none_sends_no_credentials(http_acme, httpserver):
    httpserver.expect_request("/v1/acc1/messages", method="POST").respond_with_json({"id": "m1"})
    result = action_test(action=_action(http_acme, httpserver, {"type": "none"}), values=VALUES)
    assert result.outcome == "succeeded" and result.response_json == {"id": "m1"}
    request = _received(httpserver)
    assert "Authorization" not in request.headers
    assert json.loads(request.data) == {"to": "+33600000000", "text": "hello"}
    assert request.headers["User-Agent"].startswith("Conduit/")


def test_basic_sends_the_encoded_pair_and_masks_it(http_acme, httpserver):
    httpserver.expect_request("/v1/acc1/messages").respond_with_data("ok")
    action = _action(http_acme, httpserver, {"type": "basic", "username": "u1", "password": "p@ss-word"})
    result = action_test(action=action, values=VALUES)
    expected = "Basic " + base64.b64encode(b"u1:p@ss-word").decode()
    assert _received(httpserver).headers["Authorization"] == expected
    assert ["Authorization", "Basic ********"] in result.request["headers"]


def test_bearer_sends_the_token(http_acme, httpserver):
    httpserver.expect_request("/v1/acc1/messages").respond_with_data("ok")
    result = action_test(
        action=_action(http_acme, httpserver, {"type": "bearer", "token": "tok-777-abc"}), values=VALUES
    )
    assert _received(httpserver).headers["Authorization"] == "Bearer tok-777-abc"
    assert "tok-777-abc" not in json.dumps(result.request)


def test_api_key_in_a_header(http_acme, httpserver):
    httpserver.expect_request("/v1/acc1/messages").respond_with_data("ok")
    auth = {"type": "api_key", "in": "header", "name": "X-Api-Key", "value": "key-123-xyz"}
    action_test(action=_action(http_acme, httpserver, auth), values=VALUES)
    assert _received(httpserver).headers["X-Api-Key"] == "key-123-xyz"


def test_api_key_in_the_query(http_acme, httpserver):
    httpserver.expect_request("/v1/acc1/messages").respond_with_data("ok")
    auth = {"type": "api_key", "in": "query", "name": "api_key", "value": "key-123-xyz"}
    result = action_test(action=_action(http_acme, httpserver, auth), values=VALUES)
    assert _received(httpserver).args["api_key"] == "key-123-xyz"
    assert "key-123-xyz" not in result.request["url"] and "api_key=********" in result.request["url"]


class TokenServer:
    """A token endpoint and an API that accepts only the current token."""

    def __init__(self, httpserver, token_path="/oauth/token"):
        self.issued: list[str] = []
        self.token_requests: list[Request] = []
        self.valid: str | None = None
        httpserver.expect_request(token_path).respond_with_handler(self.token)
        httpserver.expect_request("/v1/acc1/messages").respond_with_handler(self.api)

    def token(self, request: Request) -> Response:
        self.token_requests.append(request)
        self.valid = f"token-{len(self.issued) + 1}"
        self.issued.append(self.valid)
        body = {"access_token": self.valid, "expires_in": 3600, "data": {"jwt": self.valid, "ttl": 600}}
        return Response(json.dumps(body), content_type="application/json")

    def api(self, request: Request) -> Response:
        sent = request.headers.get("Authorization", "") or request.headers.get("X-Token", "")
        if sent.removeprefix("Bearer ") != self.valid:
            return Response("expired", status=401)
        return Response(json.dumps({"ok": True}), content_type="application/json")


def test_oauth2_client_credentials_fetches_the_token_once_for_several_calls(http_acme, httpserver):
    server = TokenServer(httpserver)
    auth = {
        "type": "oauth2_client_credentials", "token_url": httpserver.url_for("/oauth/token"),
        "client_id": "cid", "client_secret": "csecret-42", "scope": "sms.send", "audience": "https://api",
    }  # fmt: skip
    action = _action(http_acme, httpserver, auth)
    results = [action_test(action=action, values=VALUES) for _ in range(3)]
    assert [r.outcome for r in results] == ["succeeded"] * 3
    assert len(server.token_requests) == 1
    form = server.token_requests[0].form
    assert dict(form) == {
        "grant_type": "client_credentials", "client_id": "cid", "client_secret": "csecret-42",
        "scope": "sms.send", "audience": "https://api",
    }  # fmt: skip
    assert "token-1" not in json.dumps(results[0].request)


OAUTH2 = {"type": "oauth2_client_credentials", "client_id": "cid", "client_secret": "csecret-42"}


def test_oauth2_401_refreshes_the_token_once_and_recovers(http_acme, httpserver):
    server = TokenServer(httpserver)
    action = _action(http_acme, httpserver, {**OAUTH2, "token_url": httpserver.url_for("/oauth/token")})
    assert action_test(action=action, values=VALUES).outcome == "succeeded"
    server.valid = "revoked-by-provider"  # the cached token-1 no longer works
    result = action_test(action=action, values=VALUES)
    assert result.outcome == "succeeded"
    assert server.issued == ["token-1", "token-2"]
    statuses = [response.status_code for request, response in httpserver.log if request.path.startswith("/v1/")]
    assert statuses == [200, 401, 200]


def test_oauth2_refreshes_only_once_when_401_persists(http_acme, httpserver):
    server = TokenServer(httpserver)
    server.api = lambda request: Response("no", status=401)
    httpserver.clear_all_handlers()
    httpserver.expect_request("/oauth/token").respond_with_handler(server.token)
    httpserver.expect_request("/v1/acc1/messages").respond_with_handler(server.api)
    action = _action(http_acme, httpserver, {**OAUTH2, "token_url": httpserver.url_for("/oauth/token")})
    result = action_test(action=action, values=VALUES)
    assert result.outcome == "http_401"
    assert len(server.token_requests) == 2
    assert len([r for r, _ in httpserver.log if r.path.startswith("/v1/")]) == 2


def test_token_endpoint_with_form_body_and_header_injection(http_acme, httpserver):
    server = TokenServer(httpserver, token_path="/login")
    auth = {
        "type": "token_endpoint",
        "request": {
            "url": httpserver.url_for("/login"), "method": "POST", "headers": {"X-Client": "c1"},
            "body": {"user": "svc", "password": "pw-secret-9"}, "body_type": "form",
        },
        "token_path": "data.jwt", "expires_in_path": "data.ttl",
        "inject": {"as": "header", "name": "X-Token"},
    }  # fmt: skip
    action = _action(http_acme, httpserver, auth)
    results = [action_test(action=action, values=VALUES) for _ in range(2)]
    assert [r.outcome for r in results] == ["succeeded", "succeeded"]
    assert len(server.token_requests) == 1
    login = server.token_requests[0]
    assert dict(login.form) == {"user": "svc", "password": "pw-secret-9"}
    assert login.headers["X-Client"] == "c1"
    assert _received(httpserver).headers["X-Token"] == "token-1"


def test_token_endpoint_failure_reads_as_a_sentence(http_acme, httpserver):
    httpserver.expect_request("/login").respond_with_data("nope", status=403)
    auth = {
        "type": "token_endpoint",
        "request": {"url": httpserver.url_for("/login"), "body": {"k": "v"}},
        "token_path": "token", "cache_seconds": 60, "inject": {"as": "bearer"},
    }  # fmt: skip
    result = action_test(action=_action(http_acme, httpserver, auth), values=VALUES)
    assert result.outcome == "error"
    assert result.error == "Could not get an access token from localhost: it answered HTTP 403."
