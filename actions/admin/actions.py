"""The admin door to actions: the same services as the API, never a second copy of the rules.

Technical users configure, test, duplicate, export and import actions; everyone else
sees the palette (name, description, parameters), never a URL, header or secret.
"""

import copy
import json
import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.forms.fields import InvalidJSONInput, JSONString
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator, slugify

from actions.delivery.auth import _get as auth_value
from actions.delivery.rendering import PLACEHOLDER
from actions.models import Action, EmailSettings, PaletteAction
from actions.selectors import action_usage
from actions.services import actions as services
from actions.services import samples
from actions.services import templates as catalogue
from config.common.exceptions import Conflict
from tenants.admin_scoping import (
    OrgScopedAdminMixin,
    ReadOnlyAdminMixin,
    adopt_saved_row,
    form_organization,
    messages_by_field,
    problem_lines,
)
from tenants.models import Organization
from tenants.roles import Capability

NOT_USED = "Not used by any journey yet."
CODE_ATTRS = {"class": "vLargeTextField conduit-code", "spellcheck": "false", "autocomplete": "off"}
TEXT_ATTRS = {"class": "vLargeTextField"}
SECRET_KEPT = "Set. Leave blank to keep it; type a new value to replace it."
SECRET_MISSING = "Not set yet."

# The form field of each auth key, by auth type; the JavaScript shows one group at a time
# by these prefixes (basic_, bearer_, api_key_, oauth2_, token_).
AUTH_FIELDS: dict[str, dict[str, str]] = {
    "none": {},
    "basic": {"username": "basic_username", "password": "basic_password"},
    "bearer": {"token": "bearer_token"},
    "api_key": {"in": "api_key_in", "name": "api_key_name", "value": "api_key_value"},
    "oauth2_client_credentials": {
        "token_url": "oauth2_token_url",
        "client_id": "oauth2_client_id",
        "client_secret": "oauth2_client_secret",
        "scope": "oauth2_scope",
        "audience": "oauth2_audience",
    },
    "token_endpoint": {
        "request": "token_request",
        "token_path": "token_path",
        "expires_in_path": "token_expires_in_path",
        "cache_seconds": "token_cache_seconds",
        "inject": "token_inject_as",
        "inject.name": "token_inject_name",
    },
    "google_service_account": {
        "service_account_json": "google_service_account_json",
        "scopes": "google_scopes",
    },
}
# The email action's templates, by key of Action.email.
EMAIL_FIELDS = {key: f"email_{key}" for key in ("to", "cc", "reply_to", "from", "subject", "text", "html")}
SIGNING_FIELDS = [
    "signing_secret_status",
    "signing_secret",
    "generate_signing_secret",
    "clear_signing_secret",
]
DELIVERY_FIELDS = ["timeout_ms", "max_retries", "rate_limit_calls", "rate_limit_period_s", "on_rate_limit"]
AUTH_FORM_FIELDS = [name for fields in AUTH_FIELDS.values() for name in fields.values()]
SECRET_FIELDS = {  # form field -> the secret's path in Action.auth_secrets, for its auth type
    "basic_password": ("basic", "password"),
    "bearer_token": ("bearer", "token"),
    "api_key_value": ("api_key", "value"),
    "oauth2_client_secret": ("oauth2_client_credentials", "client_secret"),
    "google_service_account_json": ("google_service_account", "service_account_json"),
}
# Where a problem the service reports under a key is shown; keys not here are non-field errors.
FORM_FIELD_OF = {
    **{name: name for name in services.EDITABLE_FIELDS},
    "client_key": "client_key",
    "signing_secret": "signing_secret",
    "clear_signing_secret": "clear_signing_secret",
    "clear_client_certificate": "clear_client_certificate",
    "auth_type": "auth_type",
    "kind": "kind",
    "body_type": "body_type",
    "auth_config": "auth_type",
    "auth_secrets": "auth_type",
    "organization": "organization",
}


# --- small form pieces ----------------------------------------------------------------


class JSONTextField(forms.JSONField):
    """JSON typed into a monospace textarea. A typing mistake is an error on this field, not a 500."""

    def __init__(self, *, empty: Any = None, rows: int = 5, **kwargs: Any):
        self.empty = empty
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={**CODE_ATTRS, "rows": rows}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if self.disabled:
            return value
        if value in self.empty_values or (isinstance(value, str) and not value.strip()):
            return copy.deepcopy(self.empty)
        if isinstance(value, list | dict | int | float | JSONString):
            return value
        try:
            converted = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).", code="invalid"
            ) from None
        return JSONString(converted) if isinstance(converted, str) else converted

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput):
            return value
        if value is None or value == self.empty:
            return ""  # an empty box reads better than [] and means the same
        return json.dumps(value, indent=2, ensure_ascii=False)


class WriteOnlyTextarea(forms.Textarea):
    """A textarea for a multi-line secret (a PEM key): the stored value never goes into the page."""

    def format_value(self, value: Any) -> None:
        return None


def _secret_input() -> forms.PasswordInput:
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


def _host(url: str) -> str:
    try:
        return urlsplit(PLACEHOLDER.sub("x", url or "")).hostname or ""
    except ValueError:
        return ""


def _smtp_host(action: Action) -> str:
    found = EmailSettings.objects.filter(organization_id=action.organization_id).first()
    return f"{found.host}:{found.port}" if found else ""


