"""Built-in email actions against a real SMTP server on loopback (aiosmtpd): what the recipient gets,
how refusals are retried or not, the SMTP login, and who may see or change the SMTP settings."""

import json
import socket
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as email_policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from django.db import transaction
from django.utils import timezone

from actions.models import Action, Invocation
from actions.runtime import invocation_enqueue, invocation_send
from tests.conftest import token_client
from tests.workers import wait_for

# The login server takes AUTH without TLS on purpose: it only listens on loopback.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SETTINGS_URL = "/api/v1/orgs/acme/email-settings/"
ACTIONS_URL = "/api/v1/orgs/acme/actions/"
SMTP_USER, SMTP_PASSWORD = "mailer", "Sm7p-Pa55-w0rd"
PARAMETERS = [
    {"name": "email", "type": "string", "required": True, "description": "Recipient"},
    {"name": "first_name", "type": "string", "required": True, "description": "First name"},
    {"name": "manager", "type": "string", "required": False, "description": "Copied"},
]
TEMPLATES = {
    "to": "{{email}}",
    "cc": "{{manager}}",
    "reply_to": "Support <support@acme.test>",
    "subject": "Welcome, {{first_name}}!",
    "text": "Hello {{first_name}}, welcome to Acme.",
    "html": "<p>Hello <em>{{first_name}}</em>, welcome to Acme.</p>",
}
VALUES = {"email": "ada@example.com", "first_name": "Ada"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """An SMTP handler that records what it accepted; `replies` answers the next RCPT or DATA commands."""

    def __init__(self):
        self.messages = []
        self.envelopes = []
        self.replies = {"RCPT": [], "DATA": []}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.replies["RCPT"]:
            return self.replies["RCPT"].pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.replies["DATA"]:
            return self.replies["DATA"].pop(0)
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.original_content, policy=email_policy))
        return "250 Message accepted for delivery"


def _start(mailbox, **kwargs):
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def smtp_server():
    mailbox = Mailbox()
    controller = _start(mailbox)
    mailbox.port = controller.port
    yield mailbox
    controller.stop()


@pytest.fixture
def smtp_server_with_login():
    """Requires AUTH with SMTP_USER / SMTP_PASSWORD (over plain text: the server is on loopback)."""

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535

    mailbox = Mailbox()
    controller = _start(mailbox, authenticator=authenticator, auth_required=True, auth_require_tls=False)
    mailbox.port = controller.port
    yield mailbox
    controller.stop()


@pytest.fixture
def admin(world):
    return token_client(world.user("admin"))


@pytest.fixture
def tech(world):
    return token_client(world.user("technical"))


