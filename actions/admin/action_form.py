"""The action form: it builds the same `data` the API would and lets the service judge it, field by field."""

from typing import Any

from django import forms
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from actions.admin.action_fields import AUTH_FIELDS, EMAIL_FIELDS, SECRET_FIELDS, ActionFields
from actions.admin.categories import CategoriesField
from actions.admin.forms import CODE_ATTRS, SECRET_KEPT, SECRET_MISSING
from actions.admin.send_window_fields import (
    SEND_WINDOW_PROBLEM_FIELDS,
    SendWindowFields,
    send_window_from,
    send_window_initial,
)
from actions.models import Action
from actions.selectors import action_auth_secret_is_set, action_auth_setting
from actions.services import actions as services
from tenants.admin_scoping import form_organization
from tenants.models import Organization

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
    **SEND_WINDOW_PROBLEM_FIELDS,
}


def _kept_request_note(kept: list[str]) -> str:
    """What the token request's help adds when its stored headers or body are kept."""
    if len(kept) > 1:
        return _("Its headers and body are set; leave them out to keep them.")
    if kept == ["headers"]:
        return _("Its headers is set; leave it out to keep it.")
    return _("Its body is set; leave it out to keep it.")


class ActionForm(ActionFields, SendWindowFields, forms.ModelForm):
    """Builds the same `data` the API would and lets the service judge it, field by field."""

    request: HttpRequest | None = None  # set by OrgScopedAdminMixin.get_form
    categories = CategoriesField()

    class Meta:
        model = Action
        fields = [
            "organization", "name", "description", "status", "kind", "method", "url", "query", "headers", "body",
            "body_type", "parameters", "auth_type", "response_schema", "timeout_ms", "max_retries", "rate_limit_calls",
            "rate_limit_period_s", "on_rate_limit", "client_certificate", "client_key",
            "categories",
        ]  # fmt: skip
        labels = {
            "organization": gettext_lazy("Organization"),
            "name": gettext_lazy("Name"),
            "description": gettext_lazy("Description"),
            "status": gettext_lazy("Status"),
            "kind": gettext_lazy("Kind"),
            "method": gettext_lazy("Method"),
            "url": gettext_lazy("URL"),
            "auth_type": gettext_lazy("Auth type"),
            "timeout_ms": gettext_lazy("Timeout (milliseconds)"),
            "max_retries": gettext_lazy("Retries"),
            "rate_limit_calls": gettext_lazy("Rate limit: calls"),
            "rate_limit_period_s": gettext_lazy("Rate limit: per seconds"),
            "on_rate_limit": gettext_lazy("Beyond the rate limit"),
            "body_type": gettext_lazy("Body as"),
            "client_certificate": gettext_lazy("Client certificate"),
        }
        help_texts = {
            "name": gettext_lazy("What marketers see in the palette, e.g. Send SMS."),
            "description": gettext_lazy("What the action does, in words a marketer reads."),
            "status": gettext_lazy("Only active actions appear in the palette; a draft can be tested first."),
            "kind": gettext_lazy("An HTTP request to a service, or an email through the organization's SMTP settings."),
            "body_type": gettext_lazy(
                "JSON, or a form (application/x-www-form-urlencoded) as Twilio and others take: "
                "then the body is an object of field names to values."
            ),
            "url": gettext_lazy(
                "The address called, starting with https://. The path may hold placeholders filled "
                "from parameters, e.g. https://api.example.com/v2/users/{{user_id}}/messages."
            ),
            "auth_type": gettext_lazy("How Conduit proves to the service who it is; fill in the fields of that type."),
            "timeout_ms": gettext_lazy("How long to wait for an answer: 100 to 30,000 (30 seconds)."),
            "max_retries": gettext_lazy(
                "Tries again after a connection error, a timeout, 408, 429 or 5xx; at most 10."
            ),
            "rate_limit_calls": gettext_lazy("At most this many calls per period. Leave both empty for no limit."),
            "rate_limit_period_s": gettext_lazy("The period of the limit, in seconds (at most 86,400: one day)."),
            "on_rate_limit": gettext_lazy("Delay waits for room; reject ends the call as rate_limited."),
            "client_certificate": gettext_lazy(
                "Only if the service asks for mutual TLS: the PEM certificate (-----BEGIN CERTIFICATE-----)."
            ),
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
        for key, name in AUTH_FIELDS.get(stored_type or "none", {}).items():
            value = action_auth_setting(action=action, path=key)
            if key == "inject":
                value = (value or {}).get("as")
            if value is not None and name not in SECRET_FIELDS:
                self.initial.setdefault(name, value)
        for name, (kind, secret_path) in SECRET_FIELDS.items():
            is_set = stored_type == kind and action_auth_secret_is_set(action=action, path=secret_path)
            self.fields[name].help_text = SECRET_KEPT if is_set else SECRET_MISSING
        if stored_type == "token_endpoint":
            kept = [p for p in ("headers", "body") if action_auth_secret_is_set(action=action, path=f"request.{p}")]
            if kept:
                self.fields["token_request"].help_text += " " + _kept_request_note(kept)
        if action.pk:
            for name, value in send_window_initial(action.send_window).items():
                self.initial.setdefault(name, value)
        for key, name in EMAIL_FIELDS.items():
            if action.pk and action.email and isinstance(action.email.get(key), str):
                self.initial.setdefault(name, action.email[key])
        if "client_key" in self.fields:
            self.fields["client_key"].help_text += " " + (
                SECRET_KEPT if action.pk and action.client_key else SECRET_MISSING
            )

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
        if "send_window_start" in self.fields:
            data["send_window"] = send_window_from(cleaned)
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
            self.add_error(signing_choices[-1], _("Choose one: a new signing secret, a generated one, or none."))
            return cleaned
        organization = form_organization(self.request, self)
        if organization is None:
            self.add_error("organization" if "organization" in self.fields else None, _("Choose an organization."))
            return cleaned
        self.organization, self.action_data = organization, self._action_data()
        existing = self.instance if self.instance.pk else None
        self.attach_problems(services.action_check(organization=organization, data=self.action_data, action=existing))
        return cleaned

    def _post_clean(self) -> None:
        # The service validates and saves; the model's own full_clean would say it twice.
        pass
