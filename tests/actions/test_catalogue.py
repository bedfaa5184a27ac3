"""Action templates (actions/services/templates.py): each one, created through the API and pointed at a loopback
receiver standing in for the provider, sends exactly the provider's documented request; the credentials
never come back out of Conduit; the API and the admin pages refuse what they should."""

import base64
import hashlib
import json
from urllib.parse import parse_qs, parse_qsl

import jwt
import pytest
import standardwebhooks
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.urls import reverse

from actions.models import Action, SecretValue
from actions.runtime import invocation_enqueue, invocation_send
from actions.services.templates import TEMPLATES
from tests.conftest import token_client

ORG = "/api/v1/orgs/acme"
TEMPLATES_API = f"{ORG}/action-templates/"
ACTIONS_API = f"{ORG}/actions/"
FORM_TYPE = "application/x-www-form-urlencoded"

TWILIO_TOKEN = "twAUTH-secret-token-8642"
SENDGRID_KEY = "SG.key-SECRET-13579"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXX"
SLACK_PATH = "T000/B000/XXXX"
TEAMS_HOST = "https://prod-01.westus.logic.azure.com:443"
TEAMS_SIG = "sigSECRET-Value-246"
TEAMS_URL = (
    f"{TEAMS_HOST}/workflows/abc/triggers/manual/paths/invoke"
    f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={TEAMS_SIG}"
)
META_TOKEN = "EAAB-meta-SECRET-token"
SEGMENT_KEY = "seg-WRITE-key-SECRET"
SIGNING_SECRET = "whsec_" + base64.b64encode(b"a-signing-secret-of-32-bytes!!!!").decode()
FCM_TOKEN = "ya29.x"

EXPECTED_KEYS = {
    "twilio_sms", "sendgrid_email", "fcm_push", "slack_message", "teams_message",
    "meta_conversions", "segment_track", "webhook", "smtp_email",
}  # fmt: skip


@pytest.fixture
def acme(world, allow_loopback):
    world.acme.allow_http = True
    world.acme.save()
    return world.acme


@pytest.fixture
def tech(world):
    return token_client(world.user("technical"))


