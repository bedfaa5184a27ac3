"""Small receivers on loopback for the demo (`make run`): an HTTP one stands in for an SMS provider,
an SMTP one for the mail server. Each prints what it gets; the HTTP one answers 200 with a message id."""

import email
import email.policy
import itertools
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from aiosmtpd.controller import Controller

_ids = itertools.count(1)


def make_server(host: str, port: int, out: TextIO = sys.stdout) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
            key = self.headers.get("Idempotency-Key", "-")
            out.write(f"demo receiver: {self.command} {self.path} Idempotency-Key={key} {body}\n")
            out.flush()
            answer = json.dumps({"id": f"msg-{next(_ids)}", "status": "queued"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _answer  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (the line above says it)
            pass

    return ThreadingHTTPServer((host, port), Handler)


class _PrintingHandler:
    """aiosmtpd handler: prints each email's envelope, subject and plain-text part."""

    def __init__(self, out: TextIO):
        self.out = out

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802  (aiosmtpd's name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        self.out.write(
            f"demo SMTP: from {envelope.mail_from} to {', '.join(envelope.rcpt_tos)} "
            f"subject {message['Subject']!r}\n{text.get_content() if text else ''}\n"
        )
        self.out.flush()
        return "250 OK: queued"


def make_smtp_server(host: str, port: int, out: TextIO = sys.stdout) -> Controller:
    """An SMTP server on loopback; `start()` runs it in a thread of its own."""
    return Controller(_PrintingHandler(out), hostname=host, port=port)
