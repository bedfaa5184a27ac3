"""Many calls at once, as a worker's calls in flight make them (from threads, or all together on the
event loop): every guarantee holds for each call on its own (redirects, the read cap, timeouts,
refused destinations)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from actions.delivery import loop_transport
from actions.delivery.transport import OutboundRequest, send

BIG = b"x" * (2 * 1024 * 1024)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    targets_reached = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/redirect":
            self._answer(302, b"", [("Location", "/target")])
        elif self.path == "/target":
            with Handler.lock:
                Handler.targets_reached += 1
            self._answer(200, b"reached")
        elif self.path == "/big":
            self._answer(200, BIG)
        elif self.path == "/slow":
            time.sleep(2)
            self._answer(200, b"late")
        else:
            self._answer(200, b'{"ok":true}')

    def _answer(self, status, body, headers=()):
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # sixty connections arrive at once
    daemon_threads = True


@pytest.fixture
def server(allow_loopback):
    httpd = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def on_loop(kinds: list[str], requests: list[OutboundRequest]) -> list:
    """All the calls started on the loop in one go, as the runtime starts a batch."""
    futures = loop_transport.start([(request, lambda result: result) for request in requests])
    return list(zip(kinds, (future.result(timeout=10) for future in futures), strict=True))


def from_threads(kinds: list[str], requests: list[OutboundRequest]) -> list:
    with ThreadPoolExecutor(60) as threads:
        return list(zip(kinds, threads.map(send, requests), strict=True))


@pytest.mark.parametrize("make_calls", [from_threads, on_loop], ids=["threads", "event loop"])
def test_sixty_calls_at_once_each_keep_their_own_guarantees(server, make_calls):
    kinds = ["/ok", "/redirect", "/big", "/slow", "refused"] * 12
    Handler.targets_reached = 0
    requests = [
        OutboundRequest(
            method="GET",
            url="http://10.255.255.1/" if kind == "refused" else server + kind,
            headers=[],
            body=None,
            timeout_s=1.0,
        )  # fmt: skip
        for kind in kinds
    ]

    started = time.monotonic()
    results = make_calls(kinds, requests)
    assert time.monotonic() - started < 6  # together: one after the other, twelve 1 s timeouts take 12 s
    for kind, result in results:
        if kind == "/ok":
            assert (result.outcome, result.body) == ("succeeded", b'{"ok":true}')
        elif kind == "/redirect":  # returned as it is, never followed
            assert result.outcome == "http_302" and result.headers["Location"] == "/target"
        elif kind == "/big":  # cut at 1 MiB, call by call
            assert result.truncated and len(result.body) == 1024 * 1024
        elif kind == "/slow":  # each call's own timeout
            assert result.outcome == "timedout" and result.latency_ms < 1900
        else:  # a private address is refused before any connection
            assert result.outcome == "refused" and "10.255.255.1" in result.error
    assert Handler.targets_reached == 0


def test_a_call_the_loop_cannot_make_is_that_calls_failure_and_the_others_are_made(server):
    """What stops one call on the loop reaches that call's callback; the calls started with it go on."""
    made = OutboundRequest(method="GET", url=server + "/ok", headers=[], body=None, timeout_s=1.0)
    # A client certificate is transport.send's alone: the loop refuses the call before anything is sent.
    unmade = OutboundRequest(
        method="GET", url=server + "/ok", headers=[], body=None, timeout_s=1.0, client_certificate=("cert", "key")
    )
    futures = loop_transport.start([(request, lambda sent: sent) for request in (unmade, made, unmade)])
    first, second, third = (future.result(timeout=10) for future in futures)

    assert isinstance(first, ValueError) and isinstance(third, ValueError)
    assert "client certificate" in str(first)
    assert (second.outcome, second.body) == ("succeeded", b'{"ok":true}')
    with pytest.raises(ValueError, match="client certificate"):  # a single call waited for raises it
        loop_transport.send_now(unmade)
