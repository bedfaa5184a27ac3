"""The HTTP call to a third-party service: the one place where Conduit reaches outside.

Outbound safety (SPEC section 2) is checked on the resolved IP at connection time, inside the
urllib3 connection itself, so a name that resolves to a public address when the action is saved
and to 127.0.0.1 when it is called (DNS rebinding) is still refused. requests-hardened does the
same kind of filtering but only offers an on/off switch for loopback, not the CIDR allow list of
CONDUIT_ALLOWED_PRIVATE_NETWORKS, hence this module. Calls go through a urllib3 pool manager, which
never reads proxy settings from the environment: a proxy would make the connection to its own
address and bypass the check.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from urllib3 import BaseHTTPResponse, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    LocationValueError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
    URLSchemeUnknown,
)
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util.connection import allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT, Timeout

from actions.delivery.destinations import ConnectFailed, DestinationRefused, connect_allowed

DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
READ_CHUNK_BYTES = 64 * 1024


@dataclass
class OutboundRequest:
    method: str  # "POST", "GET", ...
    url: str  # absolute, already rendered and percent-encoded (query included)
    headers: list[tuple[str, str]]
    body: bytes | None
    timeout_s: float  # total budget for connect + read
    client_certificate: tuple[str, str] | None = None  # (PEM certificate, PEM private key)


@dataclass
class TransportResult:
    outcome: str  # "succeeded" (2xx) | "http_<code>" | "timedout" | "refused" | "error"
    status_code: int | None
    headers: dict[str, str]
    body: bytes  # at most CONDUIT_MAX_RESPONSE_BYTES
    truncated: bool
    latency_ms: int
    error: str  # "" on an HTTP answer; otherwise one plain sentence for a person


class _ConnectFailed(NewConnectionError):
    """A failed connect whose sentence names the IP and port actually tried."""

    def __init__(self, conn: Any, sentence: str) -> None:
        super().__init__(conn, sentence)
        self.sentence = sentence


# Outbound safety ---------------------------------------------------------------------------


class _GuardedConnectionMixin:
    """Resolve, check every candidate IP, then connect to an allowed one.

    Only the socket's peer changes: `self.host` keeps the name, so the Host header, TLS SNI and
    certificate verification still use it.
    """

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        host = conn._dns_host.strip("[]")
        timeout = None if conn.timeout is _DEFAULT_TIMEOUT else conn.timeout
        try:
            return connect_allowed(
                host, conn.port, timeout=timeout, family=allowed_gai_family(), options=conn.socket_options,
                source_address=conn.source_address,
            )  # fmt: skip
        except socket.gaierror as exc:
            raise NameResolutionError(conn.host, conn, exc) from exc
        except ConnectFailed as failed:
            last_error, last_peer = failed.error, failed.peer
        if isinstance(last_error, TimeoutError):
            raise ConnectTimeoutError(conn, f"Connection to {last_peer} timed out.")
        if isinstance(last_error, ConnectionRefusedError):
            raise _ConnectFailed(conn, f"Connection refused by {last_peer}.")
        reason = last_error.strerror or type(last_error).__name__
        raise _ConnectFailed(conn, f"Could not connect to {last_peer}: {reason}.")


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


def _guarded_pool_manager(**connection_kwargs: Any) -> PoolManager:
    # As many kept-alive connections per host as calls a worker keeps in flight: with fewer, the
    # calls past the size open a connection each and urllib3 throws it away after (no keep-alive).
    maxsize = max(int(getattr(settings, "CONDUIT_MAX_IN_FLIGHT", 10)), 10)
    manager = PoolManager(num_pools=100, maxsize=maxsize, retries=False, **connection_kwargs)
    manager.pool_classes_by_scheme = {"http": _GuardedHTTPConnectionPool, "https": _GuardedHTTPSConnectionPool}
    return manager


# The pool manager -----------------------------------------------------------------------------
# urllib3 directly rather than requests: a third of the client's cost per call (MEASURED.md).
# A pool manager never reads proxy settings from the environment, so nothing bypasses the check.

_pool: PoolManager | None = None
_pool_pid: int | None = None
_pool_lock = threading.Lock()


def _get_pool() -> PoolManager:
    """One pool manager (one keep-alive pool per host) per process; a forked child makes its own."""
    global _pool, _pool_pid
    pid = os.getpid()
    if _pool is not None and _pool_pid == pid:
        return _pool
    with _pool_lock:
        if _pool is None or _pool_pid != pid:
            _pool, _pool_pid = _guarded_pool_manager(), pid
    return _pool


# Sending -----------------------------------------------------------------------------------

# What a call to a third party may raise: all of it becomes an outcome and a sentence.
_NETWORK_FAILURES = (DestinationRefused, Urllib3Error, OSError, http.client.HTTPException)


def merge_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    # A repeated header is joined with ", " (RFC 9110) rather than silently dropped.
    merged: dict[str, str] = {}
    spelling: dict[str, str] = {}
    for name, value in headers:
        key = spelling.setdefault(name.lower(), name)
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


def causes_of(exc: BaseException) -> list[BaseException]:
    """The exception and everything below it, through requests' and urllib3's wrappers."""
    seen: list[BaseException] = []
    pending: list[Any] = [exc]
    while pending:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        pending.extend(current.args)
        pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
    return seen


def tls_reason(causes: list[BaseException]) -> str:
    for cause in causes:
        # getattr: aiohttp's wrappers are SSLErrors whose `reason` is a property that raises.
        if isinstance(cause, ssl.SSLCertVerificationError) and getattr(cause, "verify_message", None):
            return cause.verify_message
        if isinstance(cause, ssl.SSLError) and (reason := getattr(cause, "reason", None)):
            return reason.replace("_", " ").lower()
    return "the secure connection could not be set up"


def _describe_failure(exc: BaseException, host: str, timeout_s: float) -> tuple[str, str]:
    """The outcome and the sentence for a call that got no HTTP answer."""
    causes = causes_of(exc)
    timed_out = ("timedout", f"No answer within {float(timeout_s)} s.")
    if refusal := next((c for c in causes if isinstance(c, DestinationRefused)), None):
        return "refused", str(refusal)
    if any(isinstance(c, NameResolutionError | socket.gaierror) for c in causes):
        return "error", f"Could not resolve host {host}."
    if isinstance(exc, ReadTimeoutError | TimeoutError):
        return timed_out
    if any(isinstance(c, Urllib3SSLError | ssl.SSLError) for c in causes):
        return "error", f"TLS error talking to {host}: {tls_reason(causes)}."
    if connect_failed := next((c for c in causes if isinstance(c, _ConnectFailed)), None):
        return "error", connect_failed.sentence
    if any(
        isinstance(c, ConnectTimeoutError | ReadTimeoutError | TimeoutError) and not isinstance(c, NewConnectionError)
        for c in causes
    ):
        return timed_out
    if isinstance(exc, LocationParseError | LocationValueError):
        return "error", "The URL is not valid."
    if isinstance(exc, URLSchemeUnknown):
        return "error", "The URL must start with http:// or https://."
    if isinstance(exc, ValueError):
        return "error", "A header name or value is not valid."
    return "error", f"The connection to {host} broke before a full answer came back."


def _keep_within_budget(response: BaseHTTPResponse, deadline: float) -> None:
    """Shorten the socket's timeout so connect + read stay within the call's total budget."""
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        raise TimeoutError("The time budget is spent.")
    sock = getattr(getattr(response, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(remaining)


def _read_body(response: BaseHTTPResponse, limit: int, deadline: float) -> tuple[bytes, bool]:
    # One byte past the limit tells a body of exactly `limit` bytes from a longer one.
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        _keep_within_budget(response, deadline)
        chunk = response.read(min(READ_CHUNK_BYTES, limit + 1 - size), decode_content=True)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:limit], size > limit


def _write_private(directory: str, name: str, content: str) -> str:
    path = os.path.join(directory, name)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
    return path


@contextlib.contextmanager
def _client_certificate_files(
    client_certificate: tuple[str, str] | None,
) -> Iterator[tuple[str, str] | None]:
    """requests takes file paths: the key lives on disk, private, only for the call."""
    if client_certificate is None:
        yield None
        return
    certificate_pem, key_pem = client_certificate
    # mkdtemp makes the directory 0700; the files are 0600 and go with it.
    with tempfile.TemporaryDirectory(prefix="conduit-mtls-") as directory:
        yield (
            _write_private(directory, "certificate.pem", certificate_pem),
            _write_private(directory, "key.pem", key_pem),
        )


def response_limit() -> int:
    return int(getattr(settings, "CONDUIT_MAX_RESPONSE_BYTES", DEFAULT_MAX_RESPONSE_BYTES))


def request_headers(request: OutboundRequest) -> dict[str, str]:
    headers = merge_headers(request.headers)
    if not any(name.lower() == "user-agent" for name in headers):
        headers["User-Agent"] = "Conduit"
    return headers


def send(request: OutboundRequest) -> TransportResult:
    """Make one call and describe what came back; network problems are outcomes, not exceptions.

    Redirects come back as they are (never followed) and the body is cut at
    CONDUIT_MAX_RESPONSE_BYTES, so a third party can neither lead Conduit elsewhere nor flood it.
    """
    limit, host = response_limit(), urlsplit(request.url).hostname or request.url
    started = time.perf_counter()
    deadline = started + request.timeout_s
    response: BaseHTTPResponse | None = None
    complete = False
    headers = request_headers(request)
    try:
        with _client_certificate_files(request.client_certificate) as cert:
            # A client certificate is per action: its own short-lived pool, never shared.
            pool = _get_pool() if cert is None else _guarded_pool_manager(cert_file=cert[0], key_file=cert[1])
            response = pool.urlopen(
                request.method.upper(),
                request.url,
                body=request.body,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                # urllib3 gives the read what is left of the total after the connect.
                timeout=Timeout(total=request.timeout_s),
            )
            body, truncated = _read_body(response, limit, deadline)
            complete = not truncated
            latency_ms = int((time.perf_counter() - started) * 1000)
    except _NETWORK_FAILURES as exc:
        outcome, sentence = _describe_failure(exc, host, request.timeout_s)
        return TransportResult(
            outcome=outcome,
            status_code=None,
            headers={},
            body=b"",
            truncated=False,
            latency_ms=int((time.perf_counter() - started) * 1000),
            error=sentence,
        )
    finally:
        if response is not None:
            if not complete:
                response.close()  # after a cut or a failure, never reuse a half-read connection
            response.release_conn()

    status = response.status
    return TransportResult(
        outcome="succeeded" if 200 <= status < 300 else f"http_{status}",
        status_code=status,
        headers=merge_headers(list(response.headers.items())),
        body=body,
        truncated=truncated,
        latency_ms=latency_ms,
        error="",
    )
