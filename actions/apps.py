from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "actions"
    verbose_name = "Custom actions"

    def ready(self) -> None:
        from django.conf import settings

        from actions import checks  # noqa: F401  (registers the deploy check)
        from config.common.periodic import register_periodic

        register_periodic("sweep-invocations", settings.CONDUIT_SWEEP_INTERVAL_S, "actions.sweep_invocations")
