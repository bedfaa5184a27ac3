"""Demo content for `make run` (through `seed_demo`): an SMS action that calls the demo receiver on
loopback, an email action sent to the demo receiver's SMTP server, a live "Abandoned cart" journey
that uses both, and an API key to send events with. Its texts are in the active language (settings'
LANGUAGE_CODE under `seed_demo`); its names stay English: they are how a second seeding finds what is there."""

import json
import re
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

from actions.models import Action, EmailSettings
from actions.services.actions import action_create, action_update
from actions.services.email_settings import email_settings_save
from journeys.models import Journey
from journeys.services import journey_create, journey_publish
from tenants.models import ApiKey, Organization, hash_api_key
from tenants.services import api_key_create, api_key_revoke

ACTION_NAME = "Send SMS (demo)"
EMAIL_ACTION_NAME = "Send email (demo)"
JOURNEY_NAME = "Abandoned cart"
KEY_NAME = "Demo shop"


def text_expression(message: str, **expressions: str) -> str:
    """`message` as an expression: its text in quotes, each %(name)s in it the expression `name`."""
    parts = re.split(r"%\((\w+)\)s", message)  # text, name, text, name, ..., text
    said = [expressions[part] if i % 2 else json.dumps(part, ensure_ascii=False) for i, part in enumerate(parts)]
    return " + ".join(part for part in said if part != '""')


def demo_action_data() -> dict:
    return {
        "name": ACTION_NAME,
        "description": _("Sends a text message to a customer's phone (the demo receiver stands in for the provider)."),
        "status": "active",
        "method": "POST",
        "url": f"http://127.0.0.1:{settings.CONDUIT_DEMO_RECEIVER_PORT}/v1/messages",
        "body": {"to": "{{phone}}", "text": "{{text}}"},
        "parameters": [
            {
                "name": "phone",
                "type": "string",
                "required": True,
                "description": _("The phone number, e.g. +33600000000"),
            },
            {"name": "text", "type": "string", "required": True, "description": _("The message")},
        ],
        "auth": {"type": "bearer", "token": "demo-provider-token"},
    }


def demo_email_action_data() -> dict:
    return {
        "name": EMAIL_ACTION_NAME,
        "description": _(
            "Sends an email to a customer (the demo receiver's SMTP server stands in for the mail server)."
        ),
        "status": "active",
        "kind": "email",
        "url": "",
        "email": {
            "to": "{{email}}",
            "subject": _("{{first_name}}, your cart is waiting"),
            "text": _("Hi {{first_name}},\n\nYour cart of {{total}} is still there for you.\n"),
            "html": _(
                "<p>Hi {{first_name}},</p><p>Your cart of <strong>{{total}}</strong> is still there for you.</p>"
            ),
        },
        "parameters": [
            {"name": "email", "type": "string", "required": True, "description": _("The customer's email address")},
            {"name": "first_name", "type": "string", "required": True, "description": _("Used in the greeting")},
            {"name": "total", "type": "decimal", "required": True, "description": _("The cart's total")},
        ],
    }


def demo_steps(action_id: int, email_action_id: int) -> list[dict]:
    return [
        {"key": "big_cart", "type": "condition", "else": "done",
         "branches": [{"expression": "event.data.total > 50.0", "next": "wait_a_bit"}]},
        {"key": "wait_a_bit", "type": "wait", "duration_s": 5, "next": "send_sms"},
        {"key": "send_sms", "type": "action", "action": action_id, "next": "send_email", "on_error": "send_email",
         "parameters": {"phone": "profile.phone",
                        "text": text_expression(_("Hi %(first_name)s, your cart is waiting for you."),
                                                first_name="profile.first_name")}},
        {"key": "send_email", "type": "action", "action": email_action_id, "next": "done", "on_error": "done",
         "parameters": {"email": "profile.email", "first_name": "profile.first_name", "total": "event.data.total"}},
        {"key": "done", "type": "end"},
    ]  # fmt: skip


def seed_demo_journey(organization: Organization) -> str:
    """Create what is missing (idempotent); returns the demo API key."""
    if not organization.allow_http:
        organization.allow_http = True  # the demo receiver speaks plain HTTP on loopback
        organization.save(update_fields=["allow_http"])
    action = Action.objects.filter(organization=organization, name=ACTION_NAME).first()
    if action is None:
        action = action_create(organization=organization, data=demo_action_data())
    elif action.url != demo_action_data()["url"]:
        # Stored credentials do not follow an action to another port: the demo token goes with the move.
        action = action_update(
            action=action, data={"url": demo_action_data()["url"], "auth": demo_action_data()["auth"]}
        )
    smtp = {"host": "127.0.0.1", "port": settings.CONDUIT_DEMO_SMTP_PORT, "security": "none",
            "default_from": "Acme Shop <shop@acme.test>"}  # fmt: skip
    if not EmailSettings.objects.filter(organization=organization).exists():  # never replaces real ones
        email_settings_save(organization=organization, data=smtp)
    email_action = Action.objects.filter(organization=organization, name=EMAIL_ACTION_NAME).first()
    if email_action is None:
        email_action = action_create(organization=organization, data=demo_email_action_data())
    if not Journey.objects.filter(organization=organization, name=JOURNEY_NAME).exists():
        journey = journey_create(
            organization=organization,
            data={"name": JOURNEY_NAME, "entry_event": "cart_abandoned", "reentry": "always", "description": _(
                      "A customer who leaves a cart over 50 gets a text and an email a few seconds later."
                  ),
                  "steps": demo_steps(action.pk, email_action.pk), "start": "big_cart"},
        )  # fmt: skip
        journey_publish(journey=journey)
    key_file = Path(settings.CONDUIT_DEMO_KEY_FILE)
    raw = key_file.read_text().strip() if key_file.exists() else ""
    live = ApiKey.objects.filter(organization=organization, name=KEY_NAME, revoked_at=None)
    if not raw or not live.filter(key_hash=hash_api_key(raw)).exists():
        for lost in live:  # its raw key is gone with the file: nobody can use it
            api_key_revoke(api_key=lost)
        raw = api_key_create(organization=organization, name=KEY_NAME, scopes=["events:write", "read"])[1]
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(raw + "\n")
        key_file.chmod(0o600)
    return raw
