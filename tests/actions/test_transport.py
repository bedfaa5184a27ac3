"""The outbound HTTP call, against real servers on loopback (SPEC section 2, outbound safety)."""

import glob
import os
import re
import socket
import stat
import tempfile
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from actions.delivery import loop_transport, transport
from actions.delivery.destinations import DestinationRefused, check_destination_ip
from actions.delivery.transport import OutboundRequest

ONE_MIB = 1024 * 1024
ALLOW_ADVICE = "List its network in CONDUIT_ALLOWED_PRIVATE_NETWORKS to allow it."


@pytest.fixture
def loopback_allowed(settings):
    settings.CONDUIT_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8", "::1/128"]


@pytest.fixture(scope="module")
def ipv6_httpserver():
    server = HTTPServer(host="::1")
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def on_loop(request: OutboundRequest) -> transport.TransportResult:
    """A call as the runtime makes it on the event loop: a legacy IPv4 form goes through threads."""
    if not loop_transport.handles(request.url):
        return transport.send(request)
    return loop_transport.send_now(request)


@pytest.fixture(params=["threads", "event loop"])
def send(request):
    """Each guarantee holds for both transports: threads over urllib3, and the event loop (aiohttp)."""
    return transport.send if request.param == "threads" else on_loop


def call(url: str, method: str = "GET", **kwargs) -> OutboundRequest:
    kwargs.setdefault("headers", [])
    kwargs.setdefault("body", None)
    kwargs.setdefault("timeout_s", 5.0)
    return OutboundRequest(method=method, url=url, **kwargs)


def test_successful_call_reports_status_headers_body_and_latency(httpserver, loopback_allowed, send):
    httpserver.expect_request("/v2/messages", method="POST").respond_with_data(
        b'{"id": "m-1"}', status=201, headers={"X-Request-Id": "r-42"}, content_type="text/json"
    )

    result = send(
        call(
            httpserver.url_for("/v2/messages?lang=fr"),
            method="POST",
            headers=[("Content-Type", "application/json"), ("X-Signature", "v1,abc")],
            body=b'{"amount": 12.5}',
        )
    )

    assert result.outcome == "succeeded"
    assert result.status_code == 201
    assert result.headers["X-Request-Id"] == "r-42"
    assert result.body == b'{"id": "m-1"}'
    assert result.truncated is False
    assert result.error == ""
    assert 0 <= result.latency_ms < 5000
    [(received, _response)] = httpserver.log
    assert received.method == "POST"
    assert received.path == "/v2/messages"
    assert received.args["lang"] == "fr"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["X-Signature"] == "v1,abc"
    assert received.get_data() == b'{"amount": 12.5}'


def test_client_error_answer_is_reported_with_its_status(httpserver, loopback_allowed, send):
    httpserver.expect_request("/").respond_with_data(b"no such user", status=404)

    result = send(call(httpserver.url_for("/")))

    assert (result.outcome, result.status_code, result.body) == ("http_404", 404, b"no such user")
    assert result.error == ""