def _create(tech, template: str, credentials: dict, **extra) -> dict:
    response = tech.post(TEMPLATES_API, {"template": template, "credentials": credentials, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _receiver_base(httpserver) -> str:
    return f"http://127.0.0.1:{httpserver.port}"


def _point_at(tech, action: dict, provider: str, httpserver, secrets: dict | None = None) -> dict:
    """Swap the provider's scheme and host for the receiver's; the path stays exactly as it is. Stored
    credentials do not follow an action to another host: `secrets` gives them again with the move."""
    assert action["url"].startswith(provider + "/"), action["url"]
    url = _receiver_base(httpserver) + action["url"].removeprefix(provider)
    change: dict = {"url": url}
    if secrets:
        change["auth"] = {**{k: v for k, v in action["auth"].items() if not k.endswith("_set")}, **secrets}
    response = tech.patch(f"{ACTIONS_API}{action['id']}/", change, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["url"] == url
    return response.json()


def _test_call(tech, action: dict, parameters: dict):
    response = tech.post(f"{ACTIONS_API}{action['id']}/test/", {"parameters": parameters}, format="json")
    assert response.status_code == 200, response.content
    return response


def _assert_never_shown(tech, action: dict, secrets: list[str], *responses) -> None:
    """Neither the given answers nor the action's GET hold a secret."""
    detail = tech.get(f"{ACTIONS_API}{action['id']}/")
    assert detail.status_code == 200
    for response in (*responses, detail):
        text = response.content.decode()
        for secret in secrets:
            assert secret not in text


def _only_request(httpserver):
    assert len(httpserver.log) == 1, httpserver.log
    return httpserver.log[0][0]


# --- each HTTP template against a stand-in for its provider ----------------------------


def test_twilio_sms_sends_twilios_documented_form_post_with_basic_auth(acme, tech, httpserver):
    action = _create(
        tech, "twilio_sms", {"account_sid": "AC123", "auth_token": TWILIO_TOKEN, "from_number": "+14155550100"}
    )
    assert action["kind"] == "http" and action["status"] == "draft"
    assert action["auth"] == {"type": "basic", "username": "AC123", "password_set": True}
    action = _point_at(tech, action, "https://api.twilio.com", httpserver, {"password": TWILIO_TOKEN})
    httpserver.expect_request("/2010-04-01/Accounts/AC123/Messages.json", method="POST").respond_with_json(
        {"sid": "SM1", "status": "queued"}, status=201
    )

    response = _test_call(tech, action, {"to": "+33600000000", "body": "Hello & welcome"})

    result = response.json()
    assert result["outcome"] == "succeeded" and result["status_code"] == 201, result
    received = _only_request(httpserver)
    assert received.method == "POST"
    assert received.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert received.query_string == b""
    assert received.headers["Content-Type"] == FORM_TYPE
    assert received.headers["Authorization"] == "Basic " + base64.b64encode(f"AC123:{TWILIO_TOKEN}".encode()).decode()
    assert parse_qs(received.get_data(as_text=True), keep_blank_values=True) == {
        "To": ["+33600000000"], "From": ["+14155550100"], "Body": ["Hello & welcome"],
    }  # fmt: skip
    encoded = base64.b64encode(f"AC123:{TWILIO_TOKEN}".encode()).decode()
    _assert_never_shown(tech, action, [TWILIO_TOKEN, encoded], response)


def test_sendgrid_email_sends_the_v3_mail_send_json_with_the_bearer_key(acme, tech, httpserver):
    action = _create(
        tech, "sendgrid_email", {"api_key": SENDGRID_KEY, "from_email": "shop@acme.test", "from_name": "Acme Shop"}
    )
    assert action["auth"] == {"type": "bearer", "token_set": True}
    action = _point_at(tech, action, "https://api.sendgrid.com", httpserver, {"token": SENDGRID_KEY})
    httpserver.expect_request("/v3/mail/send", method="POST").respond_with_data("", status=202)

    response = _test_call(tech, action, {"to": "ann@example.com", "subject": "Your order", "text": "It ships today."})

    assert response.json()["outcome"] == "succeeded", response.json()
    received = _only_request(httpserver)
    assert (received.method, received.path, received.query_string) == ("POST", "/v3/mail/send", b"")
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["Authorization"] == f"Bearer {SENDGRID_KEY}"
    assert json.loads(received.data) == {
        "personalizations": [{"to": [{"email": "ann@example.com"}]}],
        "from": {"email": "shop@acme.test", "name": "Acme Shop"},
        "subject": "Your order",
        "content": [{"type": "text/plain", "value": "It ships today."}],
    }
    _assert_never_shown(tech, action, [SENDGRID_KEY], response)


def test_sendgrid_without_a_from_name_sends_only_the_address(acme, tech, httpserver):
    action = _create(tech, "sendgrid_email", {"api_key": SENDGRID_KEY, "from_email": "shop@acme.test"})
    action = _point_at(tech, action, "https://api.sendgrid.com", httpserver, {"token": SENDGRID_KEY})
    httpserver.expect_request("/v3/mail/send").respond_with_data("", status=202)
    _test_call(tech, action, {"to": "ann@example.com", "subject": "S", "text": "T"})
    assert json.loads(_only_request(httpserver).data)["from"] == {"email": "shop@acme.test"}


def _service_account(httpserver) -> tuple[str, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_file = {
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "kid-0123456789",
        "private_key": pem,
        "client_email": "conduit@demo-project.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": _receiver_base(httpserver) + "/token",
    }
    return json.dumps(key_file), key


def test_fcm_push_gets_a_token_with_a_signed_assertion_then_sends_the_v1_message(acme, tech, httpserver):
    key_json, key = _service_account(httpserver)
    action = _create(tech, "fcm_push", {"service_account_json": key_json})
    assert action["auth"]["type"] == "google_service_account"
    assert action["auth"]["service_account_json_set"] is True
    assert action["auth"]["scopes"] == "https://www.googleapis.com/auth/firebase.messaging"
    action = _point_at(tech, action, "https://fcm.googleapis.com", httpserver, {"service_account_json": key_json})
    assert action["url"].endswith("/v1/projects/demo-project/messages:send")
    httpserver.expect_request("/token", method="POST").respond_with_json(
        {"access_token": FCM_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
    )
    httpserver.expect_request("/v1/projects/demo-project/messages:send", method="POST").respond_with_json(
        {"name": "projects/demo-project/messages/0:1"}
    )

    response = _test_call(tech, action, {"device_token": "dev-TOKEN-1", "title": "Sale", "body": "50% off today"})

    assert response.json()["outcome"] == "succeeded", response.json()
    assert len(httpserver.log) == 2
    token_request, message = httpserver.log[0][0], httpserver.log[1][0]
    assert (token_request.method, token_request.path) == ("POST", "/token")
    assert token_request.headers["Content-Type"] == FORM_TYPE
    form = parse_qs(token_request.get_data(as_text=True))
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = jwt.decode(
        form["assertion"][0], key.public_key(), algorithms=["RS256"], audience=_receiver_base(httpserver) + "/token"
    )
    assert claims["iss"] == "conduit@demo-project.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(form["assertion"][0])["kid"] == "kid-0123456789"

    assert message.method == "POST"
    assert message.path == "/v1/projects/demo-project/messages:send"
    assert message.query_string == b""
    assert message.headers["Content-Type"] == "application/json"
    assert message.headers["Authorization"] == f"Bearer {FCM_TOKEN}"
    assert json.loads(message.data) == {
        "message": {"token": "dev-TOKEN-1", "notification": {"title": "Sale", "body": "50% off today"}}
    }
    pem_line = json.loads(key_json)["private_key"].splitlines()[1]
    _assert_never_shown(tech, action, [pem_line, "PRIVATE KEY", FCM_TOKEN], response)


def test_fcm_refuses_a_key_file_that_is_not_a_service_account_naming_the_credential(acme, tech):
    response = tech.post(
        TEMPLATES_API,
        {"template": "fcm_push", "credentials": {"service_account_json": '{"type": "authorized_user"}'}},
        format="json",
    )
    assert response.status_code == 400
    assert "service_account" in response.json()["errors"]["credentials.service_account_json"][0]
    assert not Action.objects.exists()


def test_slack_message_keeps_the_webhook_path_in_a_secret_value_and_posts_the_text(acme, tech, httpserver):
    action = _create(tech, "slack_message", {"webhook_url": SLACK_URL})
    assert action["url"] == "https://hooks.slack.com/services/{{secrets.SLACK_WEBHOOK}}"
    assert action["auth"] == {"type": "none"}
    assert SecretValue.objects.get(organization=acme, name="SLACK_WEBHOOK").value == SLACK_PATH
    action = _point_at(tech, action, "https://hooks.slack.com", httpserver)
    assert action["url"].endswith("/services/{{secrets.SLACK_WEBHOOK}}")
    httpserver.expect_request("/services/T000/B000/XXXX", method="POST").respond_with_data("ok")

    response = _test_call(tech, action, {"text": "New order #42"})

    assert response.json()["outcome"] == "succeeded", response.json()
    received = _only_request(httpserver)
    assert (received.method, received.path, received.query_string) == ("POST", "/services/T000/B000/XXXX", b"")
    assert received.headers["Content-Type"] == "application/json"
    assert "Authorization" not in received.headers
    assert json.loads(received.data) == {"text": "New order #42"}
    _assert_never_shown(tech, action, [SLACK_PATH, "B000/XXXX"], response)


def test_teams_workflow_url_keeps_its_query_and_only_the_sig_is_secret(acme, tech, httpserver):
    action = _create(tech, "teams_message", {"webhook_url": TEAMS_URL})
    assert action["url"] == f"{TEAMS_HOST}/workflows/abc/triggers/manual/paths/invoke"
    assert action["query"] == [
        {"name": "api-version", "value": "2016-06-01"},
        {"name": "sp", "value": "/triggers/manual/run"},
        {"name": "sv", "value": "1.0"},
    ]
    assert action["auth"] == {"type": "api_key", "in": "query", "name": "sig", "value_set": True}
    action = _point_at(tech, action, TEAMS_HOST, httpserver, {"value": TEAMS_SIG})
    httpserver.expect_request("/workflows/abc/triggers/manual/paths/invoke", method="POST").respond_with_data(
        "", status=202
    )

    response = _test_call(tech, action, {"text": "Deploy done"})

    assert response.json()["outcome"] == "succeeded", response.json()
    received = _only_request(httpserver)
    assert (received.method, received.path) == ("POST", "/workflows/abc/triggers/manual/paths/invoke")
    assert parse_qsl(received.query_string.decode(), keep_blank_values=True) == [
        ("api-version", "2016-06-01"), ("sp", "/triggers/manual/run"), ("sv", "1.0"), ("sig", TEAMS_SIG),
    ]  # fmt: skip
    assert received.headers["Content-Type"] == "application/json"
    assert "Authorization" not in received.headers
    assert json.loads(received.data) == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{"type": "TextBlock", "text": "Deploy done", "wrap": True}],
                },
            }
        ],
    }
    _assert_never_shown(tech, action, [TEAMS_SIG], response)


