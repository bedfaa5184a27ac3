"""The catalogue of ready action templates: each provider's documented request shape.

A template builds the same `data` a technical user would give the API, and the action is
created by `services.action_create`: the result is an ordinary action, checked by the same
rules and editable afterwards. Credentials go where they are kept encrypted: the action's
auth secrets, or an organization secret value for those a provider puts in the URL or the
body (Slack's webhook path, Segment's write key).
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from actions.delivery.auth import service_account_problems

__all__ = ["TEMPLATES", "Credential", "Refused", "Template"]


@dataclass(frozen=True)
class Credential:
    name: str
    label: str
    secret: bool = False
    required: bool = True
    help: str = ""
    multiline: bool = False


@dataclass(frozen=True)
class Template:
    key: str
    name_text: Any  # lazy: `name` is it in the language of the request
    provider: str
    category: str  # sms, email, push, chat, ads, analytics, webhook
    description_text: Any
    docs_url: str
    request: str  # the documented request, in one line, for people choosing a template
    credentials: tuple[Credential, ...]
    parameters: tuple[dict, ...]
    build: Callable[[dict[str, str], Callable[[str, str], str]], dict[str, Any]] = field(repr=False)
    url_from: str = ""  # the credential the action's URL is made from: a bad URL is named by it

    @property
    def name(self) -> str:
        return str(self.name_text)

    @property
    def description(self) -> str:
        return str(self.description_text)


def _p(name: str, kind: str, description: str, *, required: bool = True, default: Any = None) -> dict:
    return {"name": name, "type": kind, "required": required, "default": default, "description": description}


def _ref(name: str) -> str:
    return "{{secrets." + name + "}}"


class Refused(ValueError):
    """A credential that cannot be used as given; `errors` maps credentials.<name> to messages."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


# --- the templates ------------------------------------------------------------------

TWILIO_PARAMETERS = (
    _p("to", "string", _("The recipient's phone number in E.164, e.g. +14155550100.")),
    _p("body", "string", _("The text of the message (up to 1,600 characters).")),
)


def _twilio(c: dict[str, str], secret: Callable[[str, str], str]) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": f"https://api.twilio.com/2010-04-01/Accounts/{c['account_sid']}/Messages.json",
        "body_type": "form",
        "body": {"To": "{{to}}", "From": c["from_number"], "Body": "{{body}}"},
        "auth": {"type": "basic", "username": c["account_sid"], "password": c["auth_token"]},
    }


SENDGRID_PARAMETERS = (
    _p("to", "string", _("The recipient's email address.")),
    _p("subject", "string", _("The subject line.")),
    _p("text", "string", _("The plain-text body.")),
)


def _sendgrid(c: dict[str, str], secret: Callable[[str, str], str]) -> dict[str, Any]:
    sender: dict[str, str] = {"email": c["from_email"]}
    if c.get("from_name"):
        sender["name"] = c["from_name"]
    return {
        "method": "POST",
        "url": "https://api.sendgrid.com/v3/mail/send",
        "body": {
            "personalizations": [{"to": [{"email": "{{to}}"}]}],
            "from": sender,
            "subject": "{{subject}}",
            "content": [{"type": "text/plain", "value": "{{text}}"}],
        },
        "auth": {"type": "bearer", "token": c["api_key"]},
    }


FCM_PARAMETERS = (
    _p("device_token", "string", _("The app instance's FCM registration token.")),
    _p("title", "string", _("The notification's title.")),
    _p("body", "string", _("The notification's text.")),
)
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


def _fcm(c: dict[str, str], secret: Callable[[str, str], str]) -> dict[str, Any]:
    problems = service_account_problems(c["service_account_json"], allow_http=True)
    if problems:
        raise Refused({"credentials.service_account_json": problems[0].split(": ", 1)[-1]})
    key_file = c["service_account_json"]
    project = json.loads(key_file).get("project_id")
    if not isinstance(project, str) or not project:
        raise Refused({"credentials.service_account_json": gettext("the key file has no project_id")})
    return {
        "method": "POST",
        "url": f"https://fcm.googleapis.com/v1/projects/{project}/messages:send",
        "body": {"message": {"token": "{{device_token}}", "notification": {"title": "{{title}}", "body": "{{body}}"}}},
        "auth": {"type": "google_service_account", "scopes": FCM_SCOPE, "service_account_json": key_file},
    }


TEXT_PARAMETERS = (_p("text", "string", _("The message text.")),)


def _split_url(value: str, credential: str) -> Any:
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise Refused({f"credentials.{credential}": gettext("not a valid URL (%(error)s)") % {"error": exc}}) from None
    return parts


def _slack(c: dict[str, str], secret: Callable[[str, str], str]) -> dict[str, Any]:
    parts = _split_url(c["webhook_url"], "webhook_url")
    path = parts.path.removeprefix("/services/")
    if parts.scheme != "https" or parts.hostname != "hooks.slack.com" or not path or path == parts.path:
        problem = gettext("a Slack incoming webhook URL: https://hooks.slack.com/services/...")
        raise Refused({"credentials.webhook_url": problem})
    # The path is the credential: it goes in a secret value, never in the action's URL.
    return {
        "method": "POST",
        "url": "https://hooks.slack.com/services/" + _ref(secret("SLACK_WEBHOOK", path)),
        "body": {"text": "{{text}}"},
    }


