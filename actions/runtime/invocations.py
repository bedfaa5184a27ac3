"""The runtime: every call of an action is an Invocation row moved through its states.

pending -> running -> succeeded | failed | rate_limited, and running -> pending for a
retry, a delay or a hold. The database is the truth; Celery only wakes workers (the
`actions.send_invocation` task), and the sweeper re-wakes what a lost message left behind.
This module writes new rows and wakes workers; `dispatch` sends them.
"""

import logging
import threading
from datetime import datetime
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from actions.delivery.calls import render
from actions.delivery.rendering import RenderedRequest, RenderError
from actions.models import Action, Invocation

logger = logging.getLogger(__name__)
Status = Invocation.Status
BATCH_SIZE = 50  # a worker claims this many due rows per message (MEASURED.md: batches keep the database work small)
SEND_TASK = "actions.send_invocation"  # looked up by name: the runtime never imports its Celery door


def _request_record(rendered: RenderedRequest) -> dict:
    return {
        "method": rendered.method,
        "url": rendered.url,
        "headers": [list(pair) for pair in rendered.headers],
        "body": rendered.body.decode() if rendered.body is not None else None,
        "secrets": rendered.secrets,
    }


def invocations_enqueue(
    *,
    action: Action,
    values_list: list[dict[str, Any]],
    origin: str = Invocation.Origin.API,
    origin_ref: str = "",
    origin_refs: list[str] | None = None,
    windows: list[tuple[dict | None, str]] | None = None,
) -> list[Invocation]:
    """Write invocations in the caller's transaction (one INSERT); workers are woken once it commits.

    `origin_refs` gives each invocation its own reference (a journey's step runs), `windows` its send
    window override and time zone (a journey step's, the profile's). Values that do not fit the action
    end their invocation at once as failed (outcome `error`), without a signal: the caller sees it in
    the returned status.
    """
    now = timezone.now()
    invocations = []
    refs = origin_refs if origin_refs is not None else [origin_ref] * len(values_list)
    timing = windows if windows is not None else [(None, "")] * len(values_list)
    for values, ref, (window, zone) in zip(values_list, refs, timing, strict=True):
        invocation = Invocation(
            organization_id=action.organization_id, action=action, origin=origin, origin_ref=ref,
            next_attempt_at=now, created_at=now, send_window=window, time_zone=zone,
        )  # fmt: skip
        invocation.idempotency_key = invocation.id
        try:
            invocation.request = _request_record(render(action, values))
        except (RenderError, TypeError, ValueError) as exc:  # e.g. a value JSON cannot hold
            invocation.status, invocation.outcome, invocation.error = Status.FAILED, "error", str(exc)
            invocation.finished_at = now
        invocations.append(invocation)
    Invocation.objects.bulk_create(invocations)
    _to_wake.ids.extend(i.pk for i in invocations if i.status == Status.PENDING)
    transaction.on_commit(_wake_enqueued)
    return invocations


def invocation_enqueue(
    *, action: Action, values: dict[str, Any], origin: str = Invocation.Origin.API, origin_ref: str = ""
) -> Invocation:
    return invocations_enqueue(action=action, values_list=[values], origin=origin, origin_ref=origin_ref)[0]


class _ToWake(threading.local):
    def __init__(self) -> None:
        self.ids: list = []


_to_wake = _ToWake()


def _wake_enqueued() -> None:
    """After a commit: one message per batch of new invocations, not one per invocation."""
    ids, _to_wake.ids = _to_wake.ids, []
    for start in range(0, len(ids), BATCH_SIZE):
        wake(ids[start], timezone.now())


def wake(invocation_id: Any, at: datetime) -> None:
    """Ask a worker to look at the row at `at`. Losing this message loses nothing: the sweeper re-wakes."""
    delay = max((at - timezone.now()).total_seconds(), 0.0)
    if delay > settings.CONDUIT_COUNTDOWN_MAX_S:
        return  # long waits are never broker ETAs; the sweeper picks the row up when due
    try:
        current_app.send_task(SEND_TASK, args=[str(invocation_id)], countdown=delay or None)
    except Exception:  # the broker is down: the row is pending, the sweeper sends it later
        logger.warning("Could not reach the broker for invocation %s; the sweeper will retry.", invocation_id)
