"""The soak test's provider: answers 10% 500, 5% too late (past the action's timeout), 2% 429 with
Retry-After, the rest 200; logs every request with its arrival, path, Idempotency-Key, answer and
the `to` field of its body, one line each (at its arrival: the answer may come later). With
LATENCY_MS (MIN-MAX: at random in that range, "0": at once) the 200, 500 and 429 answers come that
long after their request, as a real provider's; the late ones still come SLOW_SECONDS after theirs.

    python bench/soak_receiver.py PORT PROCESSES LOG_PREFIX SLOW_SECONDS [LATENCY_MS or MIN-MAX]
"""

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.receiver import latency_range, serve  # noqa: E402


def answer(status: int, extra: str = "") -> bytes:
    reason = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error"}[status]
    body = b'{"ok":true}' if status == 200 else b'{"ok":false}'
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Provider(asyncio.Protocol):
    log = None
    slow_s = 1.0
    latency_s: tuple[float, float] | None = None  # None: the normal answers at once

    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
        self.answer_at = 0.0  # loop time of this connection's last answer scheduled

    def data_received(self, data):
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            lines = head.split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(headers.get("content-length") or 0)
            total = head_end + 4 + length
            if len(self.buffer) < total:
                return
            body, self.buffer = self.buffer[head_end + 4 : total], self.buffer[total:]
            path = lines[0].split(" ")[1]
            try:
                to = json.loads(body).get("to", "-")
            except ValueError:
                to = "-"
            roll = random.random()  # noqa: S311
            outcome = "200" if roll >= 0.17 else "500" if roll < 0.10 else "slow" if roll < 0.15 else "429"
            line = f"{time.time():.6f} {path} {headers.get('idempotency-key', '-')} {outcome} {to}\n"
            self.log.write(line.encode())
            if outcome == "slow":
                asyncio.get_running_loop().call_later(self.slow_s, self._late, answer(200))
                return  # HTTP/1.1 in order: the client gives up on this connection
            status = int(outcome)
            data = answer(status, "Retry-After: 1\r\n" if status == 429 else "")
            if self.latency_s is None:
                self.transport.write(data)
                continue
            # A client sends one request at a time on a connection; were one to pipeline, its answers
            # still go in order: none before the answer scheduled before it.
            loop = asyncio.get_running_loop()
            delay = random.uniform(*self.latency_s)  # noqa: S311  (a stand-in's latency, not secrets)
            self.answer_at = max(loop.time() + delay, self.answer_at)
            loop.call_at(self.answer_at, self._late, data)

    def _late(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)


async def flush_log() -> None:
    while True:
        await asyncio.sleep(0.2)
        Provider.log.flush()


if __name__ == "__main__":
    port, processes, prefix, slow = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    if len(sys.argv) > 5:
        Provider.latency_s = latency_range(sys.argv[5])
    index = 0
    for number in range(1, processes):
        if os.fork() == 0:
            index = number
            break
    Provider.slow_s = slow
    Provider.log = open(f"{prefix}.{index}", "ab", buffering=1 << 16)  # noqa: SIM115
    serve(port, Provider, flush_log())
