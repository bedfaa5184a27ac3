from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "actions"
    verbose_name = "Custom actions"

    def ready(self) -> None:
        from django.conf import settings

        from actions import checks  # noqa: F401  (registers the deploy check)
        from actions.models import Action, EmailSettings, EndpointLimit, SecretValue
        from actions.services.action_history import action_restore
        from config.common.periodic import register_periodic
        from tenants.audit.registry import audit_register

        audit_register(
            Action, object_type="action", restore=lambda obj, snapshot: action_restore(action=obj, snapshot=snapshot)
        )
        audit_register(SecretValue, object_type="secret_value")
        audit_register(EmailSettings, object_type="email_settings")
        audit_register(EndpointLimit, object_type="endpoint_limit")

        register_periodic("sweep-invocations", settings.CONDUIT_SWEEP_INTERVAL_S, "actions.sweep_invocations")
