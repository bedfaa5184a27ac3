"""Issue 15: mutual TLS under concurrency. Two actions with their own client certificates call one TLS
server that requires a certificate, many calls open at once in a real worker: each call presents its own
action's certificate, never the other's, and an action without one is refused at the handshake."""

import datetime
import ipaddress
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.actions.test_inflight_worker import acme, ended, enqueue, sms  # noqa: F401  (acme is a fixture)

pytestmark = pytest.mark.worker


def _pem_key(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _certificate(name: str, issuer=None, *, ca: bool = False, ip: str | None = None, client: bool = False):
    """A key and a certificate for `name`, signed by `issuer` ((certificate, key)) or by itself."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), False)
    if client:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
    certificate = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return certificate, key


class TLSProvider:
    """A threaded HTTPS server that requires a client certificate signed by its CA, answers after
    `delay_s`, and records the certificate's common name of each request and the most open at once."""

    def __init__(self, folder: Path, ca, delay_s: float = 0.1):
        server_certificate, server_key = _certificate("127.0.0.1", ca, ip="127.0.0.1")
        (folder / "server.pem").write_bytes(server_certificate.public_bytes(serialization.Encoding.PEM))
        (folder / "server.key").write_text(_pem_key(server_key))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(folder / "server.pem", folder / "server.key")
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(folder / "ca.pem")
        self.lock, self.open, self.most_open = threading.Lock(), 0, 0
        self.seen: list[tuple[str, str]] = []  # (path, the client certificate's common name)
        self.refused = 0  # handshakes that failed
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                self.request = context.wrap_socket(self.request, server_side=True)
                super().setup()

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                subject = dict(pair[0] for pair in self.request.getpeercert()["subject"])
                with provider.lock:
                    provider.open += 1
                    provider.most_open = max(provider.most_open, provider.open)
                    provider.seen.append((self.path, subject["commonName"]))
                time.sleep(delay_s)
                payload = json.dumps({"ok": True}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                with provider.lock:
                    provider.open -= 1

        class Server(ThreadingHTTPServer):
            request_queue_size, daemon_threads = 256, True

            def handle_error(self, request, client_address):
                with provider.lock:
                    provider.refused += 1

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pki(tmp_path, monkeypatch):
    """A CA the workers trust (SSL_CERT_FILE, read by OpenSSL's default verify paths), and its server."""
    ca = _certificate("Conduit test CA", ca=True)
    (tmp_path / "ca.pem").write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    provider = TLSProvider(tmp_path, ca)
    yield ca, provider
    provider.close()


def _client_pem(name: str, ca) -> dict[str, str]:
    certificate, key = _certificate(name, ca, client=True)
    return {"client_certificate": certificate.public_bytes(serialization.Encoding.PEM).decode(),
            "client_key": _pem_key(key)}  # fmt: skip


def test_each_call_presents_its_own_actions_certificate_with_calls_in_flight(workers, acme, pki):  # noqa: F811
    ca, provider = pki
    first = sms(acme, provider.url("/a/{{account}}"), auth={"type": "none"}, **_client_pem("action-a", ca))
    second = sms(acme, provider.url("/b/{{account}}"), auth={"type": "none"}, **_client_pem("action-b", ca))
    without = sms(acme, provider.url("/none/{{account}}"), auth={"type": "none"}, max_retries=0)
    calls = [*enqueue(first, 20), *enqueue(second, 20)]
    refused = enqueue(without, 3)
    workers.start()
    by_id = {i.pk: i for i in ended([*calls, *refused])}
    done = [by_id[i.pk] for i in [*calls, *refused]]
    assert [i.status for i in done[:40]] == ["succeeded"] * 40, {i.error for i in done[:40]}
    assert {(path.split("/")[1], name) for path, name in provider.seen} == {("a", "action-a"), ("b", "action-b")}
    assert len(provider.seen) == 40
    assert provider.most_open > 1  # the calls were open together, each with its own certificate
    for invocation in done[40:]:  # no certificate: the server ends the handshake, nothing is received
        assert invocation.status == "failed" and invocation.outcome == "error", invocation.error
    assert provider.refused >= 3