def test_teams_connector_url_without_sig_keeps_its_path_in_a_secret_value(acme, tech):
    url = "https://acme.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456"
    action = _create(tech, "teams_message", {"webhook_url": url})
    assert action["url"] == "https://acme.webhook.office.com/{{secrets.TEAMS_WEBHOOK}}"
    assert action["auth"] == {"type": "none"}
    secret = SecretValue.objects.get(organization=acme, name="TEAMS_WEBHOOK")
    assert secret.value == "webhookb2/abc@def/IncomingWebhook/123/456"
    assert "IncomingWebhook" not in tech.get(f"{ACTIONS_API}{action['id']}/").content.decode()


def test_meta_conversions_sends_the_data_array_with_the_token_in_the_query(acme, tech, httpserver):
    action = _create(tech, "meta_conversions", {"pixel_id": "1234567890", "access_token": META_TOKEN})
    assert action["auth"] == {"type": "api_key", "in": "query", "name": "access_token", "value_set": True}
    action = _point_at(tech, action, "https://graph.facebook.com", httpserver, {"value": META_TOKEN})
    httpserver.expect_request("/v21.0/1234567890/events", method="POST").respond_with_json(
        {"events_received": 1, "fbtrace_id": "A1"}
    )
    email_hash = hashlib.sha256(b"ann@example.com").hexdigest()

    response = _test_call(
        tech,
        action,
        {
            "event_name": "Purchase", "event_time": 1767225600, "email_sha256": email_hash,
            "custom_data": {"value": 12.5, "currency": "EUR"},
        },
    )  # fmt: skip

    assert response.json()["outcome"] == "succeeded", response.json()
    received = _only_request(httpserver)
    assert (received.method, received.path) == ("POST", "/v21.0/1234567890/events")
    assert parse_qsl(received.query_string.decode()) == [("access_token", META_TOKEN)]
    assert received.headers["Content-Type"] == "application/json"
    assert "Authorization" not in received.headers
    assert json.loads(received.data) == {
        "data": [
            {
                "event_name": "Purchase",
                "event_time": 1767225600,
                "action_source": "system_generated",
                "user_data": {"em": [email_hash]},
                "custom_data": {"value": 12.5, "currency": "EUR"},
            }
        ]
    }
    _assert_never_shown(tech, action, [META_TOKEN], response)


