"""The inputs of the action form: one per setting of the action, its auth type, its email and its secrets."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from actions.admin.forms import CODE_ATTRS, TEXT_ATTRS, JSONTextField, WriteOnlyTextarea, secret_input
from actions.services.actions import TEMPLATE_BOUNDS

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
AUTH_FORM_FIELDS = [name for fields in AUTH_FIELDS.values() for name in fields.values()]
SECRET_FIELDS = {  # form field -> the secret's path in Action.auth_secrets, for its auth type
    "basic_password": ("basic", "password"),
    "bearer_token": ("bearer", "token"),
    "api_key_value": ("api_key", "value"),
    "oauth2_client_secret": ("oauth2_client_credentials", "client_secret"),
    "google_service_account_json": ("google_service_account", "service_account_json"),
}


class ActionFields(forms.Form):
    """Every input the action form adds to the model's own; ActionForm turns them into the service's `data`."""

    query = JSONTextField(
        empty=[],
        rows=3,
        label=_("Query parameters"),
        help_text=_(
            'Added to the URL after "?". A list of name and value; values may hold placeholders. '
            'Example: [{"name": "lang", "value": "{{language}}"}]. Leave empty for none.'
        ),
    )
    headers = JSONTextField(
        empty=[],
        rows=4,
        label=_("Headers"),
        help_text=_(
            "Extra request headers, a list of name and value; values may hold placeholders. "
            'Example: [{"name": "X-Tenant", "value": "acme"}]. Host, Content-Length, Transfer-Encoding '
            "and Connection are set by Conduit itself. Put credentials under Authentication, not here."
        ),
    )
    body = JSONTextField(
        empty=None,
        rows=8,
        label=_("Body"),
        max_depth=TEMPLATE_BOUNDS["body"][0],
        help_text=_(
            'The JSON sent. "{{amount}}" alone is replaced by the parameter with its type '
            "(a number stays a number); inside longer text it is inserted as text. "
            'Example: {"to": "{{phone}}", "text": "Hello {{first_name}}"}. Leave empty to send no body '
            "(a GET request has none)."
        ),
    )
    parameters = JSONTextField(
        empty=[],
        rows=8,
        label=_("Parameters"),
        help_text=_(
            "What a journey fills in for each call; every placeholder must name one of them. "
            'Example: [{"name": "phone", "type": "string", "required": true, "default": null, '
            '"description": "Phone number in E.164"}]. Types: string, integer, decimal, boolean, '
            "datetime, date, list, object."
        ),
    )
    response_schema = JSONTextField(
        empty=None,
        rows=5,
        max_depth=TEMPLATE_BOUNDS["response_schema"][0],
        label=_("Response schema"),
        help_text=_(
            "Optional. A JSON Schema of a successful answer, so journeys can use its fields. "
            'Example: {"type": "object", "properties": {"id": {"type": "string"}}}. '
            '"New action from a sample payload" infers one from a pasted answer.'
        ),
    )

    basic_username = forms.CharField(required=False, label=_("Username (basic)"))
    basic_password = forms.CharField(required=False, label=_("Password (basic)"), widget=secret_input())
    bearer_token = forms.CharField(required=False, label=_("Token (bearer)"), widget=secret_input())
    api_key_in = forms.ChoiceField(
        required=False,
        label=_("Send the key in (API key)"),
        choices=[("", "---------"), ("header", _("a header")), ("query", _("the query string"))],
    )
    api_key_name = forms.CharField(
        required=False,
        label=_("Key name (API key)"),
        help_text=_("The header or query parameter name, e.g. X-Api-Key."),
    )
    api_key_value = forms.CharField(required=False, label=_("Key (API key)"), widget=secret_input())
    oauth2_token_url = forms.CharField(
        required=False, label=_("Token URL (OAuth2)"), help_text=_("Where Conduit asks for an access token.")
    )
    oauth2_client_id = forms.CharField(required=False, label=_("Client ID (OAuth2)"))
    oauth2_client_secret = forms.CharField(required=False, label=_("Client secret (OAuth2)"), widget=secret_input())
    oauth2_scope = forms.CharField(required=False, label=_("Scope (OAuth2)"), help_text=_("Optional."))
    oauth2_audience = forms.CharField(required=False, label=_("Audience (OAuth2)"), help_text=_("Optional."))
    token_request = JSONTextField(
        empty=None,
        rows=6,
        label=_("Token request (token endpoint)"),
        help_text=_(
            "The request that gets a token, as JSON. Example: "
            '{"url": "https://auth.example.com/token", "method": "POST", "headers": {"X-Key": "..."}, '
            '"body": {"user": "..."}, "body_type": "json"} (body_type "form" sends a form). '
            "Its headers and body are stored as secrets."
        ),
    )
    token_path = forms.CharField(
        required=False,
        label=_("Token path (token endpoint)"),
        help_text=_("Where the token is in the answer, e.g. data.access_token."),
    )
    token_expires_in_path = forms.CharField(
        required=False,
        label=_("Expiry path (token endpoint)"),
        help_text=_(
            "Where the lifetime in seconds is in the answer, e.g. data.expires_in. Give this or a fixed cache time."
        ),
    )
    token_cache_seconds = forms.IntegerField(
        required=False,
        min_value=1,
        label=_("Cache the token for (seconds)"),
        help_text=_("A fixed lifetime, when the answer does not say."),
    )
    token_inject_as = forms.ChoiceField(
        required=False,
        label=_("Send the token as (token endpoint)"),
        choices=[
            ("", "---------"),
            ("bearer", _("a bearer token")),
            ("header", _("a header")),
            ("query", _("a query parameter")),
        ],
    )
    token_inject_name = forms.CharField(
        required=False,
        label=_("Header or query name (token endpoint)"),
        help_text=_("Needed when the token goes in a header or a query parameter."),
    )
    google_service_account_json = forms.CharField(
        required=False,
        strip=False,
        label=_("Service account key (Google)"),
        widget=WriteOnlyTextarea(attrs={**CODE_ATTRS, "rows": 4}),
        help_text=_("The key file's JSON, as Google gives it (Firebase: Project settings, Service accounts)."),
    )
    google_scopes = forms.CharField(
        required=False,
        label=_("Scopes (Google)"),
        help_text=_(
            "Separated by spaces; empty for https://www.googleapis.com/auth/cloud-platform. "
            "Firebase Cloud Messaging: https://www.googleapis.com/auth/firebase.messaging."
        ),
    )

    email_to = forms.CharField(
        required=False,
        label=pgettext_lazy("email header", "To"),
        help_text=_("e.g. {{email}}; several separated by commas."),
    )
    email_cc = forms.CharField(required=False, label=pgettext_lazy("email header", "Cc"), help_text=_("Optional."))
    email_reply_to = forms.CharField(
        required=False, label=pgettext_lazy("email header", "Reply-To"), help_text=_("Optional.")
    )
    email_from = forms.CharField(
        required=False,
        label=pgettext_lazy("email header", "From"),
        help_text=_("Optional: the organization's default sender when empty."),
    )
    email_subject = forms.CharField(
        required=False, label=pgettext_lazy("email header", "Subject"), help_text=_("e.g. Your cart, {{first_name}}")
    )
    email_text = forms.CharField(
        required=False, strip=False, label=_("Plain text"), widget=forms.Textarea(attrs={"rows": 6, **TEXT_ATTRS})
    )
    email_html = forms.CharField(
        required=False,
        strip=False,
        label=_("HTML"),
        widget=forms.Textarea(attrs={**CODE_ATTRS, "rows": 6}),
        help_text=_("Optional. Parameter values are HTML-escaped where they are put in."),
    )

    signing_secret = forms.CharField(
        required=False,
        label=_("New signing secret"),
        widget=secret_input(),
        help_text=_(
            "The Standard Webhooks secret (whsec_...) the service checks signatures with. "
            "Leave blank to keep the current one."
        ),
    )
    generate_signing_secret = forms.BooleanField(
        required=False,
        label=_("Generate a new signing secret"),
        help_text=_(
            "Conduit makes a random one instead and shows it once, after saving, with a Copy button: "
            "give it to the receiving service then."
        ),
    )
    clear_signing_secret = forms.BooleanField(
        required=False, label=_("Remove the signing secret"), help_text=_("Calls are no longer signed.")
    )
    clear_client_certificate = forms.BooleanField(
        required=False, label=_("Remove the client certificate"), help_text=_("Calls no longer use mutual TLS.")
    )
    client_key = forms.CharField(
        required=False,
        strip=False,
        label=_("Client key"),
        widget=WriteOnlyTextarea(attrs={**CODE_ATTRS, "rows": 4}),
        help_text=_("The certificate's unencrypted PEM private key."),
    )
