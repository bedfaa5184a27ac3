"""The issue's "done when", in a browser: a technical user makes a working SMS, push and email action
from templates, pasting only credentials, and checks each with the test button."""

import base64
import json
import socket
import threading

import jwt
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug import Response

from actions.models import Action
from tests.e2e.conftest import login, shot
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e]
AUTH_TOKEN = "twilio-AUTH-token-5150"


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


@pytest.fixture
def providers(world, httpserver, allow_loopback):
    """Twilio, Google's token endpoint and FCM on one loopback server, recording what they get."""
    world.acme.allow_http = True
    world.acme.save()
    calls, lock = [], threading.Lock()

    def record(request):
        with lock:
            calls.append(request)
        if request.path == "/token":
            return Response(
                json.dumps({"access_token": "ya29.e2e", "expires_in": 3600}), content_type="application/json"
            )
        if request.path.endswith("/Messages.json"):
            return Response(json.dumps({"sid": "SM1", "status": "queued"}), status=201, content_type="application/json")
        return Response(json.dumps({"name": "projects/demo/messages/1"}), content_type="application/json")

    httpserver.expect_request("").respond_with_handler(record)
    return calls


def _service_account(token_uri: str) -> tuple[str, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    data = {"type": "service_account", "project_id": "demo-project", "private_key_id": "k1", "private_key": pem,
            "client_email": "push@demo-project.iam.gserviceaccount.com", "token_uri": token_uri}  # fmt: skip
    return json.dumps(data), key


def _from_template(page, live_server, key: str, credentials: dict[str, str]) -> None:
    page.goto(f"{live_server.url}/admin/actions/action/")
    page.click("text=New action from a template")
    page.click(f"a[href$='/from-template/{key}/']")
    page.select_option("#id_status", "active")
    for name, value in credentials.items():
        page.fill(f"#id_credential_{name}", value)
    page.click("input[type=submit]")
    page.wait_for_selector("text=Send a test request to check the credentials")


def _point_at(page, provider_base: str, credentials: dict[str, str]) -> None:
    """The provider stands on loopback: keep the template's path, change only scheme and host.

    Stored credentials never follow an action to another host: they are given again with the move."""
    url = page.input_value("#id_url")
    page.fill("#id_url", provider_base + "/" + url.split("/", 3)[3])
    for name, value in credentials.items():
        page.fill(f"#id_{name}", value)
    page.click("input[name=_continue]")
    page.wait_for_selector("text=was changed successfully")


def _test(page, values: dict[str, str]) -> str:
    page.click(".object-tools >> text=Test request")
    for name, value in values.items():
        page.fill(f"#id_parameter-{name}", value)
    page.click("input[type=submit]")
    page.wait_for_selector("#test-result")
    return page.content()


def test_sms_push_and_email_actions_from_templates_work_in_minutes(
    page, live_server, world, httpserver, providers, smtp_server, request
):
    port, inbox = smtp_server
    base = httpserver.url_for("").rstrip("/")
    login(page, live_server, world.user("technical").username, PASSWORD)

    # SMS: Twilio, a form body with Basic auth.
    _from_template(page, live_server, "twilio_sms",
                   {"account_sid": "AC123", "auth_token": AUTH_TOKEN, "from_number": "+14155550100"})  # fmt: skip
    assert AUTH_TOKEN not in page.content()
    _point_at(page, base, {"basic_password": AUTH_TOKEN})
    body = _test(page, {"to": "+33600000000", "body": "Your order shipped"})
    assert "HTTP 201" in body and AUTH_TOKEN not in body
    sms = providers[-1]
    assert sms.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert sms.form.to_dict() == {"To": "+33600000000", "From": "+14155550100", "Body": "Your order shipped"}
    assert sms.headers["Authorization"] == "Basic " + base64.b64encode(f"AC123:{AUTH_TOKEN}".encode()).decode()
    shot(page, request, "sms")

    # Push: Firebase, the service-account key pasted once; Conduit gets a token and calls FCM v1.
    key_file, key = _service_account(f"{base}/token")
    _from_template(page, live_server, "fcm_push", {"service_account_json": key_file})
    assert "BEGIN PRIVATE KEY" not in page.content()
    _point_at(page, base, {"google_service_account_json": key_file})
    body = _test(page, {"device_token": "device-1", "title": "Hello", "body": "Your cart misses you"})
    assert "HTTP 200" in body and "ya29.e2e" not in body
    token_call, push = providers[-2], providers[-1]
    assertion = jwt.decode(
        token_call.form["assertion"], key.public_key(), algorithms=["RS256"], audience=f"{base}/token"
    )
    assert assertion["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert push.path == "/v1/projects/demo-project/messages:send"
    assert push.headers["Authorization"] == "Bearer ya29.e2e"
    assert push.json == {
        "message": {"token": "device-1", "notification": {"title": "Hello", "body": "Your cart misses you"}}
    }
    shot(page, request, "push")

    # Email: the organization's SMTP server once, then the built-in email template.
    page.goto(f"{live_server.url}/admin/actions/emailsettings/add/")
    page.fill("#id_host", "127.0.0.1")
    page.fill("#id_port", str(port))
    page.select_option("#id_security", "none")
    page.fill("#id_default_from", "Acme <shop@acme.test>")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")
    _from_template(page, live_server, "smtp_email", {})
    body = _test(page, {"to": "ada@example.com", "subject": "Welcome", "text": "Hi Ada"})
    assert "accepted the email" in body
    assert inbox.messages[-1].rcpt_tos == ["ada@example.com"] and b"Hi Ada" in inbox.messages[-1].content
    shot(page, request, "email")
    assert Action.objects.filter(organization=world.acme, status="active").count() == 3
