from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = _("Organizations and access")

    def ready(self) -> None:
        # Registered on import: the proxy check, the API key scheme in OpenAPI, tokens ended by a new password.
        from tenants import checks, schema, signals  # noqa: F401
        from tenants.audit.registry import audit_register
        from tenants.models import ApiKey, Membership, Organization

        audit_register(Organization, object_type="organization")
        audit_register(Membership, object_type="member")
        # Never the key's hash; its last use is not a change anybody made.
        audit_register(ApiKey, object_type="api_key", exclude=("key_hash", "last_used_at"))
