"""Outbound HTTP client mechanisms compared: calls/s, CPU and memory with N calls in flight.

One Python process per measurement POSTs to a loopback stand-in provider (raw asyncio, keep-alive,
SO_REUSEPORT, several processes) that answers after the delay its path names (`POST /100` waits
100 ms, with loop.call_later), using:

  threads  a ThreadPoolExecutor of N threads over one shared urllib3 PoolManager (maxsize=N)
  aiohttp  asyncio + aiohttp, one ClientSession and a semaphore of N (if aiohttp is importable)
  gevent   N greenlets over urllib3 in a monkey-patched process (if gevent is importable)

Each measurement is a fresh child process: one warm-up round of N calls (connections and threads
made), then the timed calls. Reported: calls/s, the client's CPU ms per call (getrusage over the
timed calls) and its VmRSS growth from before the pool is made to the end (pool still alive).

    .venv/bin/python bench/clients.py [--latency-ms 0 100] [--in-flight 64 256] [-n 3000] [--servers 2]
"""

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import urllib3

BODY = json.dumps({"event": "order.created", "id": 12345, "lines": [{"sku": "A-1", "quantity": 2}] * 4}).encode()
HEADERS = {"Content-Type": "application/json"}
RESPONSE = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
GEVENT_BOOT = (
    "import runpy, sys; from gevent import monkey; monkey.patch_all(); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)
MECHANISMS = ("threads", "aiohttp", "gevent")


class Delayed(asyncio.Protocol):
    """The stand-in provider: HTTP/1.1 keep-alive, answers each request after the ms its path names."""

    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""

    def data_received(self, data):
        self.buffer += data
        while (head_end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:head_end].lower()
            marker = head.find(b"content-length:")
            total = head_end + 4 + (int(head[marker + 15 :].split(b"\r\n", 1)[0]) if marker >= 0 else 0)
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            delay_ms = int(head.split(b" ", 2)[1].lstrip(b"/") or b"0")
            if delay_ms:
                asyncio.get_running_loop().call_later(delay_ms / 1000, self.answer)
            else:
                self.answer()

    def answer(self):
        if not self.transport.is_closing():
            self.transport.write(RESPONSE)


def start_servers(processes: int) -> tuple[int, list[int]]:
    """Fork the stand-in provider's processes, each with its own listening SO_REUSEPORT socket."""
    port, pids = 0, []
    for _ in range(processes):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(4096)  # connections wait in the backlog until the loop below accepts them
        port = sock.getsockname()[1]
        if (pid := os.fork()) == 0:
            try:
                loop = asyncio.new_event_loop()
                loop.run_until_complete(loop.run_until_complete(loop.create_server(Delayed, sock=sock)).serve_forever())
            finally:
                os._exit(0)
        pids.append(pid)
        sock.close()
    return port, pids


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of the process
    return usage.ru_utime + usage.ru_stime


def urllib3_caller(url: str, in_flight: int, failures: list):
    pool = urllib3.PoolManager(maxsize=in_flight, retries=False)

    def call():
        try:
            response = pool.request("POST", url, body=BODY, headers=HEADERS, preload_content=False, redirect=False)
            response.read()
            response.release_conn()
            if response.status != 200:
                failures.append(f"HTTP {response.status}")
        except Exception as exc:
            failures.append(repr(exc))

    return call


def child(mechanism: str, url: str, in_flight: int, calls: int) -> dict:
    """One measurement; every module is imported before the first RSS reading."""
    failures: list[str] = []
    if mechanism == "threads":
        rss0 = rss_kb()
        call, executor = urllib3_caller(url, in_flight, failures), ThreadPoolExecutor(in_flight)
        slots = threading.BoundedSemaphore(in_flight)

        def batch(count):
            for _ in range(count):
                slots.acquire()
                executor.submit(call).add_done_callback(lambda _: slots.release())
            for _ in range(in_flight):  # the last ones done
                slots.acquire()
            for _ in range(in_flight):
                slots.release()

    elif mechanism == "gevent":
        import gevent.pool

        rss0 = rss_kb()
        call, group = urllib3_caller(url, in_flight, failures), gevent.pool.Pool(in_flight)

        def batch(count):
            for _ in range(count):
                group.spawn(call)  # blocks while N are in flight
            group.join()

    else:
        import aiohttp

        rss0, loop = rss_kb(), asyncio.new_event_loop()

        async def make_session():
            return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight))

        session = loop.run_until_complete(make_session())

        async def acall(slots):
            try:
                async with session.post(url, data=BODY, headers=HEADERS, allow_redirects=False) as response:
                    await response.read()
                    if response.status != 200:
                        failures.append(f"HTTP {response.status}")
            except Exception as exc:
                failures.append(repr(exc))
            finally:
                slots.release()

        async def abatch(count):
            slots, tasks = asyncio.Semaphore(in_flight), set()
            for _ in range(count):
                await slots.acquire()
                tasks.add(task := asyncio.create_task(acall(slots)))  # a reference while it runs
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)

        def batch(count):
            loop.run_until_complete(abatch(count))

    batch(in_flight)  # warm-up: the connections (and threads) are made
    warm_failures, cpu0, start = len(failures), cpu_s(), time.perf_counter()
    batch(calls)
    seconds, cpu = time.perf_counter() - start, cpu_s() - cpu0
    errors, first = len(failures) - warm_failures, failures[0] if failures else ""
    return {"seconds": seconds, "cpu": cpu, "rss_kb": rss_kb() - rss0, "errors": errors, "first": first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=int, nargs="+", default=[0, 100])
    parser.add_argument("--in-flight", type=int, nargs="+", default=[64, 256])
    parser.add_argument("-n", type=int, default=3000, help="timed calls per measurement (fewer at long latencies)")
    parser.add_argument("--servers", type=int, default=2, help="stand-in provider processes")
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    available = [m for m in MECHANISMS if m == "threads" or importlib.util.find_spec(m)]
    for missing in (m for m in MECHANISMS if m not in available):
        print(f"{missing} not installed")
    port, pids = start_servers(args.servers)
    rates = {}
    print(f"{'latency':>7} {'N':>4} {'mechanism':<9} {'calls':>5} {'calls/s':>8} {'ideal/s':>8} {'vs (a)':>6} "
          f"{'CPU ms/call':>11} {'RSS MB':>7} {'KB/in-flight':>12} {'errors':>6}")  # fmt: skip
    try:
        for latency in args.latency_ms:
            for n in args.in_flight:
                calls = min(args.n, max(4 * n, 6000 * n // latency)) if latency else args.n  # ~6 s at most
                for mechanism in available:
                    argv = [__file__, "child", mechanism, f"http://127.0.0.1:{port}/{latency}", str(n), str(calls)]
                    boot = ["-c", GEVENT_BOOT] if mechanism == "gevent" else []
                    done = subprocess.run([sys.executable, *boot, *argv], capture_output=True, text=True, timeout=600)
                    if done.returncode:
                        print(f"{mechanism} failed:\n{done.stderr[-2000:]}")
                        continue
                    r = json.loads(done.stdout.splitlines()[-1])
                    rate = rates[latency, n, mechanism] = calls / r["seconds"]
                    ideal = f"{n * 1000 / latency:8.0f}" if latency else f"{'-':>8}"
                    versus = rate / rates.get((latency, n, "threads"), float("nan"))
                    print(f"{latency:>7} {n:>4} {mechanism:<9} {calls:>5} {rate:8.0f} {ideal} {versus:6.2f} "
                          f"{1000 * r['cpu'] / calls:11.3f} {r['rss_kb'] / 1024:7.1f} {r['rss_kb'] / n:12.1f} "
                          f"{r['errors']:>6} {r['first'][:60]}", flush=True)  # fmt: skip
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
    for latency in args.latency_ms:  # calls/s of each mechanism against threads (a)
        base = {n: rates.get((latency, n, "threads"), float("nan")) for n in args.in_flight}
        ratios = [f"{m} N={n}: {rates.get((latency, n, m), 0) / base[n]:.2f}" for m in available[1:] for n in base]
        print(f"{latency:>5} ms, calls/s against threads (a): " + (", ".join(ratios) or "-"))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        print(json.dumps(child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))))
    else:
        main()
