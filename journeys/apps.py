from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = _("Journeys")

    def ready(self) -> None:
        from django.conf import settings

        from actions.runtime.signals import calls_open, invocations_finished, metrics_requested
        from config.common.periodic import register_periodic
        from journeys.engine import on_calls_open, on_invocations_finished
        from journeys.frequency_caps.counting import on_metrics_requested
        from journeys.journey_history import journey_restore
        from journeys.models import FrequencyCap, Journey, Segment
        from tenants.audit.registry import audit_register

        restore = lambda obj, snapshot: journey_restore(journey=obj, snapshot=snapshot)  # noqa: E731
        audit_register(Journey, object_type="journey", restore=restore)
        audit_register(Segment, object_type="segment")
        audit_register(FrequencyCap, object_type="frequency_cap")

        invocations_finished.connect(on_invocations_finished, dispatch_uid="journeys.runs_go_on")
        calls_open.connect(on_calls_open, dispatch_uid="journeys.meanwhile")
        metrics_requested.connect(on_metrics_requested, dispatch_uid="journeys.capped_calls")
        register_periodic("sweep-journeys", settings.CONDUIT_SWEEP_INTERVAL_S, "journeys.sweep")
        register_periodic("enter-audiences", 1.0, "journeys.enter_audiences")
