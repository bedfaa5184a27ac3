"""Calls made on the event loop (actions/delivery/loop_transport.py) rather than in a thread each.

A call goes there when nothing before its request blocks: no token to fetch (the token types),
no client certificate (a pool of the action's own), no limit set by people (taken in the sending
thread right before the request goes, see thread_calls._taking), and not an email (SMTP). The others
go through the thread pool as before. The secret values, the signature and the auth are put in
on the task's thread; the loop only sends, and masks what came back.
"""

import logging
from concurrent.futures import Future
from typing import Any

from django.conf import settings
from django.utils import timezone

from actions.delivery import loop_transport
from actions.delivery.auth import TOKEN_TYPES
from actions.delivery.calls import CallResult, PreparedCall, authenticate, finish_call, prepare_call
from actions.delivery.transport import TransportResult
from actions.models import Action, Invocation
from actions.runtime import ratelimit
from actions.runtime.dispatch import stored_request

logger = logging.getLogger(__name__)


def fits(invocation: Invocation, limits: list[ratelimit.Limit]) -> bool:
    """Whether this call can be made on the loop (see above)."""
    action = invocation.action
    return (
        settings.CONDUIT_CALLS_ON_LOOP
        and settings.CONDUIT_MAX_IN_FLIGHT > 1  # one at a time (the tests' own process): on the task's thread
        and not limits
        and action.kind != Action.Kind.EMAIL
        and action.auth_type not in TOKEN_TYPES
        and not (action.client_certificate and action.client_key)
        and loop_transport.handles(invocation.request["url"])
    )


def start(invocations: list[Invocation]) -> list[Future]:
    """Start these calls; each future gives [(started, CallResult or the exception that stopped it)],
    as a chunk sent from a thread does (thread_calls.send_calls)."""
    futures: list[Future | None] = []  # None: the loop's future, below
    on_loop: list[tuple[Any, Any]] = []
    for invocation in invocations:
        started = timezone.now()
        try:
            prepared = prepare_call(
                invocation.action, stored_request(invocation), idempotency_key=str(invocation.idempotency_key)
            )
            failed = prepared if isinstance(prepared, CallResult) else authenticate(prepared)
        except Exception as exc:  # noqa: BLE001  (recorded by the loop as this call's failure)
            logger.exception("Invocation %s could not be sent.", invocation.pk)
            failed = exc
        if failed is not None:
            futures.append(Future())
            futures[-1].set_result([(started, failed)])
            continue
        futures.append(None)
        on_loop.append((prepared.outbound(), _finisher(invocation, prepared, started)))
    sent = iter(loop_transport.start(on_loop))
    return [future or next(sent) for future in futures]


def _finisher(invocation: Invocation, prepared: PreparedCall, started: Any):
    def finish(result: TransportResult | Exception) -> list:
        if isinstance(result, Exception):  # whatever stopped the call is its failure, never the batch's
            return [(started, result)]
        try:
            return [(started, finish_call(prepared, result))]
        except Exception as exc:  # noqa: BLE001  (one bad answer must not hold back the others)
            logger.exception("The answer to invocation %s could not be read.", invocation.pk)
            return [(started, exc)]

    return finish