def _used_in_html(action: Action | None) -> str:
    usage = action_usage(action=action) if action is not None and action.pk else []
    if not usage:
        return NOT_USED
    return format_html(
        "<ul class='conduit-used-in'>{}</ul>",
        format_html_join(
            "",
            "<li>{}{}</li>",
            (
                (item.get("name", item), f" ({item['status']})" if item.get("status") else "")
                if isinstance(item, dict)
                else (item, "")
                for item in usage
            ),
        ),
    )


def _parameter_summary(parameters: list[dict]) -> str:
    return ", ".join(
        f"{p.get('name')} ({p.get('type')}, {'required' if p.get('required', True) else 'optional'})"
        for p in parameters or []
    )


# --- the action form ------------------------------------------------------------------


class ActionForm(forms.ModelForm):
    """Builds the same `data` the API would and lets the service judge it, field by field."""

    request: HttpRequest | None = None  # set by OrgScopedAdminMixin.get_form

    query = JSONTextField(
        empty=[],
        rows=3,
        label="Query parameters",
        help_text='Added to the URL after "?". A list of name and value; values may hold placeholders. '
        'Example: [{"name": "lang", "value": "{{language}}"}]. Leave empty for none.',
    )
    headers = JSONTextField(
        empty=[],
        rows=4,
        help_text="Extra request headers, a list of name and value; values may hold placeholders. "
        'Example: [{"name": "X-Tenant", "value": "acme"}]. Host, Content-Length, Transfer-Encoding '
        "and Connection are set by Conduit itself. Put credentials under Authentication, not here.",
    )
    body = JSONTextField(
        empty=None,
        rows=8,
        help_text='The JSON sent. "{{amount}}" alone is replaced by the parameter with its type '
        "(a number stays a number); inside longer text it is inserted as text. "
        'Example: {"to": "{{phone}}", "text": "Hello {{first_name}}"}. Leave empty to send no body '
        "(a GET request has none).",
    )
    parameters = JSONTextField(
        empty=[],
        rows=8,
        help_text="What a journey fills in for each call; every placeholder must name one of them. "
        'Example: [{"name": "phone", "type": "string", "required": true, "default": null, '
        '"description": "Phone number in E.164"}]. Types: string, integer, decimal, boolean, '
        "datetime, date, list, object.",
    )
    response_schema = JSONTextField(
        empty=None,
        rows=5,
        label="Response schema",
        help_text="Optional. A JSON Schema of a successful answer, so journeys can use its fields. "
        'Example: {"type": "object", "properties": {"id": {"type": "string"}}}. '
        '"New action from a sample payload" infers one from a pasted answer.',
    )

    basic_username = forms.CharField(required=False, label="Username (basic)")
    basic_password = forms.CharField(required=False, label="Password (basic)", widget=_secret_input())
    bearer_token = forms.CharField(required=False, label="Token (bearer)", widget=_secret_input())
    api_key_in = forms.ChoiceField(
        required=False,
        label="Send the key in (API key)",
        choices=[("", "---------"), ("header", "a header"), ("query", "the query string")],
    )
    api_key_name = forms.CharField(
        required=False,
        label="Key name (API key)",
        help_text="The header or query parameter name, e.g. X-Api-Key.",
    )
    api_key_value = forms.CharField(required=False, label="Key (API key)", widget=_secret_input())
    oauth2_token_url = forms.CharField(
        required=False, label="Token URL (OAuth2)", help_text="Where Conduit asks for an access token."
    )
    oauth2_client_id = forms.CharField(required=False, label="Client ID (OAuth2)")
    oauth2_client_secret = forms.CharField(required=False, label="Client secret (OAuth2)", widget=_secret_input())
    oauth2_scope = forms.CharField(required=False, label="Scope (OAuth2)", help_text="Optional.")
    oauth2_audience = forms.CharField(required=False, label="Audience (OAuth2)", help_text="Optional.")
    token_request = JSONTextField(
        empty=None,
        rows=6,
        label="Token request (token endpoint)",
        help_text="The request that gets a token, as JSON. Example: "
        '{"url": "https://auth.example.com/token", "method": "POST", "headers": {"X-Key": "..."}, '
        '"body": {"user": "..."}, "body_type": "json"} (body_type "form" sends a form). '
        "Its headers and body are stored as secrets.",
    )
    token_path = forms.CharField(
        required=False,
        label="Token path (token endpoint)",
        help_text="Where the token is in the answer, e.g. data.access_token.",
    )
    token_expires_in_path = forms.CharField(
        required=False,
        label="Expiry path (token endpoint)",
        help_text="Where the lifetime in seconds is in the answer, e.g. data.expires_in. "
        "Give this or a fixed cache time.",
    )
    token_cache_seconds = forms.IntegerField(
        required=False,
        min_value=1,
        label="Cache the token for (seconds)",
        help_text="A fixed lifetime, when the answer does not say.",
    )
    token_inject_as = forms.ChoiceField(
        required=False,
        label="Send the token as (token endpoint)",
        choices=[
            ("", "---------"),
            ("bearer", "a bearer token"),
            ("header", "a header"),
            ("query", "a query parameter"),
        ],
    )
    token_inject_name = forms.CharField(
        required=False,
        label="Header or query name (token endpoint)",
        help_text="Needed when the token goes in a header or a query parameter.",
    )
    google_service_account_json = forms.CharField(
        required=False,
        strip=False,
        label="Service account key (Google)",
        widget=WriteOnlyTextarea(attrs={**CODE_ATTRS, "rows": 4}),
        help_text="The key file's JSON, as Google gives it (Firebase: Project settings, Service accounts).",
    )
    google_scopes = forms.CharField(
        required=False,
        label="Scopes (Google)",
        help_text="Separated by spaces; empty for https://www.googleapis.com/auth/cloud-platform. "
        "Firebase Cloud Messaging: https://www.googleapis.com/auth/firebase.messaging.",
    )

    email_to = forms.CharField(required=False, label="To", help_text="e.g. {{email}}; several separated by commas.")
    email_cc = forms.CharField(required=False, label="Cc", help_text="Optional.")
    email_reply_to = forms.CharField(required=False, label="Reply-To", help_text="Optional.")
    email_from = forms.CharField(
        required=False, label="From", help_text="Optional: the organization's default sender when empty."
    )
    email_subject = forms.CharField(required=False, label="Subject", help_text="e.g. Your cart, {{first_name}}")
    email_text = forms.CharField(
        required=False, strip=False, label="Plain text", widget=forms.Textarea(attrs={"rows": 6, **TEXT_ATTRS})
    )
    email_html = forms.CharField(
        required=False,
        strip=False,
        label="HTML",
        widget=forms.Textarea(attrs={**CODE_ATTRS, "rows": 6}),
        help_text="Optional. Parameter values are HTML-escaped where they are put in.",
    )

    signing_secret = forms.CharField(
        required=False,
        label="New signing secret",
        widget=_secret_input(),
        help_text="The Standard Webhooks secret (whsec_...) the service checks signatures with. "
        "Leave blank to keep the current one.",
    )
    generate_signing_secret = forms.BooleanField(
        required=False,
        label="Generate a new signing secret",
        help_text="Conduit makes a random one instead. It is never shown, so the service cannot "
        "learn it from here: to share a secret with the service, paste it above instead.",
    )
    clear_signing_secret = forms.BooleanField(
        required=False, label="Remove the signing secret", help_text="Calls are no longer signed."
    )
    clear_client_certificate = forms.BooleanField(
        required=False, label="Remove the client certificate", help_text="Calls no longer use mutual TLS."
    )
    client_key = forms.CharField(
        required=False,
        strip=False,
        label="Client key",
        widget=WriteOnlyTextarea(attrs={**CODE_ATTRS, "rows": 4}),
        help_text="The certificate's unencrypted PEM private key.",
    )

    class Meta:
        model = Action
        fields = [
            "organization", "name", "description", "status", "kind", "method", "url", "query", "headers", "body",
            "body_type", "parameters", "auth_type", "response_schema", "timeout_ms", "max_retries", "rate_limit_calls",
            "rate_limit_period_s", "on_rate_limit", "client_certificate", "client_key",
        ]  # fmt: skip
        labels = {
            "url": "URL",
            "auth_type": "Auth type",
            "timeout_ms": "Timeout (milliseconds)",
            "max_retries": "Retries",
            "rate_limit_calls": "Rate limit: calls",
            "rate_limit_period_s": "Rate limit: per seconds",
            "on_rate_limit": "Beyond the rate limit",
            "body_type": "Body as",
        }
        help_texts = {
            "name": "What marketers see in the palette, e.g. Send SMS.",
            "description": "What the action does, in words a marketer reads.",
            "status": "Only active actions appear in the palette; a draft can be tested first.",
            "kind": "An HTTP request to a service, or an email through the organization's SMTP settings.",
            "body_type": "JSON, or a form (application/x-www-form-urlencoded) as Twilio and others take: "
            "then the body is an object of field names to values.",
            "url": "The address called, starting with https://. The path may hold placeholders filled "
            "from parameters, e.g. https://api.example.com/v2/users/{{user_id}}/messages.",
            "auth_type": "How Conduit proves to the service who it is; fill in the fields of that type.",
            "timeout_ms": "How long to wait for an answer: 100 to 30,000 (30 seconds).",
            "max_retries": "Tries again after a connection error, a timeout, 408, 429 or 5xx; at most 10.",
            "rate_limit_calls": "At most this many calls per period. Leave both empty for no limit.",
            "rate_limit_period_s": "The period of the limit, in seconds (at most 86,400: one day).",
            "on_rate_limit": "Delay waits for room; reject ends the call as rate_limited.",
            "client_certificate": "Only if the service asks for mutual TLS: the PEM certificate "
            "(-----BEGIN CERTIFICATE-----).",
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
            "url": forms.TextInput(attrs={"class": "vLargeTextField conduit-code", "spellcheck": "false"}),
            "client_certificate": forms.Textarea(attrs={**CODE_ATTRS, "rows": 4}),
        }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.action_data: dict[str, Any] = {}
        self.organization: Organization | None = None
        for write_only in ("client_key", "signing_secret"):
            self.initial.pop(write_only, None)  # never an initial value, so never in the page
        if "method" in self.fields:
            self.fields["method"].choices = [(method, method) for method in Action.Method.values]
        for name in ("kind", "body_type"):  # older forms and scripts post neither: the defaults apply
            if name in self.fields:
                self.fields[name].required = False
        action = self.instance
        stored_type = action.auth_type if action.pk else None
        stored_secrets = (action.auth_secrets or {}) if action.pk else {}
        config = (action.auth_config or {}) if action.pk else {}
        for key, name in AUTH_FIELDS.get(stored_type or "none", {}).items():
            value = auth_value(config, key)
            if key == "inject":
                value = (value or {}).get("as")
            if value is not None and name not in SECRET_FIELDS:
                self.initial.setdefault(name, value)
        for name, (kind, secret_path) in SECRET_FIELDS.items():
            is_set = stored_type == kind and auth_value(stored_secrets, secret_path) not in (None, "")
            self.fields[name].help_text = SECRET_KEPT if is_set else SECRET_MISSING
        if stored_type == "token_endpoint":
            kept = [p for p in ("headers", "body") if auth_value(stored_secrets, f"request.{p}") is not None]
            if kept:
                self.fields["token_request"].help_text += (
                    f" Its {' and '.join(kept)} {'are' if len(kept) > 1 else 'is'} set; leave "
                    f"{'them' if len(kept) > 1 else 'it'} out to keep {'them' if len(kept) > 1 else 'it'}."
                )
        for key, name in EMAIL_FIELDS.items():
            if action.pk and action.email and isinstance(action.email.get(key), str):
                self.initial.setdefault(name, action.email[key])
        if "client_key" in self.fields:
            self.fields["client_key"].help_text += " " + (
                SECRET_KEPT if action.pk and action.client_key else SECRET_MISSING
            )

    # --- the data the API would send
    def _auth_data(self) -> dict[str, Any]:
        cleaned = self.cleaned_data
        kind = cleaned.get("auth_type") or "none"
        auth: dict[str, Any] = {"type": kind}
        for key, name in AUTH_FIELDS.get(kind, {}).items():
            value = cleaned.get(name)
            if value in (None, "") or key.startswith("inject"):
                continue
            auth[key] = value
        if kind == "token_endpoint" and cleaned.get("token_inject_as"):
            auth["inject"] = {"as": cleaned["token_inject_as"]}
            if cleaned.get("token_inject_name"):
                auth["inject"]["name"] = cleaned["token_inject_name"]
        return auth

    def _action_data(self) -> dict[str, Any]:
        cleaned = self.cleaned_data
        data = {name: cleaned[name] for name in services.EDITABLE_FIELDS if name in cleaned}
        for name, default in (("kind", Action.Kind.HTTP), ("body_type", Action.BodyType.JSON)):
            if name in data and not data[name]:
                data[name] = self.instance.pk and getattr(self.instance, name) or default
        if "auth_type" in cleaned:
            data["auth"] = self._auth_data()
        if cleaned.get("kind") == Action.Kind.EMAIL:
            data["email"] = {key: cleaned[name] for key, name in EMAIL_FIELDS.items() if cleaned.get(name)}
            # The Request fieldset is hidden for an email: what it still posts is left behind.
            data.update(url="", query=[], headers=[], body=None, body_type=Action.BodyType.JSON)
        elif "kind" in cleaned:
            data["email"] = None
        if cleaned.get("signing_secret"):
            data["signing_secret"] = cleaned["signing_secret"]
        if cleaned.get("generate_signing_secret"):
            data["signing_secret"] = "generate"
        if cleaned.get("clear_signing_secret"):
            data["clear_signing_secret"] = True
        if cleaned.get("client_key"):
            data["client_key"] = cleaned["client_key"]
        if cleaned.get("clear_client_certificate"):
            data["clear_client_certificate"] = True
        return data

    # --- problems to fields
    def _field_for(self, key: str, message: str) -> str | None:
        if key == "auth":
            kind = self.cleaned_data.get("auth_type") or "none"
            path = message.split(":", 1)[0].strip()
            fields = AUTH_FIELDS.get(kind, {})
            if path == "type":
                return "auth_type"
            return fields.get(path) or fields.get(path.split(".")[0]) or "auth_type"
        if key == "email":
            return EMAIL_FIELDS.get(message.split(":", 1)[0].strip(), "email_to")
        return FORM_FIELD_OF.get(key)

    def attach_problems(self, problems: dict[str, list[str]]) -> None:
        had_errors = set(self.errors)
        for key, messages_ in problems.items():
            for message in messages_:
                field = self._field_for(key, message)
                if field in had_errors:
                    continue  # its own input error says more than what followed from it
                if field is None or field not in self.fields:
                    shown = message if key == forms.forms.NON_FIELD_ERRORS else f"{key}: {message}"
                    self.add_error(None, shown)
                else:
                    self.add_error(field, message)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        signing_choices = [
            name for name in ("signing_secret", "generate_signing_secret", "clear_signing_secret") if cleaned.get(name)
        ]
        if len(signing_choices) > 1:
            self.add_error(signing_choices[-1], "Choose one: a new signing secret, a generated one, or none.")
            return cleaned
        organization = form_organization(self.request, self)
        if organization is None:
            self.add_error("organization" if "organization" in self.fields else None, "Choose an organization.")
            return cleaned
        data = self._action_data()
        # The service's own rules, run on an unsaved copy: what it would refuse is refused here.
        trial = copy.deepcopy(self.instance) if self.instance.pk else Action(organization=organization)
        problems = services._apply(trial, data)
        for key, messages_ in services.validate_action(trial).items():
            problems.setdefault(key, []).extend(messages_)
        self.attach_problems(problems)
        refused = getattr(self.request, REFUSED_ATTR, None)
        if refused:
            self.attach_problems(refused)
        self.organization, self.action_data = organization, data
        return cleaned

    def _post_clean(self) -> None:
        # The service validates and saves; the model's own full_clean would say it twice.
        pass


