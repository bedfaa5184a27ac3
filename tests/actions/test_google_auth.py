"""Google service-account auth against a loopback token endpoint that checks the signed assertion
with the key's public half, as Google's does: one token for many calls, a new one after a 401."""

import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug import Request, Response

from actions.models import Action, Invocation
from actions.runtime import invocation_enqueue, invocation_send
from tests.conftest import token_client

ACTIONS_URL = "/api/v1/orgs/acme/actions/"
SCOPES = "https://www.googleapis.com/auth/firebase.messaging"
CLIENT_EMAIL = "conduit@acme-project.iam.gserviceaccount.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PARAMETERS = [{"name": "device", "type": "string", "required": True, "description": "FCM token"}]


def _rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def private_key():
    return _rsa_key()


class Google:
    """The token endpoint (verifies the RS256 assertion) and an API accepting only the current token."""

    def __init__(self, httpserver, public_key):
        self.public_key = public_key
        self.token_uri = httpserver.url_for("/token")
        self.assertions: list[dict] = []
        self.headers: list[dict] = []
        self.issued: list[str] = []
        self.valid: str | None = None
        self.api_calls: list[Request] = []
        self.api_down = False  # True: the API refuses every token
        httpserver.expect_request("/token", method="POST").respond_with_handler(self.token)
        httpserver.expect_request("/v1/projects/acme-project/messages:send").respond_with_handler(self.api)

    def token(self, request: Request) -> Response:
        if request.form.get("grant_type") != JWT_BEARER:
            return Response(json.dumps({"error": "unsupported_grant_type"}), status=400)
        assertion = request.form["assertion"]
        try:
            claims = jwt.decode(assertion, self.public_key, algorithms=["RS256"], audience=self.token_uri)
        except jwt.PyJWTError as exc:
            return Response(json.dumps({"error": "invalid_grant", "error_description": str(exc)}), status=400)
        self.assertions.append(claims)
        self.headers.append(jwt.get_unverified_header(assertion))
        if claims["iss"] != CLIENT_EMAIL or not claims.get("scope"):
            return Response(json.dumps({"error": "invalid_scope"}), status=400)
        self.valid = "ya29.test" if not self.issued else f"ya29.test-{len(self.issued) + 1}"
        self.issued.append(self.valid)
        return Response(json.dumps({"access_token": self.valid, "expires_in": 3600, "token_type": "Bearer"}),
                        content_type="application/json")  # fmt: skip

    def api(self, request: Request) -> Response:
        self.api_calls.append(request)
        if self.api_down or request.headers.get("Authorization") != f"Bearer {self.valid}":
            return Response(json.dumps({"error": {"code": 401, "status": "UNAUTHENTICATED"}}), status=401)
        return Response(json.dumps({"name": "projects/acme-project/messages/1"}), content_type="application/json")


@pytest.fixture
def google(world, httpserver, allow_loopback, private_key):
    world.acme.allow_http = True
    world.acme.save()
    return Google(httpserver, private_key.public_key())


def _key_file(google, key, **overrides) -> str:
    return json.dumps({
        "type": "service_account", "project_id": "acme-project", "private_key_id": "kid-0123456789",
        "private_key": _pem(key), "client_email": CLIENT_EMAIL, "client_id": "1234567890",
        "token_uri": google.token_uri, **overrides,
    })  # fmt: skip


@pytest.fixture
def tech(world):
    return token_client(world.user("technical"))


def _create(tech, httpserver, auth, **overrides):
    data = {
        "name": "Push", "status": "active", "url": httpserver.url_for("/v1/projects/acme-project/messages:send"),
        "body": {"message": {"token": "{{device}}", "notification": {"title": "Hi"}}}, "parameters": PARAMETERS,
        "auth": auth, **overrides,
    }  # fmt: skip
    return tech.post(ACTIONS_URL, data, format="json")


