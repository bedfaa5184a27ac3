from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def encryption_keys_configured(app_configs, **kwargs) -> list[Error]:
    """Secrets cannot be stored without keys; production must bring its own."""
    if not settings.FIELD_ENCRYPTION_KEYS:
        return [
            Error(
                "FIELD_ENCRYPTION_KEYS is not set: action secrets cannot be encrypted.",
                hint="Set it to one or more Fernet keys, comma-separated, newest first.",
                id="conduit.E001",
            )
        ]
    return []