REFUSED_ATTR = "_conduit_action_refused"


class _Refused(Exception):
    """The service refused at save time (a race, or an action in use): show it on the form."""

    def __init__(self, problems: dict[str, list[str]]):
        super().__init__(problems)
        self.problems = problems


# --- forms of the extra pages ---------------------------------------------------------

PLACEHOLDER_OF_TYPE = {
    "integer": "e.g. 42",
    "decimal": "e.g. 12.50",
    "boolean": "true or false",
    "datetime": "e.g. 2026-11-29T10:00:00Z",
    "date": "e.g. 2026-11-29",
    "list": 'e.g. ["a", "b"]',
    "object": 'e.g. {"key": "value"}',
}


class ParameterValuesForm(forms.Form):
    """One input per parameter of the action, prefilled with its default."""

    def __init__(self, action: Action, *args: Any, **kwargs: Any):
        super().__init__(*args, prefix="parameter", **kwargs)
        self.action = action
        for parameter in action.parameters or []:
            kind, default = parameter.get("type"), parameter.get("default")
            needed = "required" if parameter.get("required", True) else "optional"
            label = f"{parameter['name']} ({kind}, {needed})"
            attrs = {"placeholder": PLACEHOLDER_OF_TYPE[kind]} if kind in PLACEHOLDER_OF_TYPE else {}
            if kind in ("list", "object"):
                field = JSONTextField(
                    empty=None,
                    label=label,
                    initial=default,
                    widget=forms.Textarea(attrs={**CODE_ATTRS, **attrs, "rows": 3}),
                )
            else:
                field = forms.CharField(
                    required=False,
                    label=label,
                    initial=None if default is None else _as_text(default),
                    widget=forms.TextInput(attrs={**attrs, "class": "vTextField"}),
                )
            field.help_text = parameter.get("description") or ""
            self.fields[parameter["name"]] = field

    def values(self) -> dict[str, Any]:
        return {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}

    def attach(self, exc: ValidationError) -> None:
        for message in [m for messages_ in messages_by_field(exc).values() for m in messages_]:
            found = re.match(r"^parameter (\w+):", message)
            name = found.group(1) if found else None
            self.add_error(name if name in self.fields else None, message)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _organization_choice(*, required: bool = True) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        required=required,
        queryset=Organization.objects.filter(is_active=True),
        help_text="Platform staff: the organization the new action belongs to.",
    )