@pytest.fixture
def push(google, tech, httpserver, private_key):
    response = _create(tech, httpserver, {"type": "google_service_account", "scopes": SCOPES,
                                          "service_account_json": _key_file(google, private_key)})  # fmt: skip
    assert response.status_code == 201, response.content
    return response.json()


def _test_call(tech, action):
    response = tech.post(f"{ACTIONS_URL}{action['id']}/test/", {"parameters": {"device": "dev-1"}}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_many_calls_share_one_token_from_a_verified_assertion(push, google, tech):
    results = [_test_call(tech, push) for _ in range(5)]
    assert [r["outcome"] for r in results] == ["succeeded"] * 5
    assert [r.headers["Authorization"] for r in google.api_calls] == ["Bearer ya29.test"] * 5
    assert google.issued == ["ya29.test"]  # the token endpoint was called exactly once
    [claims] = google.assertions
    assert claims["iss"] == CLIENT_EMAIL and claims["scope"] == SCOPES and claims["aud"] == google.token_uri
    assert claims["exp"] - claims["iat"] == 3600
    assert google.headers[0]["kid"] == "kid-0123456789" and google.headers[0]["alg"] == "RS256"
    assert json.loads(google.api_calls[0].data) == {"message": {"token": "dev-1", "notification": {"title": "Hi"}}}


def test_invocations_share_the_token_the_test_call_fetched(push, google, tech):
    assert _test_call(tech, push)["outcome"] == "succeeded"
    action = Action.objects.get(pk=push["id"])
    invocations = [invocation_enqueue(action=action, values={"device": f"dev-{n}"}) for n in range(4)]
    invocation_send(invocation_id=invocations[0].pk)  # one batch takes the four
    statuses = set(Invocation.objects.filter(pk__in=[i.pk for i in invocations]).values_list("status", flat=True))
    assert statuses == {"succeeded"}
    assert len(google.api_calls) == 5 and google.issued == ["ya29.test"]
    assert all(r.headers["Authorization"] == "Bearer ya29.test" for r in google.api_calls)


def test_a_401_fetches_a_new_token_once_and_recovers(push, google, tech):
    assert _test_call(tech, push)["outcome"] == "succeeded"
    google.valid = "revoked-by-google"  # the cached ya29.test no longer works
    result = _test_call(tech, push)
    assert result["outcome"] == "succeeded"
    assert google.issued == ["ya29.test", "ya29.test-2"]
    assert [r.headers["Authorization"] for r in google.api_calls] == [
        "Bearer ya29.test", "Bearer ya29.test", "Bearer ya29.test-2"
    ]  # fmt: skip
    assert _test_call(tech, push)["outcome"] == "succeeded"  # the new token is the cached one now
    assert len(google.issued) == 2


def test_a_401_that_persists_is_answered_after_one_new_token(push, google, tech):
    google.api_down = True
    result = _test_call(tech, push)
    assert result["outcome"] == "http_401" and result["status_code"] == 401
    assert google.issued == ["ya29.test", "ya29.test-2"]  # no third token: one refresh, not a loop
    assert len(google.api_calls) == 2


def test_changing_the_scopes_fetches_a_token_for_them(push, google, tech):
    """The cached token was granted for the old scopes: it must not be used for the new ones."""
    assert _test_call(tech, push)["outcome"] == "succeeded"
    new_scopes = "https://www.googleapis.com/auth/cloud-platform"
    response = tech.patch(f"{ACTIONS_URL}{push['id']}/", {"auth": {"type": "google_service_account",
                                                                    "scopes": new_scopes}}, format="json")  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json()["auth"]["service_account_json_set"] is True  # the key was kept
    assert _test_call(tech, push)["outcome"] == "succeeded"
    assert [c["scope"] for c in google.assertions] == [SCOPES, new_scopes]


def test_a_refused_assertion_is_an_error_and_the_api_is_not_called(google, tech, httpserver):
    """A key Google does not know (signed with another key) gets no token."""
    response = _create(tech, httpserver, {"type": "google_service_account",
                                          "service_account_json": _key_file(google, _rsa_key())})  # fmt: skip
    assert response.status_code == 201
    result = _test_call(tech, response.json())
    assert result["outcome"] == "error"
    assert "Could not get an access token" in result["error"] and "HTTP 400" in result["error"]
    assert google.api_calls == [] and google.issued == []


# --- the key file is a secret -------------------------------------------------------------


def test_the_key_file_is_never_answered(push, google, tech, private_key):
    assert push["auth"] == {"type": "google_service_account", "scopes": SCOPES, "service_account_json_set": True}
    pem_line = _pem(private_key).splitlines()[5]
    result = _test_call(tech, push)
    assert ["Authorization", "Bearer ********"] in result["request"]["headers"]
    action = Action.objects.get(pk=push["id"])
    invocation = invocation_enqueue(action=action, values={"device": "dev-9"})
    invocation_send(invocation_id=invocation.pk)
    responses = [
        tech.get(f"{ACTIONS_URL}{push['id']}/"),
        tech.get(ACTIONS_URL),
        tech.get(f"{ACTIONS_URL}{push['id']}/export/"),
        tech.get(f"/api/v1/orgs/acme/invocations/{invocation.pk}/"),
    ]
    for response in responses:
        assert response.status_code == 200
        text = response.content.decode()
        assert pem_line not in text and "PRIVATE KEY" not in text and "kid-0123456789" not in text
        assert "ya29.test" not in text
    assert "ya29.test" not in json.dumps(result)


@pytest.mark.parametrize(
    "key_file, message",
    [
        ("not json at all", "service_account_json: not JSON"),
        ('{"type": "authorized_user", "client_id": "x"}', "not a service-account key file"),
        ("[1, 2]", "not a service-account key file"),
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"},
         "its private_key is not a PEM private key"),
        ({"client_email": ""}, "the key file has no client_email"),
        ({"token_uri": "ftp://oauth2.example.com/token"}, "token_uri must be an absolute https:// URL"),
    ],
)  # fmt: skip
def test_an_invalid_key_file_is_a_400_on_auth(google, tech, httpserver, private_key, key_file, message):
    text = key_file if isinstance(key_file, str) else _key_file(google, private_key, **key_file)
    response = _create(tech, httpserver, {"type": "google_service_account", "service_account_json": text})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert message in " ".join(errors["auth"]), errors
    assert not Action.objects.exists()