REFUSED_DESTINATIONS = [
    pytest.param("http://127.0.0.1:{port}/", r"127\.0\.0\.1 is a loopback address", id="loopback"),
    pytest.param("http://localhost:{port}/", r"(127\.0\.0\.1|::1) is a loopback address", id="localhost"),
    pytest.param("http://[::1]:{port}/", r"::1 is a loopback address", id="ipv6-loopback"),
    pytest.param("http://0.0.0.0:{port}/", r"0\.0\.0\.0 is an unspecified address", id="unspecified"),
    pytest.param(
        "http://169.254.169.254/",
        r"169\.254\.169\.254 is a link-local address",
        id="cloud-metadata",
    ),
    pytest.param("http://10.0.0.1/", r"10\.0\.0\.1 is a private address", id="private"),
    pytest.param("http://2130706433:{port}/", r"127\.0\.0\.1 is a loopback address", id="integer-host"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_DESTINATIONS)
def test_call_to_internal_address_is_refused_and_never_sent(httpserver, url, reason, send):
    httpserver.expect_request("/").respond_with_data(b"internal secrets")

    result = send(call(url.format(port=httpserver.port), timeout_s=2.0))

    assert result.outcome == "refused"
    assert result.status_code is None
    assert re.fullmatch(rf"Refused: {reason}\. {re.escape(ALLOW_ADVICE)}", result.error)
    assert result.body == b""
    assert httpserver.log == []


@pytest.mark.parametrize(
    ("url", "network"),
    [
        ("http://127.0.0.1:{port}/", "127.0.0.0/8"),
        ("http://localhost:{port}/", "127.0.0.0/8"),
        ("http://2130706433:{port}/", "127.0.0.0/8"),
        ("http://0.0.0.0:{port}/", "0.0.0.0/32"),
    ],
)
def test_loopback_call_reaches_the_server_once_its_network_is_listed(httpserver, settings, url, network, send):
    settings.CONDUIT_ALLOWED_PRIVATE_NETWORKS = [network]
    httpserver.expect_request("/").respond_with_data(b"hello")

    result = send(call(url.format(port=httpserver.port)))

    assert (result.outcome, result.body) == ("succeeded", b"hello")
    assert len(httpserver.log) == 1


def test_ipv6_loopback_call_reaches_the_server_once_its_network_is_listed(ipv6_httpserver, settings, send):
    settings.CONDUIT_ALLOWED_PRIVATE_NETWORKS = ["::1/128"]
    ipv6_httpserver.clear()  # the server lives for the module: each transport counts its own call
    ipv6_httpserver.expect_request("/").respond_with_data(b"hello over IPv6")

    result = send(call(f"http://[::1]:{ipv6_httpserver.port}/"))

    assert (result.outcome, result.body) == ("succeeded", b"hello over IPv6")
    assert len(ipv6_httpserver.log) == 1


@pytest.mark.parametrize(
    ("url", "network"),
    [("http://10.0.0.1/", "10.0.0.0/8"), ("http://169.254.169.254/", "169.254.0.0/16")],
)
def test_private_address_is_tried_once_its_network_is_listed(settings, url, network, send):
    settings.CONDUIT_ALLOWED_PRIVATE_NETWORKS = [network]

    result = send(call(url, timeout_s=0.5))

    # Nothing listens there, so the call times out or fails, but it is no longer refused.
    assert result.outcome != "refused"
    assert "Refused" not in result.error


def test_listing_another_network_does_not_allow_loopback(httpserver, settings, send):
    settings.CONDUIT_ALLOWED_PRIVATE_NETWORKS = ["10.0.0.0/8"]

    result = send(call(httpserver.url_for("/")))

    assert result.outcome == "refused"
    assert httpserver.log == []


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:10.1.2.3", "a private address"),
        ("2002:7f00:1::", "a loopback address"),  # 6to4 form of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "a link-local address"),  # NAT64 form of 169.254.169.254
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("fc00::1", "a private address"),
        ("fe80::1", "a link-local address"),
        ("240.0.0.1", "a reserved address"),
        ("192.168.1.1", "a private address"),
    ],
)
def test_disguised_and_special_addresses_are_refused(ip, reason):
    with pytest.raises(DestinationRefused) as refused:
        check_destination_ip(ip)

    assert str(refused.value) == f"Refused: {ip} is {reason}. {ALLOW_ADVICE}"


@pytest.mark.parametrize("ip", ["93.184.215.14", "2606:4700:4700::1111", "64:ff9b::808:808"])
def test_public_addresses_are_allowed(ip):
    check_destination_ip(ip)


def test_ipv4_mapped_loopback_is_allowed_with_the_ipv4_network(settings):
    settings.CONDUIT_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]

    check_destination_ip("::ffff:127.0.0.1")


def test_redirect_is_returned_not_followed(httpserver, loopback_allowed, send):
    target = httpserver.url_for("/internal")
    httpserver.expect_request("/start").respond_with_data(b"", status=302, headers={"Location": target})
    httpserver.expect_request("/internal").respond_with_data(b"should never be read")

    result = send(call(httpserver.url_for("/start")))

    assert (result.outcome, result.status_code) == ("http_302", 302)
    assert result.headers["Location"] == target
    assert [request.path for request, _response in httpserver.log] == ["/start"]


def test_large_response_body_is_cut_at_one_mebibyte(httpserver, loopback_allowed, send):
    httpserver.expect_request("/export").respond_with_data(b"x" * (5 * ONE_MIB))

    result = send(call(httpserver.url_for("/export")))

    assert result.outcome == "succeeded"
    assert len(result.body) == ONE_MIB
    assert result.truncated is True


def test_response_body_of_exactly_the_limit_is_not_marked_truncated(httpserver, loopback_allowed, send):
    httpserver.expect_request("/").respond_with_data(b"y" * ONE_MIB)

    result = send(call(httpserver.url_for("/")))

    assert (len(result.body), result.truncated) == (ONE_MIB, False)


def test_response_body_limit_follows_the_setting(httpserver, loopback_allowed, settings, send):
    settings.CONDUIT_MAX_RESPONSE_BYTES = 10
    httpserver.expect_request("/").respond_with_data(b"0123456789abcdef")

    result = send(call(httpserver.url_for("/")))

    assert (result.body, result.truncated) == (b"0123456789", True)


