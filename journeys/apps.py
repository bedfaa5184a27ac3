from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        from django.conf import settings

        from actions.runtime.signals import invocations_finished
        from config.common.periodic import register_periodic
        from journeys.engine import on_invocations_finished

        invocations_finished.connect(on_invocations_finished, dispatch_uid="journeys.runs_go_on")
        register_periodic("sweep-journeys", settings.CONDUIT_SWEEP_INTERVAL_S, "journeys.sweep")
