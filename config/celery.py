"""The Celery app. Periodic sweepers are declared by each app (see `config.common.periodic`)."""

import os
from pathlib import Path

from celery import Celery, signals
from kombu.transport import TRANSPORT_ALIASES

# `filesystem://` means our atomic variant of kombu's transport (see config/common/broker.py).
TRANSPORT_ALIASES["filesystem"] = "config.common.broker:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("conduit")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.on_after_configure.connect
def _filesystem_broker_options(sender: Celery, **kwargs) -> None:
    """The embedded transport keeps messages as files; both sides share one folder.

    Run once the configuration is read (not at import): settings modules that import
    config.settings, such as bench/settings.py, are complete by then.
    """
    from django.conf import settings

    if not str(settings.CELERY_BROKER_URL).startswith("filesystem://"):
        return
    folder = Path(settings.CELERY_BROKER_FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    sender.conf.broker_transport_options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "store_processed": False,
        "control_folder": str(folder / "control"),
        # With prefetch 1, a worker looks for its next message only after this pause:
        # kombu's default of 1 s would cap each worker at one task a second.
        "polling_interval": 0.02,
    }


@signals.task_prerun.connect
@signals.task_postrun.connect
def _connections_as_between_requests(sender=None, **kwargs) -> None:
    """Around a task, what Django does around a request: close a connection that is broken or older
    than CONN_MAX_AGE, keep the others (CELERY_DB_REUSE_MAX in config/settings.py)."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # an eager task runs inside its caller's request, which owns the connection
    from django.db import close_old_connections

    close_old_connections()


app.autodiscover_tasks()