class InferForm(forms.Form):
    sample = JSONTextField(
        empty=None,
        rows=10,
        label="Sample request body",
        help_text='A JSON body the service accepts, e.g. {"to": "+33600000000", "text": "Hello"}.',
    )
    sample_response = JSONTextField(
        empty=None,
        rows=6,
        label="Sample response (optional)",
        help_text="A successful answer of the service; Conduit infers the response schema from it.",
    )
    name = forms.CharField(required=False, max_length=200, help_text="The new action's name, e.g. Send SMS.")
    url = forms.CharField(
        required=False,
        max_length=2000,
        label="URL",
        help_text="Where the body is sent, starting with https://.",
        widget=forms.TextInput(attrs={"class": "vLargeTextField conduit-code"}),
    )
    method = forms.ChoiceField(required=False, choices=Action.Method.choices, initial=Action.Method.POST)

    def __init__(self, *args: Any, with_organization: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if with_organization:  # asked only at the last step
            self.fields["organization"] = _organization_choice(required=False)


class ImportForm(forms.Form):
    data = JSONTextField(
        empty=None,
        rows=14,
        label="Exported JSON",
        help_text='Paste what "Export JSON" gave (format "conduit.action.v1"), or choose the file below.',
    )
    file = forms.FileField(required=False, label="Or an export file")

    def __init__(self, *args: Any, with_organization: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if with_organization:
            self.fields["organization"] = _organization_choice()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is not None:
            try:
                cleaned["data"] = json.loads(upload.read().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                self.add_error("file", "This file is not a JSON export.")
        elif cleaned.get("data") is None and "data" not in self.errors:
            self.add_error("data", "Paste an export or choose a file.")
        return cleaned


class FromTemplateForm(forms.Form):
    """A template's credentials, and the new action's name and status."""

    name = forms.CharField(max_length=200, help_text="What marketers see in the palette.")
    status = forms.ChoiceField(
        choices=[(Action.Status.DRAFT, "Draft: test it first"), (Action.Status.ACTIVE, "Active: in the palette now")],
        initial=Action.Status.DRAFT,
    )

    def __init__(self, template: catalogue.Template, *args: Any, with_organization: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.template = template
        self.fields["name"].initial = template.name
        if with_organization:
            self.fields["organization"] = _organization_choice()
        for credential in template.credentials:
            if credential.secret:
                widget = (
                    WriteOnlyTextarea(attrs={**CODE_ATTRS, "rows": 6}) if credential.multiline
                    else forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
                )  # fmt: skip
            else:
                widget = forms.TextInput(attrs={"class": "vLargeTextField"})
            help_text = credential.help + (" Stored encrypted, never shown again." if credential.secret else "")
            self.fields[f"credential_{credential.name}"] = forms.CharField(
                label=credential.label, required=credential.required, strip=not credential.secret,
                widget=widget, help_text=help_text.strip(),
            )  # fmt: skip

    def credentials(self) -> dict[str, str]:
        return {
            c.name: self.cleaned_data.get(f"credential_{c.name}") or ""
            for c in self.template.credentials
            if self.cleaned_data.get(f"credential_{c.name}")
        }

    def attach(self, exc: ValidationError) -> None:
        for key, problems in messages_by_field(exc).items():
            field = f"credential_{key.removeprefix('credentials.')}" if key.startswith("credentials.") else key
            for problem in problems:
                if field in self.fields:
                    self.add_error(field, problem)
                else:
                    self.add_error(None, problem if key == forms.forms.NON_FIELD_ERRORS else f"{key}: {problem}")


# --- the admins -----------------------------------------------------------------------


class _ActionDisplay:
    @admin.display(description="used in")
    def used_in(self, obj: Action) -> str:
        return _used_in_html(obj)


@admin.register(Action)
class ActionAdmin(_ActionDisplay, OrgScopedAdminMixin, admin.ModelAdmin):
    """The whole configuration, for admins and technical users."""

    view_capability = Capability.MANAGE_ACTIONS
    change_capability = Capability.MANAGE_ACTIONS
    form = ActionForm
    list_display = ["name", "status", "kind", "method", "host", "auth_type", "updated_at"]
    list_filter = ["status", "kind", "auth_type"]
    search_fields = ["name", "description"]

    class Media:
        css = {"all": ["actions/admin.css"]}
        js = ["actions/auth_fields.js"]

    @admin.display(description="host", ordering="url")
    def host(self, obj: Action) -> str:
        return _host(obj.url)

    @admin.display(description="signing secret set")
    def signing_secret_status(self, obj: Action) -> str:
        if not obj.signing_secret:
            return "no"
        return "yes, and the previous one still signs too" if obj.previous_signing_secret else "yes"

    def get_readonly_fields(self, request: HttpRequest, obj: Action | None = None) -> list[str]:
        readonly = ["signing_secret_status", "used_in"]
        return readonly + (["organization"] if obj is not None and request.user.is_superuser else [])

    def get_fieldsets(self, request: HttpRequest, obj: Action | None = None) -> list:
        first = ["name", "description", "status", "kind"]
        if request.user.is_superuser:
            first = ["organization", *first]
        fieldsets = [
            ("Action", {"fields": first}),
            (
                "Request",
                {
                    "fields": ["method", "url", "query", "headers", "body_type", "body"],
                    "classes": ["conduit-kind-http"],
                    "description": "For an HTTP action. Placeholders such as {{phone}} are filled from the "
                    "parameters at each call; {{secrets.NAME}} puts in one of the organization's secret values "
                    "when the call is sent, never shown.",
                },
            ),
            (
                "Email",
                {
                    "fields": list(EMAIL_FIELDS.values()),
                    "classes": ["conduit-kind-email"],
                    "description": "For an email action, sent through the organization's email settings. "
                    "Placeholders such as {{first_name}} are filled from the parameters.",
                },
            ),
            ("Parameters", {"fields": ["parameters"]}),
            (
                "Authentication",
                {
                    "fields": ["auth_type", *AUTH_FORM_FIELDS],
                    "classes": ["conduit-auth", "conduit-kind-http"],
                    "description": "Secrets are stored encrypted and never shown again.",
                },
            ),
            (
                "Signing",
                {
                    "fields": SIGNING_FIELDS,
                    "classes": ["conduit-kind-http"],
                    "description": "With a signing secret, each call carries Standard Webhooks "
                    "signature headers the service can check. The secret itself is never shown here.",
                },
            ),
            ("Response", {"fields": ["response_schema"]}),
            ("Delivery", {"fields": DELIVERY_FIELDS}),
            (
                "Mutual TLS",
                {
                    "fields": ["client_certificate", "client_key", "clear_client_certificate"],
                    "classes": ["collapse", "conduit-kind-http"],
                    "description": "Only for services that ask for a client certificate.",
                },
            ),
        ]
        if obj is not None:
            fieldsets.append(("Used in", {"fields": ["used_in"]}))
        return fieldsets

    def changeform_view(self, request: HttpRequest, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _Refused as refused:
            # The transaction is rolled back; show the same form again with the service's words.
            setattr(request, REFUSED_ATTR, refused.problems)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Action, form: ActionForm, change: bool) -> None:
        try:
            if change:
                saved = services.action_update(action=obj, data=form.action_data)
            else:
                saved = services.action_create(organization=form.organization, data=form.action_data, user=request.user)
        except ValidationError as exc:
            raise _Refused(messages_by_field(exc)) from exc
        except Conflict as exc:
            problems = {k: v if isinstance(v, list) else [str(v)] for k, v in exc.errors.items()}
            raise _Refused(problems or {forms.forms.NON_FIELD_ERRORS: [exc.message]}) from exc
        adopt_saved_row(obj, saved)

    def delete_model(self, request: HttpRequest, obj: Action) -> None:
        services.action_delete(action=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for action in queryset:
            services.action_delete(action=action)

    # --- the extra pages
    def get_urls(self) -> list:
        def name(view: str) -> str:
            return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

        wrap = self.admin_site.admin_view
        return [
            path("infer/", wrap(self.infer_view), name=name("infer")),
            path("from-template/", wrap(self.templates_view), name=name("templates")),
            path("from-template/<slug:key>/", wrap(self.from_template_view), name=name("from_template")),
            path("import/", wrap(self.import_view), name=name("import")),
            path("<path:object_id>/test/", wrap(self.test_view), name=name("test")),
            path("<path:object_id>/duplicate/", wrap(self.duplicate_view), name=name("duplicate")),
            path("<path:object_id>/export/", wrap(self.export_view), name=name("export")),
            *super().get_urls(),
        ]

    def _require_manage(self, request: HttpRequest) -> None:
        if not self.has_change_permission(request):
            raise PermissionDenied

    def _scoped_object(self, request: HttpRequest, object_id: str) -> tuple[Action | None, HttpResponse | None]:
        action = self.get_object(request, unquote(object_id))
        if action is None:
            return None, self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return action, None

    def _change_url(self, action: Action) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[action.pk])

    def _page(self, request: HttpRequest, template: str, title: str, **context: Any) -> TemplateResponse:
        return TemplateResponse(
            request,
            f"admin/actions/action/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "app_label": self.opts.app_label,
                "title": title,
                "media": self.media,
                **context,
            },
        )

    def test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._require_manage(request)
        action, redirect = self._scoped_object(request, object_id)
        if redirect is not None:
            return redirect
        form = ParameterValuesForm(action, request.POST if request.method == "POST" else None)
        result = None
        if request.method == "POST" and form.is_valid():
            try:
                result = services.action_test(action=action, values=form.values())
            except ValidationError as exc:
                form.attach(exc)
        return self._page(
            request,
            "test_request.html",
            f"Test request: {action.name}",
            original=action,
            form=form,
            host=_host(action.url) if action.kind == Action.Kind.HTTP else _smtp_host(action),
            result=result,
            shown=_shown_result(result) if result is not None else None,
        )

    def duplicate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._require_manage(request)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        action, redirect = self._scoped_object(request, object_id)
        if redirect is not None:
            return redirect
        duplicate = services.action_duplicate(action=action, user=request.user)
        self.log_addition(request, duplicate, f"Duplicated from {action.name}.")
        self.message_user(
            request,
            f"“{duplicate.name}” is a draft copy of “{action.name}”, with the same secrets.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(self._change_url(duplicate))

    def export_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._require_manage(request)
        action, redirect = self._scoped_object(request, object_id)
        if redirect is not None:
            return redirect
        response = JsonResponse(
            services.action_export(action=action), json_dumps_params={"indent": 2, "ensure_ascii": False}
        )
        response["Content-Disposition"] = f'attachment; filename="{slugify(action.name) or "action"}.json"'
        return response

    def import_view(self, request: HttpRequest) -> HttpResponse:
        self._require_manage(request)
        with_organization = request.user.is_superuser
        if request.method != "POST":
            form = ImportForm(with_organization=with_organization)
        else:
            form = ImportForm(request.POST, request.FILES, with_organization=with_organization)
            if form.is_valid():
                try:
                    imported = services.action_import(
                        organization=form_organization(request, form),
                        data=form.cleaned_data["data"],
                        user=request.user,
                    )
                except ValidationError as exc:
                    for line in problem_lines(messages_by_field(exc)):
                        form.add_error(None, line)
                else:
                    self.log_addition(request, imported, "Imported from JSON.")
                    self.message_user(
                        request,
                        f"Imported “{imported.name}” as a draft. Enter its secrets before making it active.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(self._change_url(imported))
        return self._page(request, "import.html", "Import an action from JSON", form=form)

    def templates_view(self, request: HttpRequest) -> HttpResponse:
        self._require_manage(request)
        return self._page(
            request, "templates.html", "New action from a template", templates=list(catalogue.TEMPLATES.values())
        )

    def from_template_view(self, request: HttpRequest, key: str) -> HttpResponse:
        self._require_manage(request)
        template = catalogue.TEMPLATES.get(key)
        if template is None:
            raise Http404("No such action template.")
        with_organization = request.user.is_superuser
        form = FromTemplateForm(template, request.POST or None, with_organization=with_organization)
        if request.method == "POST" and form.is_valid():
            try:
                action = catalogue.action_from_template(
                    organization=form_organization(request, form), key=key,
                    credentials=form.credentials(), name=form.cleaned_data["name"],
                    status=form.cleaned_data["status"], user=request.user,
                )  # fmt: skip
            except ValidationError as exc:
                form.attach(exc)
            else:
                self.log_addition(request, action, f"Created from the template {template.name}.")
                self.message_user(
                    request,
                    f"Created “{action.name}” from the {template.provider} template. Send a test request to check "
                    "the credentials; every field stays editable below.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self._change_url(action))
        return self._page(request, "from_template.html", f"New action: {template.name}", form=form, chosen=template)

    def infer_view(self, request: HttpRequest) -> HttpResponse:
        self._require_manage(request)
        with_organization = request.user.is_superuser
        if request.method != "POST":
            form = InferForm(with_organization=with_organization)
            return self._page(request, "infer.html", "New action from a sample payload", form=form)
        form = InferForm(request.POST, with_organization=with_organization)
        step = request.POST.get("step", "fields")
        chosen = request.POST.getlist("parameters")
        fields: list[dict] = []
        if form.is_valid():
            sample, sample_response = form.cleaned_data["sample"], form.cleaned_data["sample_response"]
            if sample is None and sample_response is None:
                form.add_error("sample", "Paste a sample body, a sample response, or both.")
            elif sample is not None:
                try:
                    samples.body_from_sample(sample, [])
                    fields = samples.sample_fields(sample)
                except ValidationError as exc:
                    form.add_error("sample", problem_lines(messages_by_field(exc)))
            if step == "create" and form.is_valid():
                created = self._create_from_sample(request, form, chosen)
                if created is not None:
                    return HttpResponseRedirect(self._change_url(created))
        return self._page(
            request,
            "infer.html",
            "New action from a sample payload",
            form=form,
            fields=fields,
            chosen=chosen,
            show_fields=not (form.has_error("sample") or form.has_error("sample_response")),
        )

    def _create_from_sample(self, request: HttpRequest, form: InferForm, chosen: list[str]) -> Action | None:
        cleaned = form.cleaned_data
        for name in ("organization", "name", "url") if "organization" in form.fields else ("name", "url"):
            if not cleaned.get(name):
                form.add_error(name, "Needed to create the action.")
        if form.errors:
            return None
        data: dict[str, Any] = {
            "name": cleaned["name"],
            "url": cleaned["url"],
            "method": cleaned["method"] or Action.Method.POST,
            "status": Action.Status.DRAFT,
        }
        try:
            if cleaned["sample"] is not None:
                data["body"], data["parameters"] = samples.body_from_sample(cleaned["sample"], chosen)
            if cleaned["sample_response"] is not None:
                data["response_schema"] = samples.schema_from_sample(cleaned["sample_response"])
            created = services.action_create(
                organization=form_organization(request, form), data=data, user=request.user
            )
        except ValidationError as exc:
            where = {"body": "sample", "response_schema": "sample_response", "name": "name", "url": "url"}
            for key, messages_ in messages_by_field(exc).items():
                field = where.get(key, key if key in form.fields and key != "parameters" else None)
                for message in messages_:
                    form.add_error(field, message if field else f"{key}: {message}")
            return None
        self.log_addition(request, created, "Created from a sample payload.")
        self.message_user(
            request,
            f"Created the draft “{created.name}”. Check its headers and authentication, then test it.",
            messages.SUCCESS,
        )
        return created


def _pretty(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return text


def _shown_result(result: Any) -> dict[str, Any]:
    """The call's outcome for the page; the service has already masked every secret."""
    request = result.request or {}
    response_body = (
        json.dumps(result.response_json, indent=2, ensure_ascii=False)
        if result.response_json is not None
        else result.response_body
    )
    return {
        "outcome": result.outcome,
        "error": result.error,
        "method": request.get("method", ""),
        "url": request.get("url", ""),
        "request_headers": request.get("headers", []),
        "request_body": _pretty(request.get("body")),
        "status_code": result.status_code,
        "response_headers": sorted(result.response_headers.items()),
        "response_body": response_body,
        "truncated": result.truncated,
        "latency_ms": result.latency_ms,
    }


@admin.register(PaletteAction)
class PaletteActionAdmin(_ActionDisplay, ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """The action palette: what every role may see of the active actions, read-only."""

    view_capability = Capability.VIEW_PALETTE
    change_capability = Capability.MANAGE_ACTIONS
    list_display = ["name", "short_description", "parameter_summary", "used_in"]
    search_fields = ["name", "description"]
    # Listed explicitly so that nothing else (URL, headers, auth, secrets) is ever rendered.
    fields = ["name", "what_it_does", "parameter_table", "used_in"]
    readonly_fields = fields
    actions = None

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(status=Action.Status.ACTIVE)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        return super().changelist_view(request, {"title": "Action palette", **(extra_context or {})})

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra = {"title": "Action in the palette", **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    @admin.display(description="description")
    def what_it_does(self, obj: Action) -> str:
        return obj.description or "No description yet."

    @admin.display(description="description")
    def short_description(self, obj: Action) -> str:
        return Truncator(obj.description).chars(120)

    @admin.display(description="parameters")
    def parameter_summary(self, obj: Action) -> str:
        return _parameter_summary(obj.parameters)

    @admin.display(description="parameters")
    def parameter_table(self, obj: Action) -> str:
        if not obj.parameters:
            return "No parameters."
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    p.get("name"),
                    p.get("type"),
                    "yes" if p.get("required", True) else "no",
                    "" if p.get("default") is None else _as_text(p["default"]),
                    p.get("description", ""),
                )
                for p in obj.parameters
            ),
        )
        return format_html(
            "<table class='conduit-parameters'><thead><tr><th>Name</th><th>Type</th><th>Required</th>"
            "<th>Default</th><th>Description</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
