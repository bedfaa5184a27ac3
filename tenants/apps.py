from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Organizations and access"

    def ready(self) -> None:
        from tenants import checks, schema  # noqa: F401  (register the proxy check and the API key scheme in OpenAPI)