def _settings(client, port, **extra):
    data = {"host": "127.0.0.1", "port": port, "security": "none", "default_from": "Acme <hello@acme.test>",
            "timeout_s": 5, **extra}  # fmt: skip
    response = client.put(SETTINGS_URL, data, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _email_action(client, **overrides):
    data = {"name": "Welcome email", "kind": "email", "status": "active", "email": TEMPLATES,
            "parameters": PARAMETERS, **overrides}  # fmt: skip
    response = client.post(ACTIONS_URL, data, format="json")
    assert response.status_code == 201, response.content
    return Action.objects.get(pk=response.json()["id"])


@pytest.fixture
def mailer(world, admin, tech, smtp_server, allow_loopback):
    """Acme's SMTP settings point at the loopback server; an active welcome email action."""
    _settings(admin, smtp_server.port)
    return _email_action(tech)


def _test_send(client, action, parameters):
    return client.post(f"{ACTIONS_URL}{action.pk}/test/", {"parameters": parameters}, format="json")


def _send(invocation):
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    return invocation


def _send_again_now(invocation):
    """What the worker does when the retry is due: without waiting for the backoff."""
    Invocation.objects.filter(pk=invocation.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    return _send(invocation)


def _parts(message):
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


# --- what the recipient gets ------------------------------------------------------------


def test_the_test_send_delivers_the_rendered_email(mailer, tech, smtp_server):
    response = _test_send(tech, mailer, {**VALUES, "manager": "Grace Hopper <grace@example.com>"})
    assert response.status_code == 200
    assert response.json()["outcome"] == "succeeded", response.json()
    [message] = smtp_server.messages
    [envelope] = smtp_server.envelopes
    assert sorted(envelope.rcpt_tos) == ["ada@example.com", "grace@example.com"]
    assert envelope.mail_from == "hello@acme.test"  # the organization's default sender
    assert message["From"] == "Acme <hello@acme.test>"
    assert message["To"] == "ada@example.com"
    assert message["Cc"] == "Grace Hopper <grace@example.com>"
    assert message["Reply-To"] == "Support <support@acme.test>"
    assert message["Subject"] == "Welcome, Ada!"
    text, html = _parts(message)
    assert text.strip() == "Hello Ada, welcome to Acme."
    assert html.strip() == "<p>Hello <em>Ada</em>, welcome to Acme.</p>"


def test_values_are_escaped_in_the_html_part_only(mailer, tech, smtp_server):
    """A profile's name must not become markup in the HTML part; the text part and subject keep it as typed."""
    response = _test_send(tech, mailer, {**VALUES, "first_name": "<b>Ada</b> & co"})
    assert response.json()["outcome"] == "succeeded"
    [message] = smtp_server.messages
    text, html = _parts(message)
    assert "<em>&lt;b&gt;Ada&lt;/b&gt; &amp; co</em>" in html and "<b>" not in html
    assert "Hello <b>Ada</b> & co, welcome" in text
    assert message["Subject"] == "Welcome, <b>Ada</b> & co!"


def test_an_action_sender_replaces_the_default_and_a_list_gives_one_recipient_each(world, admin, tech, smtp_server,
                                                                                   allow_loopback):  # fmt: skip
    _settings(admin, smtp_server.port)
    action = _email_action(
        tech, name="Digest", email={"from": "News <news@acme.test>", "to": "{{emails}}", "subject": "Digest",
                                    "text": "Hi"},
        parameters=[{"name": "emails", "type": "list", "required": True}],
    )  # fmt: skip
    assert _test_send(tech, action, {"emails": ["a@example.com", "b@example.com"]}).json()["outcome"] == "succeeded"
    [message] = smtp_server.messages
    assert message["From"] == "News <news@acme.test>"
    assert message["To"] == "a@example.com, b@example.com"
    assert sorted(smtp_server.envelopes[0].rcpt_tos) == ["a@example.com", "b@example.com"]
    assert not message.is_multipart()  # no HTML template: a plain text email


def test_a_line_break_in_a_value_cannot_add_headers(mailer, tech, smtp_server):
    response = _test_send(tech, mailer, {**VALUES, "first_name": "Ada\r\nBcc: eve@example.com"})
    assert response.status_code == 400
    assert "line break" in str(response.json())
    response = _test_send(tech, mailer, {**VALUES, "email": "ada@example.com\r\nBcc: eve@example.com"})
    assert response.status_code == 400
    assert smtp_server.messages == []


def test_an_invocation_carries_a_message_id_from_its_idempotency_key(mailer, smtp_server):
    invocation = _send(invocation_enqueue(action=mailer, values=VALUES))
    assert (invocation.status, invocation.outcome, invocation.attempts) == ("succeeded", "succeeded", 1)
    [message] = smtp_server.messages
    assert message["Message-ID"] == f"<{invocation.idempotency_key}@conduit>"
    assert json.loads(invocation.response_body)["message_id"] == message["Message-ID"]
    assert invocation.request["method"] == "SMTP"
    assert invocation.request["url"] == f"smtp://127.0.0.1:{smtp_server.port}"


SENDER_PARAMETERS = [*PARAMETERS, {"name": "sender", "type": "string", "required": True}]


@pytest.mark.parametrize("sender", ["not an address", "Eve\r\nBcc: eve@example.com", "a@example.com, b@example.com"])
def test_a_sender_value_that_is_not_one_address_is_a_400(mailer, tech, smtp_server, sender):
    action = _email_action(tech, name="From a value", email={**TEMPLATES, "from": "{{sender}}"},
                           parameters=SENDER_PARAMETERS)  # fmt: skip
    response = _test_send(tech, action, {**VALUES, "sender": sender})
    assert response.status_code == 400, response.json()
    assert "from" in str(response.json())
    assert smtp_server.messages == []


def test_an_invocation_with_a_bad_sender_fails_at_once_without_retries(mailer, tech, smtp_server):
    action = _email_action(tech, name="From a value", email={**TEMPLATES, "from": "{{sender}}"},
                           parameters=SENDER_PARAMETERS)  # fmt: skip
    invocation = _send(invocation_enqueue(action=action, values={**VALUES, "sender": "a@example.com, b@example.com"}))
    assert (invocation.status, invocation.outcome) == ("failed", "error")
    assert invocation.attempts == 0  # as for any value that does not fit: never sent


# --- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["RCPT", "DATA"])
def test_a_4xx_refusal_is_retried_and_then_delivered(mailer, smtp_server, settings, command):
    settings.CONDUIT_RETRY_BASE_S = 0.01
    smtp_server.replies[command] = ["451 4.3.0 try again"]
    invocation = _send(invocation_enqueue(action=mailer, values=VALUES))
    assert (invocation.status, invocation.outcome, invocation.attempts) == ("pending", "smtp_451", 1)
    assert "451 4.3.0 try again" in invocation.error
    assert smtp_server.messages == []
    invocation = _send_again_now(invocation)
    assert (invocation.status, invocation.outcome, invocation.attempts) == ("succeeded", "succeeded", 2)
    assert [a.outcome for a in invocation.attempt_log.all()] == ["smtp_451", "succeeded"]
    [message] = smtp_server.messages
    assert message["Message-ID"] == f"<{invocation.idempotency_key}@conduit>"  # the same email, not a new one


def test_a_5xx_refusal_fails_without_a_retry(mailer, smtp_server, settings):
    settings.CONDUIT_RETRY_BASE_S = 0.01
    smtp_server.replies["RCPT"] = ["550 5.1.1 no such user"]
    invocation = _send(invocation_enqueue(action=mailer, values=VALUES))
    assert (invocation.status, invocation.outcome, invocation.attempts) == ("failed", "smtp_550", 1)
    assert "550 5.1.1 no such user" in invocation.error
    assert invocation.finished_at is not None
    assert _send_again_now(invocation).attempts == 1  # a final refusal is not sent again
    assert smtp_server.messages == []


def test_a_recipient_refused_for_now_still_gets_the_email(mailer, smtp_server, settings):
    settings.CONDUIT_RETRY_BASE_S = 0.01
    smtp_server.replies["RCPT"] = ["451 4.3.0 try again"]  # the To recipient; the Cc one is accepted
    invocation = _send(invocation_enqueue(action=mailer, values={**VALUES, "manager": "grace@example.com"}))
    if invocation.status == "pending":
        invocation = _send_again_now(invocation)
    delivered_to = [address for envelope in smtp_server.envelopes for address in envelope.rcpt_tos]
    assert "ada@example.com" in delivered_to, (invocation.status, invocation.response_body)
    # The retry goes to the recipient refused for now only: the Cc one has it already.
    assert [envelope.rcpt_tos for envelope in smtp_server.envelopes] == [["grace@example.com"], ["ada@example.com"]]
    assert invocation.status == "succeeded" and "grace" not in json.dumps(invocation.request)


@pytest.mark.parametrize(
    "value",
    ["ada@example.com, eve@evil.test", '"eve@evil.test, " <ada@example.com>, eve@evil.test'],
)
def test_a_value_cannot_add_recipients(mailer, tech, smtp_server, value):
    """Event data fills parameters: one value gives one address, never a list of them."""
    response = _test_send(tech, mailer, {**VALUES, "email": value})
    assert response.status_code == 400 and "is not one email address" in str(response.json()["errors"]["email"])
    assert smtp_server.envelopes == []


def test_a_display_name_with_a_comma_stays_one_recipient(mailer, tech, smtp_server):
    response = _test_send(tech, mailer, {**VALUES, "email": '"Lovelace, Ada" <ada@example.com>'})
    assert response.json()["outcome"] == "succeeded", response.json()
    assert smtp_server.envelopes[0].rcpt_tos == ["ada@example.com"]
    assert smtp_server.messages[0]["To"] == '"Lovelace, Ada" <ada@example.com>'


def test_templates_of_the_wrong_type_are_a_400(tech):
    for email in ({**TEMPLATES, "subject": 5}, {**TEMPLATES, "from": True}, ["to"], {**TEMPLATES, "subject": "a\rb"}):
        response = tech.post(
            ACTIONS_URL, {"name": "Typed", "kind": "email", "url": "", "email": email, "parameters": PARAMETERS},
            format="json",
        )  # fmt: skip
        assert response.status_code == 400 and "email" in response.json()["errors"], email


def test_a_call_made_before_the_action_became_an_email_is_not_sent_as_one(world, mailer, tech, smtp_server):
    from actions.models import Invocation

    invocation = Invocation.objects.create(
        organization=world.acme, action=mailer, request={"method": "POST", "url": "https://api.example.com/x",
                                                         "headers": [], "body": "[1, 2]"},
    )  # fmt: skip
    invocation = _send(invocation)
    assert (invocation.status, invocation.outcome) == ("failed", "error") and "another kind" in invocation.error
    assert smtp_server.envelopes == []


def test_a_server_that_is_down_is_retried_as_for_http(world, admin, tech, settings, allow_loopback):
    settings.CONDUIT_RETRY_BASE_S = 0.01
    _settings(admin, _free_port())  # nothing listens there
    invocation = _send(invocation_enqueue(action=_email_action(tech), values=VALUES))
    assert (invocation.status, invocation.outcome, invocation.attempts) == ("pending", "error", 1)
    assert "Could not connect to the SMTP server at 127.0.0.1:" in invocation.error


def test_the_test_send_answers_the_refusal(mailer, tech, smtp_server):
    smtp_server.replies["RCPT"] = ["550 5.1.1 no such user"]
    result = _test_send(tech, mailer, VALUES).json()
    assert result["outcome"] == "smtp_550"
    assert "550 5.1.1 no such user" in result["error"]


def test_without_the_loopback_allowance_the_server_is_refused(world, admin, tech, smtp_server, settings):
    settings.CONDUIT_ALLOWED_PRIVATE_NETWORKS = []
    _settings(admin, smtp_server.port)
    action = _email_action(tech)
    result = _test_send(tech, action, VALUES).json()
    assert result["outcome"] == "refused" and "127.0.0.1" in result["error"]
    invocation = _send(invocation_enqueue(action=action, values=VALUES))
    assert (invocation.status, invocation.outcome, invocation.attempts) == ("failed", "refused", 1)
    assert smtp_server.messages == []


def test_replay_of_a_failed_email_sends_it_again(mailer, tech, smtp_server):
    smtp_server.replies["RCPT"] = ["550 5.1.1 no such user"]
    original = _send(invocation_enqueue(action=mailer, values=VALUES))
    assert original.status == "failed"
    response = tech.post("/api/v1/orgs/acme/invocations/replay/", {"invocation": str(original.pk)}, format="json")
    assert response.status_code == 202, response.content
    [replayed] = response.json()
    replay = _send(Invocation.objects.get(pk=replayed["id"]))
    assert (replay.status, replay.outcome, replay.replay_of_id) == ("succeeded", "succeeded", original.pk)
    [message] = smtp_server.messages
    assert message["To"] == "ada@example.com" and message["Subject"] == "Welcome, Ada!"
    assert message["Message-ID"] == f"<{original.idempotency_key}@conduit>"


# --- the SMTP login -------------------------------------------------------------------


def test_the_smtp_login_is_used_and_its_password_never_shown(world, admin, tech, smtp_server_with_login,
                                                            allow_loopback):  # fmt: skip
    saved = _settings(admin, smtp_server_with_login.port, username=SMTP_USER, password=SMTP_PASSWORD)
    assert saved["password_set"] is True and "password" not in saved
    action = _email_action(tech)
    assert _test_send(tech, action, VALUES).json()["outcome"] == "succeeded"
    assert len(smtp_server_with_login.messages) == 1
    shown = admin.get(SETTINGS_URL)
    assert shown.status_code == 200
    assert shown.json()["password_set"] is True and shown.json()["username"] == SMTP_USER
    assert SMTP_PASSWORD not in shown.content.decode()
    # A change without the password keeps it.
    assert admin.patch(SETTINGS_URL, {"timeout_s": 7}, format="json").json()["password_set"] is True
    assert _test_send(tech, action, VALUES).json()["outcome"] == "succeeded"


def test_a_wrong_password_fails_as_the_servers_refusal_without_showing_it(world, admin, tech, smtp_server_with_login,
                                                                          allow_loopback):  # fmt: skip
    _settings(admin, smtp_server_with_login.port, username=SMTP_USER, password="wrong-Pa55word")
    action = _email_action(tech)
    result = _test_send(tech, action, VALUES)
    assert result.json()["outcome"] == "smtp_535", result.json()
    assert "wrong-Pa55word" not in result.content.decode()
    invocation = _send(invocation_enqueue(action=action, values=VALUES))
    assert (invocation.status, invocation.outcome) == ("failed", "smtp_535")
    assert "wrong-Pa55word" not in invocation.error + str(invocation.request)
    assert smtp_server_with_login.messages == []


def test_without_a_login_the_server_that_requires_one_refuses(world, admin, tech, smtp_server_with_login,
                                                              allow_loopback):  # fmt: skip
    _settings(admin, smtp_server_with_login.port)
    result = _test_send(tech, _email_action(tech), VALUES).json()
    assert result["outcome"] == "smtp_530", result


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"email": {k: v for k, v in TEMPLATES.items() if k != "to"}}, "email", "to: required for an email"),
        ({"email": {**TEMPLATES, "subject": "Hi {{nickname}}"}}, "email",
         "subject: placeholder {{nickname}} names no declared parameter"),
        ({"email": {**TEMPLATES, "text": "", "html": ""}}, "email", "text: give a plain-text body"),
        ({"email": {**TEMPLATES, "bcc": "x@example.com"}}, "email", "bcc: unknown part of an email"),
        ({"email": {**TEMPLATES, "text": "{{secrets.KEY}}"}}, "email", "secret values may stand only"),
        ({"url": "https://api.example.com/send"}, "url", "an email action sends through"),
        ({"auth": {"type": "bearer", "token": "tok-1234"}}, "auth", "uses the organization's SMTP login"),
        ({"kind": "http", "url": "https://api.example.com/send"}, "email", "only an email action has email"),
    ],
)  # fmt: skip
def test_an_invalid_email_action_is_a_400_naming_the_field(mailer, tech, overrides, field, message):
    response = tech.post(ACTIONS_URL, {"name": "Bad", "kind": "email", "email": TEMPLATES, "parameters": PARAMETERS,
                                       **overrides}, format="json")  # fmt: skip
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert message in " ".join(errors[field]), errors


