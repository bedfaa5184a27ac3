"""The Celery app. Periodic sweepers are declared by each app (see `config.common.periodic`)."""

import os
from pathlib import Path

from celery import Celery
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


app.autodiscover_tasks()
