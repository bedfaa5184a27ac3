from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = _("Organizations and access")

    def ready(self) -> None:
        # Registered on import: the proxy check, the API key scheme in OpenAPI, tokens ended by a new password.
        from tenants import checks, schema, signals  # noqa: F401