def test_an_email_action_is_active_only_once_smtp_is_set(world, tech):
    response = tech.post(ACTIONS_URL, {"name": "Welcome email", "kind": "email", "status": "active",
                                       "email": TEMPLATES, "parameters": PARAMETERS}, format="json")  # fmt: skip
    assert response.status_code == 400
    assert "email (SMTP) settings" in " ".join(response.json()["errors"]["status"])
    assert tech.get(SETTINGS_URL).status_code == 404


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"default_from": "not an address"}, "default_from"),
        ({"default_from": "a@example.com, b@example.com"}, "default_from"),
        ({"default_from": ""}, "default_from"),
        ({"host": "smtp://mail.example.com"}, "host"),
        ({"host": "mail.example.com:587"}, "host"),
        ({"host": "mail example.com"}, "host"),
        ({"port": 70000}, "port"),
        ({"security": "tls1.3"}, "security"),
    ],
)
def test_invalid_email_settings_are_a_400_naming_the_field(world, admin, overrides, field):
    data = {"host": "smtp.example.com", "port": 587, "security": "starttls", "default_from": "Acme <hi@acme.test>",
            **overrides}  # fmt: skip
    response = admin.put(SETTINGS_URL, data, format="json")
    assert response.status_code == 400
    body = response.json()
    assert field in body.get("errors", body), body
    assert admin.get(SETTINGS_URL).status_code == 404  # nothing was saved


