"""Replays of failed invocations, one or a range: the same rendered request and Idempotency-Key again."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from actions.models import Action, Invocation
from actions.runtime import wake
from config.common.exceptions import Conflict

__all__ = ["invocation_replay", "invocations_replay"]
Status = Invocation.Status


@transaction.atomic
def invocation_replay(*, invocation: Invocation) -> Invocation:
    """Replay one invocation, which must have failed (else Conflict: a 409 in the API)."""
    current = Invocation.objects.select_for_update().get(pk=invocation.pk)
    if current.status != Status.FAILED:
        raise Conflict(
            _("Only a failed invocation can be replayed; this one is %(status)s.") % {"status": current.status},
            {"invocation": [_("The invocation is %(status)s, not failed.") % {"status": current.status}]},
        )
    if not current.request:
        raise Conflict(
            _("This invocation was never sent (its parameters did not fit the action): there is nothing to replay."),
            {"invocation": [_("The invocation has no rendered request.")]},
        )
    return _replay(current)


@transaction.atomic
def invocations_replay(*, action: Action, since: datetime, until: datetime) -> list[Invocation]:
    """Replay every failed invocation of `action` created in [since, until) not replayed yet.

    Running it twice replays nothing the second time: the originals are locked, then checked again.
    """
    candidates = list(
        Invocation.objects.filter(
            organization_id=action.organization_id,
            action=action,
            status=Status.FAILED,
            created_at__gte=since,
            created_at__lt=until,
            replays__isnull=True,
        )
        .exclude(request={})
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    if not candidates:
        return []
    originals = list(Invocation.objects.select_for_update().filter(pk__in=candidates).order_by("created_at", "pk"))
    # Read after the locks are held: a concurrent replay of the same range has committed by now.
    already = set(Invocation.objects.filter(replay_of_id__in=candidates).values_list("replay_of_id", flat=True))
    return [_replay(original) for original in originals if original.pk not in already]


def _replay(original: Invocation) -> Invocation:
    """The replay row: the same rendered request and Idempotency-Key, linked to the original (locked by the caller)."""
    now = timezone.now()
    replay = Invocation.objects.create(
        organization_id=original.organization_id, action_id=original.action_id, origin=Invocation.Origin.REPLAY,
        origin_ref=str(original.pk), replay_of=original, request=original.request, next_attempt_at=now,
        created_at=now, idempotency_key=original.idempotency_key,
        send_window=original.send_window, time_zone=original.time_zone,  # sent within the customer's window too
    )  # fmt: skip
    transaction.on_commit(lambda: wake(replay.pk, now))
    return replay
