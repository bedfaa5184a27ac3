"""The HTTP call on an event loop: many calls open at once in one thread of the worker process.

Why: 400 calls in flight as 400 threads cost 0.8 ms of CPU per call in the worker (the GIL handed
between them at every socket operation) against 0.4 ms for the same call made on the task's
thread; aiohttp on one loop costs 0.15 ms (bench/clients.py). The runtime sends here the calls
that need nothing blocking before they go (actions/runtime/loop_calls.py); transport.send makes
the others. Both keep the same guarantees and give the same sentences:

- outbound safety on the IP actually connected to: the resolver keeps only allowed addresses of a
  name, and every socket is made by `_guarded_socket`, which checks its address again (an IP in
  the URL never reaches a resolver);
- no redirects, no proxy from the environment, no cookies kept between calls;
- the read cut at CONDUIT_MAX_RESPONSE_BYTES and the whole call within its timeout.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ipaddress
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from actions.delivery.destinations import DestinationRefused, check_destination_ip
from actions.delivery.transport import (
    READ_CHUNK_BYTES,
    OutboundRequest,
    TransportResult,
    causes_of,
    merge_headers,
    request_headers,
    response_limit,
    tls_reason,
)

# aiohttp adds these unless told not to; urllib3 sends none of them (a body without a
# Content-Type would otherwise go as application/octet-stream).
_NOT_ADDED = ("Accept", "Accept-Encoding", "Content-Type")
_CONNECT_FAILED = re.compile(r"Connect call failed \('([^']+)', (\d+)")


class _Refused(OSError):
    """A refusal raised where aiohttp expects an OSError; the refusal travels in its args."""

    def __init__(self, refusal: DestinationRefused) -> None:
        super().__init__(refusal)


class _GuardedResolver(AbstractResolver):
    """A name's addresses, only those Conduit may call (the others are never tried)."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        allowed: list[ResolveResult] = []
        refusal: DestinationRefused | None = None
        for af, _, proto, _, sockaddr in infos:
            try:
                check_destination_ip(str(sockaddr[0]))
            except DestinationRefused as exc:
                refusal = refusal or exc
                continue
            allowed.append(
                {"hostname": host, "host": str(sockaddr[0]), "port": port, "family": af, "proto": proto, "flags": 0}
            )
        if not allowed:
            raise _Refused(refusal or DestinationRefused(f"Refused: {host} resolved to no address."))
        return allowed

    async def close(self) -> None:
        return None


def _guarded_socket(addr_info: tuple) -> socket.socket:
    """Every connection's socket, made only for an allowed address (the last word before connect)."""
    family, type_, proto, _, sockaddr = addr_info
    try:
        check_destination_ip(str(sockaddr[0]))
    except DestinationRefused as refusal:
        raise _Refused(refusal) from None
    return socket.socket(family=family, type=type_, proto=proto)


def handles(url: str) -> bool:
    """False for a URL this transport reads otherwise than urllib3: an IPv4 address in a legacy
    form (`2130706433`, `127.1`), which aiohttp refuses as a URL and urllib3 calls as the address."""
    host = urlsplit(url).hostname or ""
    if not re.fullmatch(r"[0-9a-fA-Fx.]+", host):  # a name, or an IPv6 address
        return True
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return not re.fullmatch(r"(0x[0-9a-fA-F]+|[0-9]+)(\.(0x[0-9a-fA-F]+|[0-9]+)){0,3}", host)
    return True


# The loop ---------------------------------------------------------------------------------

_loop: asyncio.AbstractEventLoop | None = None
_session: aiohttp.ClientSession | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()
_tasks: set[asyncio.Task] = set()


def _running_loop() -> asyncio.AbstractEventLoop:
    """The process's loop and its thread, made after the fork: a child never inherits its parent's."""
    global _loop, _loop_pid, _session
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop, _loop_pid, _session = asyncio.new_event_loop(), os.getpid(), None
            threading.Thread(target=_loop.run_forever, name="conduit-loop", daemon=True).start()
            atexit.register(_close, _loop)
    return _loop


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """At exit, the session's connections closed (aiohttp complains of a session left open)."""
    if _session is not None and _loop is loop and not _session.closed:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_session.close(), loop).result(timeout=2)


def _client() -> aiohttp.ClientSession:
    """The loop's one session: a keep-alive pool per host. No limit of its own: the runtime keeps at
    most CONDUIT_MAX_IN_FLIGHT calls open, and a second queue here would spend their timeouts waiting."""
    global _session
    if _session is None or _session.closed:
        connector = aiohttp.TCPConnector(
            limit=0, limit_per_host=0, use_dns_cache=False,
            resolver=_GuardedResolver(), socket_factory=_guarded_socket,
        )  # fmt: skip
        _session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
            max_line_size=65536, max_field_size=65536,  # as http.client reads them
            timeout=aiohttp.ClientTimeout(),  # none of its own: send() bounds the whole call (asyncio.timeout)
        )  # fmt: skip
    return _session


