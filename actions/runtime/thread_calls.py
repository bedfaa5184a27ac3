"""Calls made in a pool of threads over the process's urllib3 pool manager (transport.send): those
the event loop does not take (loop_calls.fits), a few of a host's calls in a row per thread, and a
fast host's calls on the task's own thread.
"""

import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from actions.models import Invocation
from actions.runtime import ratelimit
from actions.runtime.dispatch import call_invocation

logger = logging.getLogger(__name__)
CHUNK_GIVE_UP_S = 0.2  # a thread sends none of a chunk's calls after this long


_executor: ThreadPoolExecutor | None = None
_executor_pid: int | None = None
_executor_lock = threading.Lock()


def _threads() -> ThreadPoolExecutor:
    """The process's call threads (made after the fork: a child never inherits its parent's)."""
    global _executor, _executor_pid
    with _executor_lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(settings.CONDUIT_MAX_IN_FLIGHT, thread_name_prefix="conduit-call")
            _executor_pid = os.getpid()
    return _executor


class LimitFull(Exception):  # noqa: N818  (not an error: the limit's answer, with when the next frees)
    def __init__(self, retry_at: float | None):
        self.retry_at = retry_at


class _Late(Exception):  # noqa: N818  (not an error: a call counted too long before it could go)
    pass


def _taking(limits: list[ratelimit.Limit]) -> Callable[[], None]:
    """The hook that takes a call's limits right before its request goes.

    The limiter counts a call at the time it is asked and keeps a margin of one slice (50 ms of a
    one-second limit) for the provider seeing it later. A thread that waited for the interpreter
    longer than a quarter of that between asking and sending does not send: its call is counted
    but goes again at once (from the pool, unchecked, the soak saw 208-248 calls in a second for 200).
    """
    fresh_s = min(ratelimit.slice_s(limit) for limit in limits) / 4

    def take() -> None:
        asked = time.time()
        granted, retry_at = ratelimit.acquire(limits, asked, 1)
        if not granted:
            raise LimitFull(retry_at)
        if time.time() - asked > fresh_s:
            raise _Late

    return take


def send_calls(calls: list[tuple[Invocation, list[ratelimit.Limit]]]) -> list[tuple[datetime, Any]]:
    """The calls one after the other, each with when it started; one that raises does not stop the others.

    Limits set by people are taken right before each request goes (after its auth and signature), in
    the thread that sends it: taken before the thread ran, a call could reach the provider in a later
    window than the one it was counted in (the soak saw 238 calls in a second for 200). Past
    CHUNK_GIVE_UP_S the rest are not sent (None), nor is a call whose limit was taken too long
    before it could go: a host that turned slow mid-chunk keeps no call waiting behind another.
    """
    done: list[tuple[datetime, Any]] = []
    give_up_at = time.monotonic() + CHUNK_GIVE_UP_S
    for invocation, limits in calls:
        started = timezone.now()
        if done and time.monotonic() > give_up_at:
            done.append((started, None))
            continue
        try:
            done.append((started, call_invocation(invocation, _taking(limits) if limits else None)))
        except LimitFull as refused:
            done.append((started, refused))
        except _Late:
            done.append((started, None))
        except Exception as exc:  # noqa: BLE001  (recorded by the loop as this call's failure)
            logger.exception("Invocation %s could not be sent.", invocation.pk)
            done.append((started, exc))
    return done


def _in_thread(context: contextvars.Context, calls: list) -> list:
    try:
        return context.run(send_calls, calls)
    finally:
        # A token read from the database cache opens this thread's own connection: never left open.
        for connection in connections.all(initialized_only=True):
            connection.close()


def start_calls(calls: list[tuple[Invocation, list[ratelimit.Limit]]], *, inline: bool) -> Future:
    if inline or settings.CONDUIT_MAX_IN_FLIGHT <= 1:
        future: Future = Future()
        future.set_result(send_calls(calls))
        return future
    # The batch's caches (secret values, SMTP connections) live in context variables: the thread shares them.
    return _threads().submit(_in_thread, contextvars.copy_context(), calls)