def test_slow_server_times_out_within_the_budget(httpserver, loopback_allowed, send):
    def slow(request: Request) -> Response:
        time.sleep(1.0)
        return Response("too late")

    httpserver.expect_request("/slow").respond_with_handler(slow)

    result = send(call(httpserver.url_for("/slow"), timeout_s=0.3))

    assert result.outcome == "timedout"
    assert result.status_code is None
    assert result.error == "No answer within 0.3 s."
    assert result.latency_ms < 900


def test_unknown_host_reads_as_a_sentence(send):
    result = send(call("http://does-not-exist.invalid/"))

    assert result.outcome == "error"
    assert result.error == "Could not resolve host does-not-exist.invalid."


def test_closed_port_reads_as_connection_refused(loopback_allowed, send):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The port was free a moment ago and nothing listens on it now.

    result = send(call(f"http://127.0.0.1:{port}/"))

    assert result.outcome == "error"
    assert result.error == f"Connection refused by 127.0.0.1:{port}."


def test_tls_failure_reads_as_a_sentence(httpserver, loopback_allowed, send):
    result = send(call(f"https://127.0.0.1:{httpserver.port}/"))

    assert result.outcome == "error"
    assert result.error.startswith("TLS error talking to 127.0.0.1: ")
    assert result.error.endswith(".")
    assert "\n" not in result.error


def test_client_certificate_is_on_disk_privately_and_only_during_the_call(httpserver, loopback_allowed):
    seen: dict[str, tuple[int, str]] = {}
    directory_modes: set[int] = set()

    def inspect_private_files(request: Request) -> Response:
        for path in glob.glob(os.path.join(tempfile.gettempdir(), "conduit-mtls-*", "*.pem")):
            with open(path) as handle:
                seen[path] = (stat.S_IMODE(os.stat(path).st_mode), handle.read())
            directory_modes.add(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode))
        return Response("ok")

    httpserver.expect_request("/").respond_with_handler(inspect_private_files)

    result = transport.send(call(httpserver.url_for("/"), client_certificate=("CERTIFICATE PEM", "KEY PEM")))

    assert result.outcome == "succeeded"
    assert sorted(content for _mode, content in seen.values()) == ["CERTIFICATE PEM", "KEY PEM"]
    assert {mode for mode, _content in seen.values()} == {0o600}
    assert directory_modes == {0o700}
    assert not any(os.path.exists(os.path.dirname(path)) for path in seen)


@pytest.mark.parametrize(
    ("url", "on_the_loop"),
    [
        ("http://2130706433/", False),
        ("http://127.1/", False),
        ("http://0x7f.0.0.1/", False),
        ("http://017700000001/", False),
        ("http://127.0.0.1:8080/", True),
        ("http://[::1]/", True),
        ("https://api.example.com/v1", True),
        ("https://0xdeadbeef.example/", True),
        ("https://cafe.example/", True),
    ],
)
def test_legacy_ipv4_forms_are_left_to_the_threads(url, on_the_loop):
    # aiohttp refuses `2130706433` as a URL, urllib3 calls it as 127.0.0.1: the runtime sends such a
    # call through transport.send, so that both read a URL alike.
    assert loop_transport.handles(url) is on_the_loop


def test_the_loop_keeps_no_cookie_and_adds_no_header(httpserver, loopback_allowed):
    httpserver.expect_request("/login").respond_with_data(b"ok", headers={"Set-Cookie": "session=stolen; Path=/"})
    httpserver.expect_request("/next").respond_with_data(b"ok")

    loop_transport.send_now(call(httpserver.url_for("/login"), method="POST", body=b"raw"))
    loop_transport.send_now(call(httpserver.url_for("/next")))

    first, second = (request for request, _response in httpserver.log)
    assert "Cookie" not in second.headers
    assert "Content-Type" not in first.headers  # aiohttp would say application/octet-stream
    assert first.headers["User-Agent"] == "Conduit"
    assert first.get_data() == b"raw"


def test_the_url_goes_as_rendered(httpserver, loopback_allowed, send):
    # Rendering percent-encodes (signatures and providers read the bytes): no transport may re-quote.
    seen = []
    httpserver.expect_request(re.compile("/.*")).respond_with_handler(
        lambda request: seen.append(request.environ["REQUEST_URI"]) or Response("ok")
    )

    result = send(call(httpserver.url_for("/a%2Fb/c%20d") + "?q=%C3%A9t%C3%A9+x&empty=&s=%2F%3F"))

    assert result.outcome == "succeeded"
    assert seen == ["/a%2Fb/c%20d?q=%C3%A9t%C3%A9+x&empty=&s=%2F%3F"]
