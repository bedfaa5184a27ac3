from celery import shared_task

from actions.invocations import invocation_send, invocations_sweep


@shared_task(name="actions.send_invocation", ignore_result=True)
def send_invocation(invocation_id: str) -> None:
    invocation_send(invocation_id=invocation_id)


@shared_task(name="actions.sweep_invocations", ignore_result=True)
def sweep_invocations() -> dict[str, int]:
    return invocations_sweep()