def start(requests: list[tuple[OutboundRequest, Callable[[TransportResult | Exception], Any]]]) -> list[Future]:
    """Start these calls on the loop; each future gives what its callback made of the call's result,
    or of the exception that stopped it (one future a call: the runtime's, no second one to chain).

    One wake-up of the loop for all of them, not one per call. A callback that raises sets its
    future's exception."""
    futures: list[Future] = [Future() for _ in requests]
    read_limit = response_limit()

    def spawn() -> None:
        for (request, then), future in zip(requests, futures, strict=True):
            task = asyncio.ensure_future(_call(request, then, future, read_limit))
            _tasks.add(task)  # the loop keeps only a weak reference to its tasks
            task.add_done_callback(_tasks.discard)

    _running_loop().call_soon_threadsafe(spawn)
    return futures


async def _call(
    request: OutboundRequest, then: Callable[[TransportResult | Exception], Any], future: Future, read_limit: int
) -> None:
    try:
        sent: TransportResult | Exception = await send(request, read_limit)
    except Exception as exc:  # noqa: BLE001  (the callback says what it means for the call)
        sent = exc
    try:
        result = then(sent)
    except Exception as exc:  # noqa: BLE001  (handed to whoever waits on the future)
        future.set_exception(exc)
    else:
        future.set_result(result)


def _raised(sent: TransportResult | Exception) -> TransportResult:
    if isinstance(sent, Exception):
        raise sent
    return sent


def send_now(request: OutboundRequest) -> TransportResult:
    """One call on the loop, waited for from this thread (the tests' way in)."""
    [future] = start([(request, _raised)])
    return future.result()


# Sending ----------------------------------------------------------------------------------


async def _read_body(content: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while size <= limit:  # one byte past the limit tells a body of exactly `limit` bytes from a longer one
        chunk = await content.read(min(READ_CHUNK_BYTES, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:limit], size > limit


async def send(request: OutboundRequest, read_limit: int | None = None) -> TransportResult:
    """transport.send on the loop. A client certificate is transport.send's alone (the runtime never
    sends one here): its pool is the action's own. `read_limit` is CONDUIT_MAX_RESPONSE_BYTES, read by
    start() once for its calls: the settings object costs a lookup each time, here on the loop's thread."""
    if request.client_certificate is not None:
        raise ValueError("A call with a client certificate goes through transport.send.")
    limit = response_limit() if read_limit is None else read_limit
    started = time.perf_counter()
    try:
        async with asyncio.timeout(request.timeout_s):
            async with _client().request(
                request.method.upper(), URL(request.url, encoded=True), data=request.body,
                headers=request_headers(request), allow_redirects=False, skip_auto_headers=_NOT_ADDED,
            ) as response:  # fmt: skip
                body, truncated = await _read_body(response.content, limit)
                if truncated:
                    response.close()  # after a cut, never reuse a half-read connection
                # The raw names, as sent: aiohttp's own spell known names its way (X-Request-ID).
                raw = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in response.raw_headers]
                status, headers = response.status, merge_headers(raw)
    except (aiohttp.ClientError, OSError, ValueError) as exc:  # TimeoutError is an OSError
        host = urlsplit(request.url).hostname or request.url
        outcome, sentence = _describe_failure(exc, host, request.timeout_s)
        return TransportResult(
            outcome=outcome, status_code=None, headers={}, body=b"", truncated=False,
            latency_ms=int((time.perf_counter() - started) * 1000), error=sentence,
        )  # fmt: skip
    return TransportResult(
        outcome="succeeded" if 200 <= status < 300 else f"http_{status}", status_code=status, headers=headers,
        body=body, truncated=truncated, latency_ms=int((time.perf_counter() - started) * 1000), error="",
    )  # fmt: skip


def _describe_failure(exc: BaseException, host: str, timeout_s: float) -> tuple[str, str]:
    """The outcome and the sentence for a call that got no HTTP answer, as transport.send words them."""
    causes = causes_of(exc)
    if refusal := next((c for c in causes if isinstance(c, DestinationRefused)), None):
        return "refused", str(refusal)
    if isinstance(exc, aiohttp.ClientConnectorDNSError) or any(isinstance(c, socket.gaierror) for c in causes):
        return "error", f"Could not resolve host {host}."
    if isinstance(exc, TimeoutError):
        return "timedout", f"No answer within {float(timeout_s)} s."
    if isinstance(exc, aiohttp.ClientSSLError) or any(isinstance(c, ssl.SSLError) for c in causes):
        return "error", f"TLS error talking to {host}: {tls_reason(causes)}."
    if isinstance(exc, aiohttp.ClientConnectorError):
        failed = _CONNECT_FAILED.search(str(exc.os_error))  # asyncio names the address it tried
        ip, port = (failed[1], failed[2]) if failed else (host, exc.port)
        peer = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "error", f"Connection refused by {peer}."
        return "error", f"Could not connect to {peer}: {exc.os_error.strerror or type(exc.os_error).__name__}."
    if isinstance(exc, aiohttp.NonHttpUrlClientError):
        return "error", "The URL must start with http:// or https://."
    if isinstance(exc, aiohttp.InvalidURL):
        return "error", "The URL is not valid."
    if isinstance(exc, ValueError):
        return "error", "A header name or value is not valid."
    return "error", f"The connection to {host} broke before a full answer came back."
