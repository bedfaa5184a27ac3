"""The sweeper: re-wakes due invocations a lost message left behind, and frees rows a dead worker held."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from actions.models import Invocation
from actions.runtime.invocations import BATCH_SIZE, wake

Status = Invocation.Status


def invocations_sweep(*, now: datetime | None = None, batch: int = 1000) -> dict[str, int]:
    """Re-wake invocations that are due but were not picked up, and free those stuck running."""
    now = now or timezone.now()
    stuck_ids = list(
        Invocation.objects.filter(status=Status.RUNNING, claimed_until__lt=now).values_list("pk", flat=True)[:batch]
    )
    if stuck_ids:
        # A worker died mid-call: the next attempt carries the same Idempotency-Key.
        Invocation.objects.filter(pk__in=stuck_ids, status=Status.RUNNING, claimed_until__lt=now).update(
            status=Status.PENDING, next_attempt_at=now, claimed_until=None
        )
    grace = now - timedelta(seconds=settings.CONDUIT_SWEEP_GRACE_S)
    due_ids = list(
        Invocation.objects.filter(Q(status=Status.PENDING) & (Q(next_attempt_at__lte=grace) | Q(pk__in=stuck_ids)))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:batch]
    )
    if due_ids:
        # Pushed forward so the next sweep does not wake them again while they wait in the queue.
        Invocation.objects.filter(pk__in=due_ids, status=Status.PENDING).update(next_attempt_at=now)
    for start in range(0, len(due_ids), BATCH_SIZE):  # a worker takes a batch per message
        wake(due_ids[start], now)
    return {"stuck": len(stuck_ids), "woken": len(due_ids)}