def _teams(c: dict[str, str], secret: Callable[[str, str], str]) -> dict[str, Any]:
    parts = _split_url(c["webhook_url"], "webhook_url")
    if parts.scheme != "https" or not parts.hostname:
        raise Refused({"credentials.webhook_url": gettext("the https:// URL of the Teams workflow (When a Teams "
                                                          "webhook request is received)")})  # fmt: skip
    base = f"https://{parts.netloc}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    signature = [value for name, value in query if name == "sig"]
    data: dict[str, Any] = {
        "method": "POST",
        "body": {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [{"type": "TextBlock", "text": "{{text}}", "wrap": True}],
                    },
                }
            ],
        },
    }
    if signature:  # a Workflows URL: only its sig is secret
        data["url"] = base + parts.path
        data["query"] = [{"name": name, "value": value} for name, value in query if name != "sig"]
        data["auth"] = {"type": "api_key", "in": "query", "name": "sig", "value": signature[0]}
    else:  # an older connector URL: the path is the credential
        data["url"] = base + "/" + _ref(secret("TEAMS_WEBHOOK", parts.path.lstrip("/")))
        data["query"] = [{"name": name, "value": value} for name, value in query]
    return data


META_PARAMETERS = (
    _p("event_name", "string", _("A standard event such as Purchase or Lead, or your own.")),
    _p("event_time", "integer", _("When it happened, in Unix seconds.")),
    _p("email_sha256", "string", _("SHA-256 of the trimmed, lowercased email, as Meta requires: in a journey, "
                                   "sha256(trim(lower(profile.email))).")),
    # website events need client_user_agent and event_source_url, which a journey rarely has.
    _p("action_source", "string", _("Where it happened: system_generated, email, app, physical_store, website..."),
       required=False, default="system_generated"),
    _p("custom_data", "object", _('e.g. {"value": 42.5, "currency": "EUR"} for a Purchase.'), required=False,
       default={}),
)  # fmt: skip


def _meta(c: dict[str, str], secret: Callable[[str, str], str]) -> dict[str, Any]:
    if not re.fullmatch(r"[0-9]{1,30}", c["pixel_id"]):
        raise Refused({"credentials.pixel_id": gettext("the dataset (pixel) id: digits only")})
    return {
        "method": "POST",
        "url": f"https://graph.facebook.com/v21.0/{c['pixel_id']}/events",
        "body": {
            "data": [
                {
                    "event_name": "{{event_name}}",
                    "event_time": "{{event_time}}",
                    "action_source": "{{action_source}}",
                    "user_data": {"em": ["{{email_sha256}}"]},
                    "custom_data": "{{custom_data}}",
                }
            ]
        },
        "auth": {"type": "api_key", "in": "query", "name": "access_token", "value": c["access_token"]},
    }


SEGMENT_PARAMETERS = (
    _p("user_id", "string", _("The user's id in your systems.")),
    _p("event", "string", _("The event's name, e.g. Order Completed.")),
    _p("properties", "object", _("The event's properties."), required=False, default={}),
)


def _segment(c: dict[str, str], secret: Callable[[str, str], str]) -> dict[str, Any]:
    # Segment takes the write key in the body (or as a Basic user with no password).
    return {
        "method": "POST",
        "url": "https://api.segment.io/v1/track",
        "body": {
            "writeKey": _ref(secret("SEGMENT_WRITE_KEY", c["write_key"])),
            "userId": "{{user_id}}",
            "event": "{{event}}",
            "properties": "{{properties}}",
        },
    }


WEBHOOK_PARAMETERS = (
    _p("event", "string", _("What happened, e.g. cart_abandoned.")),
    _p("profile_id", "string", _("The customer's id.")),
    _p("data", "object", _("Anything else the receiver needs."), required=False, default={}),
)


def _webhook(c: dict[str, str], secret: Callable[[str, str], str]) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": c["url"].strip(),
        "body": {"event": "{{event}}", "profile_id": "{{profile_id}}", "data": "{{data}}"},
        "signing_secret": c.get("signing_secret") or "generate",
    }


EMAIL_PARAMETERS = (
    _p("to", "string", _("The recipient's email address.")),
    _p("subject", "string", _("The subject line.")),
    _p("text", "string", _("The plain-text body.")),
)


def _email(c: dict[str, str], secret: Callable[[str, str], str]) -> dict[str, Any]:
    email = {"to": "{{to}}", "subject": "{{subject}}", "text": "{{text}}"}
    if c.get("from"):
        email["from"] = c["from"]
    return {"kind": "email", "url": "", "method": "POST", "email": email, "auth": {"type": "none"}}


TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in (
        Template(
            "twilio_sms", _("Send SMS (Twilio)"), "Twilio", "sms",
            _("Sends a text message with Twilio's Programmable Messaging API."),
            "https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource",
            "POST https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json, Basic auth, "
            "form To, From, Body",
            (
                Credential("account_sid", _("Account SID"),
                           help=_("Starts with AC; on the Twilio console's home page.")),
                Credential("auth_token", _("Auth token"), secret=True),
                Credential("from_number", _("From number"),
                           help=_("A Twilio number in E.164, e.g. +14155550100.")),
            ),
            TWILIO_PARAMETERS, _twilio, "account_sid",
        ),
        Template(
            "sendgrid_email", _("Send email (SendGrid)"), "Twilio SendGrid", "email",
            _("Sends an email with SendGrid's v3 Mail Send API."),
            "https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send",
            "POST https://api.sendgrid.com/v3/mail/send, Bearer API key, JSON personalizations, from, subject, "
            "content",
            (
                Credential("api_key", _("API key"), secret=True, help=_("A key with the Mail Send permission.")),
                Credential("from_email", _("From address"),
                           help=_("A verified sender of your SendGrid account.")),
                Credential("from_name", _("From name"), required=False),
            ),
            SENDGRID_PARAMETERS, _sendgrid,
        ),
        Template(
            "fcm_push", _("Send push notification (Firebase)"), "Firebase Cloud Messaging", "push",
            _("Sends a notification to one app instance with the FCM HTTP v1 API."),
            "https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send",
            "POST https://fcm.googleapis.com/v1/projects/{project_id}/messages:send, Google service account "
            "OAuth 2.0, JSON message",
            (
                Credential("service_account_json", _("Service account key (JSON)"), secret=True, multiline=True,
                           help=_("Firebase console: Project settings, Service accounts, Generate new private "
                                  "key.")),
            ),
            FCM_PARAMETERS, _fcm,
        ),
        Template(
            "slack_message", _("Post to Slack"), "Slack", "chat",
            _("Posts a message to a channel through a Slack incoming webhook."),
            "https://api.slack.com/messaging/webhooks",
            "POST https://hooks.slack.com/services/..., JSON text",
            (Credential("webhook_url", _("Webhook URL"), secret=True, help="https://hooks.slack.com/services/..."),),
            TEXT_PARAMETERS, _slack, "webhook_url",
        ),
        Template(
            "teams_message", _("Post to Microsoft Teams"), "Microsoft Teams", "chat",
            _("Posts an Adaptive Card message to a channel through a Teams workflow webhook."),
            "https://learn.microsoft.com/en-us/connectors/teams/?tabs=text1#microsoft-teams-webhook",
            "POST the workflow's URL, JSON message with an Adaptive Card attachment",
            (Credential("webhook_url", _("Workflow webhook URL"), secret=True,
                        help=_("From the Teams workflow 'Post to a channel when a webhook request is "
                               "received'.")),),
            TEXT_PARAMETERS, _teams, "webhook_url",
        ),
        Template(
            "meta_conversions", _("Send conversion event (Meta)"), "Meta Conversions API", "ads",
            _("Sends a server event to a Meta dataset (pixel) with the Conversions API."),
            "https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api",
            "POST https://graph.facebook.com/v21.0/{pixel_id}/events?access_token=..., JSON data",
            (
                Credential("pixel_id", _("Dataset (pixel) ID")),
                Credential("access_token", _("Access token"), secret=True,
                           help=_("Events Manager: Settings, Conversions API, Generate access token.")),
            ),
            META_PARAMETERS, _meta, "pixel_id",
        ),
        Template(
            "segment_track", _("Track event (Segment)"), "Segment", "analytics",
            _("Records an event with Segment's HTTP Tracking API."),
            "https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#track",
            "POST https://api.segment.io/v1/track, JSON writeKey, userId, event, properties",
            (Credential("write_key", _("Write key"), secret=True,
                        help=_("The HTTP API source's write key.")),),
            SEGMENT_PARAMETERS, _segment,
        ),
        Template(
            "webhook", _("Generic webhook"), _("Any service"), "webhook",
            _("Posts a JSON event to your own endpoint, signed per Standard Webhooks."),
            "https://www.standardwebhooks.com/",
            "POST your URL, JSON event, profile_id, data; webhook-id, webhook-timestamp, webhook-signature",
            (
                Credential("url", _("Endpoint URL"), help=_("https:// URL of your endpoint.")),
                Credential("signing_secret", _("Signing secret"), secret=True, required=False,
                           help=_("whsec_...; leave empty and Conduit generates one.")),
            ),
            WEBHOOK_PARAMETERS, _webhook, "url",
        ),
        Template(
            "smtp_email", _("Send email (built-in SMTP)"), "Conduit", "email",
            _("Sends an email through the organization's own SMTP server (Email settings)."),
            "https://docs.djangoproject.com/en/5.2/topics/email/",
            "SMTP to the organization's server: To, Subject and a plain-text body",
            (Credential("from", _("From address"), required=False,
                        help=_("Leave empty to use the organization's default sender.")),),
            EMAIL_PARAMETERS, _email,
        ),
    )
}  # fmt: skip
