"""The invocation state machine: enqueue, dispatch with many calls in flight, sweeper, circuit, limits.

The names below are the runtime's public surface for services, the Celery tasks and the journeys app.
"""

from actions.runtime.inflight import invocation_send, invocations_send_due
from actions.runtime.invocations import BATCH_SIZE, invocation_enqueue, invocations_enqueue, wake
from actions.runtime.sweeper import invocations_sweep
from actions.runtime.windows import held_calls_release

__all__ = [
    "BATCH_SIZE", "held_calls_release", "invocation_enqueue", "invocation_send", "invocations_enqueue",
    "invocations_send_due", "invocations_sweep", "wake",
]  # fmt: skip
