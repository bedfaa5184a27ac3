from django import forms

from actions.models import Action
from actions.services.actions import action_create

SMS_ACTION = {
    "name": "Send SMS",
    "description": "Sends a text message.",
    "status": "active",
    "url": "https://sms.example.com/v1/accounts/{{account}}/messages",
    "headers": [{"name": "X-Tenant", "value": "acme"}],
    "body": {"to": "{{phone}}", "text": "{{text}}"},
    "parameters": [
        {"name": "account", "type": "string", "required": True, "description": "Account"},
        {"name": "phone", "type": "string", "required": True, "description": "Phone in E.164"},
        {"name": "text", "type": "string", "required": True, "description": "Message"},
    ],
    "auth": {"type": "bearer", "token": "tok-SECRET-123456"},
    "signing_secret": "generate",
}


def make_action(organization, **overrides) -> Action:
    return action_create(organization=organization, data={**SMS_ACTION, **overrides})


def admin_form_data(response) -> dict:
    """What a browser would send back from an admin change page: password fields come back blank."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field.widget, forms.PasswordInput):
            data[name] = ""  # a browser never gets a password field's value back
            continue
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else value
    return data
