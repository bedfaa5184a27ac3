"""A small HTTP receiver on loopback for the demo (`make run`): it stands in for an SMS provider,
prints each call it gets and answers 200 with a message id."""

import itertools
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TextIO

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
