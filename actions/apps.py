from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "actions"
    verbose_name = "Custom actions"

    def ready(self) -> None:
        from actions import checks  # noqa: F401  (registers the deploy check)