def test_a_plain_http_token_uri_is_refused_where_http_is_not_allowed(world, tech, private_key):
    world.acme.allow_http = False
    world.acme.save()
    key_file = json.dumps({"type": "service_account", "private_key": _pem(private_key), "client_email": CLIENT_EMAIL,
                           "token_uri": "http://oauth2.example.com/token"})  # fmt: skip
    data = {"name": "Push", "url": "https://fcm.example.com/send", "parameters": [],
            "auth": {"type": "google_service_account", "service_account_json": key_file}}  # fmt: skip
    response = tech.post(ACTIONS_URL, data, format="json")
    assert response.status_code == 400
    assert "token_uri must use https://" in " ".join(response.json()["errors"]["auth"])


def test_an_active_action_needs_the_key_file(google, tech, httpserver):
    response = _create(tech, httpserver, {"type": "google_service_account", "scopes": SCOPES})
    assert response.status_code == 400
    assert "service_account_json: required" in " ".join(response.json()["errors"]["auth"])


def test_a_key_that_is_not_rsa_is_a_400_not_a_failure_at_send_time(google, tech, httpserver, private_key):
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pem = _pem(ec.generate_private_key(ec.SECP256R1()))
    text = _key_file(google, private_key, private_key=ec_pem)
    response = _create(tech, httpserver, {"type": "google_service_account", "service_account_json": text})
    assert response.status_code == 400 and "not an RSA key" in " ".join(response.json()["errors"]["auth"])
