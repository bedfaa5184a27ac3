import time

from celery import shared_task
from django.utils import timezone

from journeys.audience.rounds import audiences_enter, audiences_start
from journeys.engine import BATCH_SIZE, EVENT_BATCH_SIZE, events_process, journeys_sweep, runs_advance

DRAIN_S = 10  # one message keeps draining due work for a while: fewer messages, bigger batches


@shared_task(name="journeys.process_events", ignore_result=True)
def process_events() -> None:
    deadline = time.monotonic() + DRAIN_S
    while events_process() == EVENT_BATCH_SIZE and time.monotonic() < deadline:
        pass


@shared_task(name="journeys.advance_runs", ignore_result=True)
def advance_runs() -> None:
    deadline = time.monotonic() + DRAIN_S
    while runs_advance() == BATCH_SIZE and time.monotonic() < deadline:
        pass


@shared_task(name="journeys.sweep", ignore_result=True)
def sweep_journeys() -> dict[str, int]:
    return journeys_sweep()


@shared_task(name="journeys.enter_audiences", ignore_result=True)
def enter_audiences() -> None:
    """Run each second by the beat: start the audience rounds that are due and enter the profiles due by now
    (at 2,000 a second, 2,000 runs a write). It never waits: a worker is held only while there is work."""
    now = timezone.now()
    audiences_start(now=now)
    audiences_enter(now=now)
