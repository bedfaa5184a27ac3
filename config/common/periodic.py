"""Periodic tasks (the sweepers), declared by each app and run by the single beat scheduler."""

from celery import current_app

# name -> (seconds, task name). Apps add their sweepers with `register_periodic` when they are
# ready; beat reads the schedule once at start.
PERIODIC_TASKS: dict[str, tuple[float, str]] = {}


def register_periodic(name: str, every_seconds: float, task: str) -> None:
    """Declare a periodic task (a sweeper) run by the single beat scheduler."""
    PERIODIC_TASKS[name] = (every_seconds, task)
    current_app.conf.beat_schedule = {
        key: {"task": task_name, "schedule": seconds} for key, (seconds, task_name) in PERIODIC_TASKS.items()
    }