# --- who may see the SMTP settings --------------------------------------------------------


def test_a_marketer_gets_403_and_another_organization_404(world, admin):
    _settings(admin, 2525, username=SMTP_USER, password=SMTP_PASSWORD)
    marketer = token_client(world.user("marketer"))
    assert marketer.get(SETTINGS_URL).status_code == 403
    assert marketer.put(SETTINGS_URL, {"host": "evil.example.com"}, format="json").status_code == 403
    globex = token_client(world.globex_admin.user)
    assert globex.get(SETTINGS_URL).status_code == 404
    assert globex.put(SETTINGS_URL, {"host": "evil.example.com", "default_from": "e@evil.test"},
                      format="json").status_code == 404  # fmt: skip
    assert globex.get("/api/v1/orgs/globex/email-settings/").status_code == 404  # globex has none of its own
    assert admin.get(SETTINGS_URL).json()["host"] == "127.0.0.1"


# --- through a real worker ------------------------------------------------------------------


@pytest.mark.worker
def test_an_enqueued_email_is_delivered_by_a_worker(workers, world, smtp_server):
    _settings(token_client(world.user("admin")), smtp_server.port, username="", password="")
    action = _email_action(token_client(world.user("technical")))
    workers.start()
    with transaction.atomic():
        invocation = invocation_enqueue(action=action, values=VALUES)

    def delivered():
        row = Invocation.objects.get(pk=invocation.pk)
        return row if row.status in Invocation.FINAL else None

    row = wait_for(delivered, timeout=30, message="the email invocation to finish")
    assert (row.status, row.outcome, row.attempts) == ("succeeded", "succeeded", 1), row.error
    [message] = smtp_server.messages
    assert message["Message-ID"] == f"<{invocation.idempotency_key}@conduit>"
    assert message["Subject"] == "Welcome, Ada!"


def test_a_batch_of_emails_shares_one_connection(mailer, smtp_server):
    """Django opens a connection per send; a batch reuses one (bench/emails.py: about twice the rate)."""
    from actions.runtime import invocations_enqueue

    greetings = []

    async def handle_ehlo(server, session, envelope, hostname, responses):  # counts connections
        greetings.append(hostname)
        session.host_name = hostname  # what aiosmtpd's own EHLO does
        return responses

    smtp_server.handle_EHLO = handle_ehlo
    invocations = invocations_enqueue(action=mailer, values_list=[{**VALUES, "first_name": f"N{i}"} for i in range(5)])
    _send(invocations[0])
    assert Invocation.objects.filter(status="succeeded").count() == 5
    assert len(smtp_server.envelopes) == 5 and len(greetings) == 1
