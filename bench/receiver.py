"""A fast HTTP/1.1 receiver for benchmarks: answers every request 200 with a small JSON body.

Raw asyncio, keep-alive, several processes on one port (SO_REUSEPORT), so that the
receiver is never what a benchmark measures. With a log path, each request's arrival time
and body are appended there (one line each), for latency measurements. With a latency, each
answer comes that many milliseconds after its request (MIN-MAX: at random in that range), as a
real provider's does; "never" answers no request at all (a provider that hangs).

    python bench/receiver.py PORT [PROCESSES] [LOG or -] [LATENCY_MS or MIN-MAX or never]
"""

import asyncio
import os
import random
import socket
import sys
import time

RESPONSE = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


LOG = None
LATENCY_S: tuple[float, float] | None = None  # None: at once; (inf, inf): never


class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""

    def data_received(self, data):
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            length = 0
            marker = head.find(b"content-length:")
            if marker >= 0:
                length = int(head[marker + 15 :].split(b"\r\n", 1)[0])
            total = head_end + 4 + length
            if len(self.buffer) < total:
                return
            if LOG is not None:
                LOG.write(f"{time.time():.6f} ".encode() + self.buffer[head_end + 4 : total] + b"\n")
                LOG.flush()
            self.buffer = self.buffer[total:]
            if LATENCY_S is None:
                self.transport.write(RESPONSE)
            elif LATENCY_S[0] != float("inf"):
                delay = random.uniform(*LATENCY_S)  # noqa: S311  (a stand-in's latency, not secrets)
                asyncio.get_running_loop().call_later(delay, self._answer)

    def _answer(self):
        if not self.transport.is_closing():
            self.transport.write(RESPONSE)


def latency_range(text: str) -> tuple[float, float] | None:
    """ "100" -> (0.1, 0.1), "50-300" -> (0.05, 0.3), "never" -> (inf, inf), "0" -> None."""
    if text == "never":
        return (float("inf"), float("inf"))
    low, _, high = text.partition("-")
    bounds = (float(low) / 1000, float(high or low) / 1000)
    return bounds if bounds[1] > 0 else None


def serve(port: int, protocol: type[asyncio.Protocol] = Http, *background) -> None:
    """Serve `protocol` on loopback; several processes may share the port (SO_REUSEPORT)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(protocol, sock=sock))
    for coroutine in background:
        loop.create_task(coroutine)
    loop.run_until_complete(server.serve_forever())


if __name__ == "__main__":
    port, processes = int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1
    for _ in range(processes - 1):
        if os.fork() == 0:
            break
    if len(sys.argv) > 3 and sys.argv[3] != "-":
        LOG = open(sys.argv[3], "ab")  # noqa: SIM115  (open for the life of the process)
    if len(sys.argv) > 4:
        LATENCY_S = latency_range(sys.argv[4])
    serve(port)
