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
