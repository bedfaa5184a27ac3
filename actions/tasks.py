import time

from celery import shared_task

from actions.runtime import BATCH_SIZE, invocations_send_due, invocations_sweep


@shared_task(name="actions.send_invocation", ignore_result=True)
def send_invocation(invocation_id: str) -> None:
    """Send the invocation, then keep draining due ones for a while: one message can do many."""
    deadline = time.monotonic() + 10
    sent = invocations_send_due(first_id=invocation_id)
    while sent == BATCH_SIZE and time.monotonic() < deadline:
        sent = invocations_send_due()


@shared_task(name="actions.sweep_invocations", ignore_result=True)
def sweep_invocations() -> dict[str, int]:
    return invocations_sweep()
