"""Send windows at send time: a claimed call due outside its window goes back to the queue, due at the
next opening, with `window_wait_until` saying so; a change to an action's window re-times its held calls."""

import json
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from actions.models import Action, Invocation
from actions.runtime.dispatch import Batch
from actions.runtime.invocations import BATCH_SIZE, wake
from actions.send_windows import next_opening, zone_of

Status = Invocation.Status
RELEASE_WAKE_LIMIT = 1000  # held calls woken at once on a change; the sweeper wakes the others


def hold_outside_window(batch: Batch, invocations: list[Invocation], now: datetime) -> list[Invocation]:
    """The calls that may go now; the others are rescheduled to their window's opening.

    The window is the call's own (its journey step's), else its action's as loaded with the claim,
    so an edit applies to every call not yet sent. No query: the action and its organization came
    with the batch, and one opening is worked out per window and zone, not per call.
    """
    openings: dict[tuple[Any, str], datetime] = {}
    sendable = []
    for invocation in invocations:
        action = invocation.action
        window = invocation.send_window or action.send_window
        if not window:
            invocation.window_wait_until = None
            sendable.append(invocation)
            continue
        key = (json.dumps(window, sort_keys=True) if invocation.send_window else action.pk, invocation.time_zone)
        if key not in openings:
            zone = zone_of(invocation.time_zone, action.organization.default_time_zone)
            openings[key] = next_opening(window, zone, now)
        opening = openings[key]
        if opening <= now:
            invocation.window_wait_until = None
            sendable.append(invocation)
        else:
            invocation.window_wait_until = opening
            batch.reschedule(invocation, opening)
    return sendable


def held_calls_release(*, action: Action) -> int:
    """After an action's window changed: its held calls are due now, to be held again or sent under the new one."""
    held = Invocation.objects.filter(
        organization_id=action.organization_id, action=action, status=Status.PENDING, window_wait_until__isnull=False
    )
    now = timezone.now()
    ids = list(held.values_list("pk", flat=True)[:RELEASE_WAKE_LIMIT])
    count = held.update(next_attempt_at=now)
    for start in range(0, len(ids), BATCH_SIZE):
        transaction.on_commit(lambda first=ids[start]: wake(first, timezone.now()))
    return count