def test_meta_refuses_a_pixel_id_that_is_not_digits(acme, tech):
    response = tech.post(
        TEMPLATES_API,
        {"template": "meta_conversions", "credentials": {"pixel_id": "px-1", "access_token": META_TOKEN}},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["credentials.pixel_id"]


@pytest.mark.parametrize("pixel_id", ["²", "１２３"])
def test_meta_refuses_a_pixel_id_of_non_ascii_digits(acme, tech, pixel_id):
    response = tech.post(
        TEMPLATES_API,
        {"template": "meta_conversions", "credentials": {"pixel_id": pixel_id, "access_token": META_TOKEN}},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["credentials.pixel_id"]


def test_segment_track_puts_the_write_key_in_the_body_from_a_secret_value(acme, tech, httpserver):
    action = _create(tech, "segment_track", {"write_key": SEGMENT_KEY})
    assert action["body"]["writeKey"] == "{{secrets.SEGMENT_WRITE_KEY}}"
    action = _point_at(tech, action, "https://api.segment.io", httpserver)
    httpserver.expect_request("/v1/track", method="POST").respond_with_json({"success": True})

    response = _test_call(
        tech, action, {"user_id": "u-1", "event": "Order Completed", "properties": {"total": 12.5, "items": 2}}
    )

    assert response.json()["outcome"] == "succeeded", response.json()
    received = _only_request(httpserver)
    assert (received.method, received.path, received.query_string) == ("POST", "/v1/track", b"")
    assert received.headers["Content-Type"] == "application/json"
    assert "Authorization" not in received.headers
    assert json.loads(received.data) == {
        "writeKey": SEGMENT_KEY,
        "userId": "u-1",
        "event": "Order Completed",
        "properties": {"total": 12.5, "items": 2},
    }
    _assert_never_shown(tech, action, [SEGMENT_KEY], response)


def _webhook_action(tech, httpserver) -> dict:
    action = _create(
        tech, "webhook", {"url": "https://hooks.example.com/conduit/events", "signing_secret": SIGNING_SECRET}
    )
    assert action["signing_secret_set"] is True and action["auth"] == {"type": "none"}
    action = _point_at(tech, action, "https://hooks.example.com", httpserver)
    httpserver.expect_request("/conduit/events", method="POST").respond_with_json({"received": True})
    return action


WEBHOOK_VALUES = {"event": "cart_abandoned", "profile_id": "p-7", "data": {"items": 2, "total": 31.5}}
WEBHOOK_BODY = {"event": "cart_abandoned", "profile_id": "p-7", "data": {"items": 2, "total": 31.5}}


def test_webhook_test_call_posts_the_json_event(acme, tech, httpserver):
    action = _webhook_action(tech, httpserver)

    response = _test_call(tech, action, WEBHOOK_VALUES)

    assert response.json()["outcome"] == "succeeded", response.json()
    received = _only_request(httpserver)
    assert (received.method, received.path, received.query_string) == ("POST", "/conduit/events", b"")
    assert received.headers["Content-Type"] == "application/json"
    assert json.loads(received.data) == WEBHOOK_BODY
    _assert_never_shown(tech, action, [SIGNING_SECRET, SIGNING_SECRET.removeprefix("whsec_")], response)


def test_webhook_test_call_is_signed_per_standard_webhooks(acme, tech, httpserver):
    action = _webhook_action(tech, httpserver)
    _test_call(tech, action, WEBHOOK_VALUES)
    received = _only_request(httpserver)
    payload = standardwebhooks.Webhook(SIGNING_SECRET).verify(received.get_data(), dict(received.headers))
    assert payload == WEBHOOK_BODY


def test_webhook_invocation_is_signed_per_standard_webhooks(acme, tech, httpserver):
    action = _webhook_action(tech, httpserver)
    tech.patch(f"{ACTIONS_API}{action['id']}/", {"status": "active"}, format="json")

    invocation = invocation_enqueue(action=Action.objects.get(pk=action["id"]), values=WEBHOOK_VALUES)
    invocation_send(invocation_id=invocation.pk)

    invocation.refresh_from_db()
    assert invocation.status == "succeeded", invocation.error
    received = _only_request(httpserver)
    assert received.path == "/conduit/events"
    payload = standardwebhooks.Webhook(SIGNING_SECRET).verify(received.get_data(), dict(received.headers))
    assert payload == WEBHOOK_BODY
    assert received.headers["webhook-id"] == str(invocation.pk)


def test_webhook_without_a_signing_secret_gets_a_generated_one(acme, tech):
    action = _create(tech, "webhook", {"url": "https://hooks.example.com/in"})
    assert action["signing_secret_set"] is True
    stored = Action.objects.get(pk=action["id"]).signing_secret
    assert stored.startswith("whsec_") and action["generated_signing_secret"] == stored  # shown this once


# --- the built-in email template -------------------------------------------------------


def test_smtp_email_creates_an_email_action_once_email_settings_exist(acme, tech):
    refused = tech.post(TEMPLATES_API, {"template": "smtp_email", "status": "active"}, format="json")
    assert refused.status_code == 400 and "status" in refused.json()["errors"]

    settings = tech.put(
        f"{ORG}/email-settings/",
        {"host": "smtp.example.com", "port": 2525, "security": "none", "default_from": "shop@acme.test"},
        format="json",
    )
    assert settings.status_code == 200, settings.content
    action = _create(tech, "smtp_email", {"from": "news@acme.test"}, status="active", name="Newsletter")

    assert action["kind"] == "email" and action["status"] == "active" and action["name"] == "Newsletter"
    assert action["url"] == "" and action["auth"] == {"type": "none"}
    assert action["email"] == {"to": "{{to}}", "subject": "{{subject}}", "text": "{{text}}", "from": "news@acme.test"}
    assert [(p["name"], p["type"], p["required"]) for p in action["parameters"]] == [
        ("to", "string", True), ("subject", "string", True), ("text", "string", True),
    ]  # fmt: skip
    default_sender = _create(tech, "smtp_email", {})
    assert default_sender["email"] == {"to": "{{to}}", "subject": "{{subject}}", "text": "{{text}}"}
    assert default_sender["name"] == "Send email (built-in SMTP)" and default_sender["status"] == "draft"


# --- the catalogue API -----------------------------------------------------------------


def test_list_has_every_template_with_its_credentials_parameters_and_docs(acme, tech):
    response = tech.get(TEMPLATES_API)
    assert response.status_code == 200
    listed = {t["key"]: t for t in response.json()}
    assert set(listed) == EXPECTED_KEYS == set(TEMPLATES)
    for key, template in listed.items():
        assert template["docs_url"].startswith("https://"), key
        assert template["name"] and template["provider"] and template["request"], key
        assert template["credentials"], key
        for credential in template["credentials"]:
            assert {"name", "label", "secret", "required"} <= set(credential), key
        assert template["parameters"], key
        for parameter in template["parameters"]:
            assert {"name", "type", "required", "default", "description"} == set(parameter), key
    twilio = listed["twilio_sms"]
    assert [(c["name"], c["secret"], c["required"]) for c in twilio["credentials"]] == [
        ("account_sid", False, True), ("auth_token", True, True), ("from_number", False, True),
    ]  # fmt: skip
    assert [p["name"] for p in twilio["parameters"]] == ["to", "body"]
    assert [(c["name"], c["secret"], c["required"]) for c in listed["webhook"]["credentials"]] == [
        ("url", False, True), ("signing_secret", True, False),
    ]  # fmt: skip


def test_detail_answers_one_template_and_404_for_an_unknown_key(acme, tech):
    detail = tech.get(f"{TEMPLATES_API}slack_message/")
    assert detail.status_code == 200
    assert detail.json()["key"] == "slack_message"
    assert detail.json()["credentials"][0]["name"] == "webhook_url" and detail.json()["credentials"][0]["secret"]
    assert tech.get(f"{TEMPLATES_API}no_such_template/").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"template": "carrier_pigeon", "credentials": {}}, "template"),
        ({"template": "twilio_sms", "credentials": {"account_sid": "AC1", "from_number": "+1"}},
         "credentials.auth_token"),
        ({"template": "twilio_sms", "credentials": {"account_sid": "AC1", "auth_token": "  ", "from_number": "+1"}},
         "credentials.auth_token"),
        ({"template": "slack_message", "credentials": {"webhook_url": "https://example.com/services/T/B/X"}},
         "credentials.webhook_url"),
        ({"template": "slack_message", "credentials": {"webhook_url": "http://hooks.slack.com/services/T/B/X"}},
         "credentials.webhook_url"),
        ({"template": "slack_message", "credentials": {"webhook_url": "https://hooks.slack.com/services/"}},
         "credentials.webhook_url"),
        ({"template": "slack_message", "credentials": {"webhook_url": SLACK_URL, "channel": "#general"}},
         "credentials.channel"),
        ({"template": "teams_message", "credentials": {"webhook_url": "not a url"}}, "credentials.webhook_url"),
    ],
)  # fmt: skip
def test_bad_requests_answer_400_naming_the_field(acme, tech, body, field):
    response = tech.post(TEMPLATES_API, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not Action.objects.exists() and not SecretValue.objects.exists()


def test_a_secret_value_is_shared_by_the_same_url_and_a_new_one_made_for_another(acme, tech):
    first = _create(tech, "slack_message", {"webhook_url": SLACK_URL})
    second = _create(tech, "slack_message", {"webhook_url": SLACK_URL})
    assert first["name"] == "Post to Slack" and second["name"] == "Post to Slack (2)"
    assert first["url"] == second["url"] == "https://hooks.slack.com/services/{{secrets.SLACK_WEBHOOK}}"
    assert SecretValue.objects.filter(organization=acme).count() == 1

    other = _create(tech, "slack_message", {"webhook_url": "https://hooks.slack.com/services/T111/B111/YYYY"})
    assert other["url"] == "https://hooks.slack.com/services/{{secrets.SLACK_WEBHOOK_2}}"
    assert dict(SecretValue.objects.filter(organization=acme).values_list("name", "value")) == {
        "SLACK_WEBHOOK": SLACK_PATH, "SLACK_WEBHOOK_2": "T111/B111/YYYY",
    }  # fmt: skip
    listed = tech.get(f"{ORG}/secret-values/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert SLACK_PATH not in json.dumps(rows)
    used = {row["name"]: sorted(row["used_by"]) for row in rows}
    assert used == {"SLACK_WEBHOOK": ["Post to Slack", "Post to Slack (2)"], "SLACK_WEBHOOK_2": ["Post to Slack (3)"]}


def test_a_bad_webhook_url_is_named_as_the_url_credential(acme, tech):
    response = tech.post(
        TEMPLATES_API, {"template": "webhook", "credentials": {"url": "ftp://hooks.example.com/in"}}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["credentials.url"]


def test_a_taken_name_of_full_length_still_gives_a_name_that_fits(acme, tech):
    name = "N" * 200
    _create(tech, "slack_message", {"webhook_url": SLACK_URL}, name=name)
    response = tech.post(
        TEMPLATES_API,
        {"template": "slack_message", "name": name, "credentials": {"webhook_url": SLACK_URL}},
        format="json",
    )
    assert response.status_code in (201, 400), response.content
    names = list(Action.objects.values_list("name", flat=True))
    assert all(len(n) <= 200 for n in names), [len(n) for n in names]


def test_secret_values_are_per_organization(acme, tech, world):
    _create(tech, "slack_message", {"webhook_url": SLACK_URL})
    globex = token_client(world.globex_admin.user)
    response = globex.post(
        "/api/v1/orgs/globex/action-templates/",
        {"template": "slack_message", "credentials": {"webhook_url": SLACK_URL}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["url"].endswith("{{secrets.SLACK_WEBHOOK}}")
    assert SecretValue.objects.filter(organization=world.globex, name="SLACK_WEBHOOK").count() == 1


def test_created_action_is_editable_like_any_other(acme, tech, world):
    action = _create(
        tech, "twilio_sms", {"account_sid": "AC123", "auth_token": TWILIO_TOKEN, "from_number": "+14155550100"},
        name="SMS to customers",
    )  # fmt: skip
    assert action["name"] == "SMS to customers"
    response = tech.patch(
        f"{ACTIONS_API}{action['id']}/", {"description": "Our SMS, via Twilio.", "status": "active"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["description"] == "Our SMS, via Twilio." and response.json()["status"] == "active"
    stored = Action.objects.get(pk=action["id"])
    assert stored.auth_secrets == {"password": TWILIO_TOKEN}
    assert stored.created_by == world.user("technical")


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_marketer_and_viewer_cannot_list_or_create(acme, world, role):
    client = token_client(world.user(role))
    assert client.get(TEMPLATES_API).status_code == 403
    assert client.get(f"{TEMPLATES_API}twilio_sms/").status_code == 403
    response = client.post(TEMPLATES_API, {"template": "slack_message", "credentials": {"webhook_url": SLACK_URL}},
                           format="json")  # fmt: skip
    assert response.status_code == 403
    assert not Action.objects.exists() and not SecretValue.objects.exists()


def test_admin_can_use_templates_and_another_organizations_admin_gets_404(acme, world):
    assert token_client(world.user("admin")).get(TEMPLATES_API).status_code == 200
    globex = token_client(world.globex_admin.user)
    assert globex.get(TEMPLATES_API).status_code == 404
    response = globex.post(TEMPLATES_API, {"template": "slack_message", "credentials": {"webhook_url": SLACK_URL}},
                           format="json")  # fmt: skip
    assert response.status_code == 404
    assert not Action.objects.exists()


# --- the admin pages -------------------------------------------------------------------

TEMPLATES_PAGE = "admin:actions_action_templates"
FROM_TEMPLATE_PAGE = "admin:actions_action_from_template"


def test_admin_list_page_shows_every_template_and_links_to_its_form(acme, world, client):
    client.force_login(world.user("technical"))
    response = client.get(reverse(TEMPLATES_PAGE))
    assert response.status_code == 200
    html = response.content.decode()
    for key, template in TEMPLATES.items():
        assert template.name in html, key
        assert f'href="{reverse(FROM_TEMPLATE_PAGE, args=[key])}"' in html, key


def test_admin_form_page_shows_the_credential_fields(acme, world, client):
    client.force_login(world.user("technical"))
    form_page = client.get(reverse(FROM_TEMPLATE_PAGE, args=["twilio_sms"]))
    assert form_page.status_code == 200
    assert {"name", "status", "credential_account_sid", "credential_auth_token", "credential_from_number"} == set(
        form_page.context["form"].fields
    )
    html = form_page.content.decode()
    assert 'name="credential_auth_token"' in html and 'type="password"' in html


def test_admin_twilio_form_creates_the_action_and_never_shows_the_token(acme, world, client):
    client.force_login(world.user("technical"))
    response = client.post(
        reverse(FROM_TEMPLATE_PAGE, args=["twilio_sms"]),
        {
            "name": "Twilio SMS", "status": "draft", "credential_account_sid": "AC123",
            "credential_auth_token": TWILIO_TOKEN, "credential_from_number": "+14155550100",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    action = Action.objects.get(name="Twilio SMS")
    assert action.organization == world.acme
    assert response["Location"] == reverse("admin:actions_action_change", args=[action.pk])
    assert action.url == "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
    assert action.auth_secrets == {"password": TWILIO_TOKEN}

    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "Created “Twilio SMS” from the Twilio template" in html
    assert TWILIO_TOKEN not in html
    assert base64.b64encode(f"AC123:{TWILIO_TOKEN}".encode()).decode() not in html


def test_admin_form_with_a_missing_credential_shows_the_error_next_to_the_field(acme, world, client):
    client.force_login(world.user("technical"))
    response = client.post(
        reverse(FROM_TEMPLATE_PAGE, args=["twilio_sms"]),
        {"name": "Twilio SMS", "status": "draft", "credential_account_sid": "AC123",
         "credential_from_number": "+14155550100"},
    )  # fmt: skip
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == ["credential_auth_token"]
    assert "This field is required." in response.content.decode()
    assert not Action.objects.exists()


def test_admin_form_shows_a_bad_slack_url_next_to_its_field(acme, world, client):
    client.force_login(world.user("technical"))
    response = client.post(
        reverse(FROM_TEMPLATE_PAGE, args=["slack_message"]),
        {"name": "Slack", "status": "draft", "credential_webhook_url": "https://example.com/hook"},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["credential_webhook_url"]
    assert "hooks.slack.com" in errors["credential_webhook_url"][0]
    assert not Action.objects.exists() and not SecretValue.objects.exists()


def test_admin_form_for_an_unknown_template_is_404(acme, world, client):
    client.force_login(world.user("technical"))
    assert client.get(reverse(FROM_TEMPLATE_PAGE, args=["no_such"])).status_code == 404


def test_admin_form_shows_a_bad_webhook_url_next_to_its_field(acme, world, client):
    client.force_login(world.user("technical"))
    response = client.post(
        reverse(FROM_TEMPLATE_PAGE, args=["webhook"]),
        {"name": "Hook", "status": "draft", "credential_url": "ftp://hooks.example.com/in"},
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == ["credential_url"]
    assert not Action.objects.exists()


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_marketer_and_viewer_get_403_on_both_admin_pages(acme, world, client, role):
    client.force_login(world.user(role))
    assert client.get(reverse(TEMPLATES_PAGE)).status_code == 403
    form_url = reverse(FROM_TEMPLATE_PAGE, args=["slack_message"])
    assert client.get(form_url).status_code == 403
    response = client.post(form_url, {"name": "S", "status": "draft", "credential_webhook_url": SLACK_URL})
    assert response.status_code == 403
    assert not Action.objects.exists()


@pytest.mark.parametrize("template", ["slack_message", "teams_message"])
def test_a_webhook_url_that_does_not_parse_is_a_400_on_it(acme, tech, template):
    response = tech.post(
        TEMPLATES_API, {"template": template, "credentials": {"webhook_url": "https://[::1/x"}}, format="json"
    )
    assert response.status_code == 400
    assert "not a valid URL" in str(response.json()["errors"]["credentials.webhook_url"])
