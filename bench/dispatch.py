"""Dispatch benchmark: N invocations through the whole pipeline against a plain client, same run.

    .venv/bin/python bench/dispatch.py                   # embedded default: SQLite + filesystem broker
    .venv/bin/python bench/dispatch.py --secret          # the same, the action's header a secret value
    .venv/bin/python bench/dispatch.py --latency-ms 100  # the provider answers after 100 ms
    .venv/bin/python bench/dispatch.py --mixed           # one host never answers, another is healthy
    eval "$(bash bench/services.sh)" && .venv/bin/python bench/dispatch.py   # PostgreSQL + Redis

Starts a receiver on loopback standing in for the provider, then in the same run:
- at 0 ms, --rounds times in turn: (1) the bare client makes N POSTs from P processes, one
  keep-alive Session each; (2) N invocations are enqueued and P worker processes (Celery, prefork,
  concurrency 1 each, as `make run`'s worker line) send them. Prints the medians and their ratio.
- with --latency-ms: (1) a plain script with as many keep-alive connections as the pipeline keeps
  open to one host (P processes, a thread and a Session per connection); then, --rounds times in
  turn, (2) the pipeline against an instant provider and (3) against the slow one. Prints the
  ratios of (3)'s median to (1) and to (2)'s median: the machine's slow spells hit both.
- with --mixed: 200 calls to a host that never answers (timeout 3 s), then a second later 200
  to a healthy host (100 ms), against the healthy host's 200 alone: how late its calls end.
"""

import argparse
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
KEY = "1m5t0yN0o7Vr2rdJZ7bLX5d4j2uL5q3k6yD0kqjH3mE="
BODY = b'{"to":"+33600000000","text":"hello"}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bare_client(url: str, calls: int) -> None:
    import requests

    session = requests.Session()
    for _ in range(calls):
        response = session.post(url, data=BODY, headers={"Content-Type": "application/json"})
        response.content  # noqa: B018


def threaded_client(url: str, calls: int, connections: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(connections) as threads:
        list(threads.map(lambda share: bare_client(url, share), [calls // connections] * connections))


def bare_rate(url: str, n: int, processes: int, connections: int = 1) -> float:
    """Calls per second of P processes, with `connections` keep-alive connections each."""
    per_process = n // processes // connections * connections
    started = time.perf_counter()
    with multiprocessing.Pool(processes) as pool:
        if connections == 1:
            pool.starmap(bare_client, [(url, per_process)] * processes)
        else:
            pool.starmap(threaded_client, [(url, per_process, connections)] * processes)
    return per_process * processes / (time.perf_counter() - started)


def start_receiver(port: int, latency: str = "0", log: str = "-") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "receiver.py"), str(port), "2", log, latency],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def bench_env(work: Path) -> dict:
    """The environment of a benchmark run (also set in this process): SQLite and the filesystem
    broker unless DATABASE_URL and CELERY_BROKER_URL point elsewhere."""
    env = os.environ.copy()
    env.setdefault("DATABASE_URL", f"sqlite:///{work / 'bench.sqlite3'}")
    env.setdefault("CELERY_BROKER_URL", "filesystem://")
    env.update(
        CELERY_BROKER_FOLDER=str(work / "broker"), FIELD_ENCRYPTION_KEYS=KEY,
        CONDUIT_ALLOWED_PRIVATE_NETWORKS="127.0.0.0/8", DJANGO_SETTINGS_MODULE="config.settings",
        AXES_ENABLED="false", LOG_LEVEL="WARNING",
    )  # fmt: skip
    os.environ.update(env)
    return env


def prepare_database() -> None:
    """Django set up, the schema migrated, and an empty broker queue."""
    import django

    django.setup()
    from django.core.management import call_command

    from config.celery import app

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    # Messages left in a shared broker by an earlier run (countdowns held by workers) slowed
    # a measured run sevenfold: start from an empty queue.
    app.control.purge()


def start_workers(env: dict, work: Path, processes: int) -> list[subprocess.Popen]:
    """P Celery worker processes (prefork, concurrency 1 each), logging into the work folder."""
    workers = []
    for index in range(processes):
        log = open(work / f"worker{index}.log", "w")  # noqa: SIM115
        command = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=1", "--loglevel=WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname", f"bench{index}@%h",
        ]  # fmt: skip
        workers.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    return workers


def stop(workers: list[subprocess.Popen], servers: list[subprocess.Popen], work: Path) -> None:
    """Kill the workers, the servers standing in for providers (and their forked children), drop the work folder."""
    for process in workers:
        process.kill()
    for server in servers:
        os.killpg(server.pid, signal.SIGKILL)
    shutil.rmtree(work, ignore_errors=True)


def run_invocations(action, values_for, n: int) -> tuple[float, float, int]:
    """Enqueue n invocations (values_for(i) for the i-th) in transactions of 500 and wait until every
    one has ended: (seconds to enqueue, seconds to the end, how many succeeded)."""
    from django.db import transaction

    from actions.models import Invocation
    from actions.runtime import invocations_enqueue

    started = time.perf_counter()
    for offset in range(0, n, 500):
        with transaction.atomic():
            invocations_enqueue(action=action, values_list=[values_for(i) for i in range(offset, min(offset + 500, n))])
    enqueued = time.perf_counter() - started
    while Invocation.objects.exclude(status__in=Invocation.FINAL).exists():
        time.sleep(0.05)
    return enqueued, time.perf_counter() - started, Invocation.objects.filter(status="succeeded").count()


def make_action(organization, name: str, url: str, headers: list, **extra):
    from actions.services.actions import action_create

    return action_create(
        organization=organization,
        data={
            "name": name, "status": "active", "url": url, "body": {"to": "{{phone}}", "text": "{{text}}"},
            "parameters": [{"name": "phone", "type": "string"}, {"name": "text", "type": "string"}],
            "headers": headers, **extra,
        },
    )  # fmt: skip


def cpu_s(root: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, total, tick = {root}, 0.0, os.sysconf("SC_CLK_TCK")
    while grown := {pid for pid, parent in parents.items() if parent in tree and pid not in tree}:
        tree |= grown
    for pid in tree:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def pipeline_rate(action, n: int, workers: list[subprocess.Popen] = ()) -> tuple[float, int, float]:
    """Calls per second, how many succeeded, and the workers' CPU milliseconds per call."""
    from actions.models import Invocation
    from config.celery import app

    # An earlier phase's wake-ups outlive its rows (one per 50, most for rows a running loop had
    # sent): left queued, the workers were still taking them, 200 or so, as this phase's rows came.
    app.control.purge()
    Invocation.objects.all().delete()
    before = sum(cpu_s(worker.pid) for worker in workers)
    _, elapsed, succeeded = run_invocations(action, lambda i: VALUES, n)
    cpu_ms = (sum(cpu_s(worker.pid) for worker in workers) - before) * 1000 / n
    return n / elapsed, succeeded, cpu_ms


def mixed_run(organization, healthy_url: str, hanging_url: str) -> None:
    """200 calls to a host that never answers, then 200 to a healthy one: how late do the healthy ones end?"""
    from django.db import transaction
    from django.db.models import Max

    from actions.models import Invocation
    from actions.runtime import invocations_enqueue

    healthy = make_action(organization, "Healthy", healthy_url, [])
    hanging = make_action(organization, "Hanging", hanging_url, [], timeout_ms=3000, max_retries=0)

    def healthy_end(after_hanging: bool) -> float:
        Invocation.objects.all().delete()
        if after_hanging:
            with transaction.atomic():
                invocations_enqueue(action=hanging, values_list=[VALUES] * 200)
            time.sleep(1)
        started = time.time()
        with transaction.atomic():
            invocations_enqueue(action=healthy, values_list=[VALUES] * 200)
        while Invocation.objects.filter(action=healthy).exclude(status__in=Invocation.FINAL).exists():
            time.sleep(0.05)
        last = Invocation.objects.filter(action=healthy).aggregate(last=Max("finished_at"))["last"]
        while Invocation.objects.exclude(status__in=Invocation.FINAL).exists():
            time.sleep(0.1)  # the hanging host's calls time out before the next run
        return last.timestamp() - started

    alone, mixed = healthy_end(False), healthy_end(True)
    print("200 calls to a healthy host (100 ms), queued 1 s after 200 to a host that never answers (3 s timeout):")
    print(f"healthy host alone:          {alone:6.2f} s to its last call")
    print(f"behind the hanging host:     {mixed:6.2f} s  (delayed by {mixed - alone:+.2f} s)")


VALUES = {"phone": "+33600000000", "text": "hello"}


def in_turn(phases: dict[str, Callable[[], tuple[float, str]]], rounds: int) -> dict[str, float]:
    """Each phase's median rate over `rounds` rounds of all of them in turn: a slow spell of the machine
    hits every phase, not one."""
    rates: dict[str, list[float]] = {name: [] for name in phases}
    for round_ in range(1, rounds + 1):
        for name, phase in phases.items():
            rate, note = phase()
            rates[name].append(rate)
            print(f"  round {round_}, {name:33} {rate:8.0f} calls/s{note}")
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000, help="calls (default 5000)")
    parser.add_argument("-p", "--processes", type=int, default=2, help="worker and client processes (default 2)")
    parser.add_argument(
        "--secret", action="store_true", help="the action's header holds a secret value ({{secrets.NAME}})"
    )
    parser.add_argument("--latency-ms", type=int, default=0, help="the provider answers after this delay")
    parser.add_argument("--rounds", type=int, default=3, help="phases compared by their medians, in turn (default 3)")
    parser.add_argument("--mixed", action="store_true", help="a hanging host and a healthy one (see above)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds: at least 1")

    work = Path(tempfile.mkdtemp(prefix="conduit-bench-"))
    env = bench_env(work)
    instant, slow, hanging = free_port(), free_port(), free_port()
    latency = "100" if args.mixed else str(args.latency_ms)
    servers = [start_receiver(instant), start_receiver(slow, latency), start_receiver(hanging, "never")]
    workers: list[subprocess.Popen] = []
    try:
        prepare_database()
        from django.conf import settings
        from django.db import connection

        from actions.models import Action, Invocation
        from actions.runtime.inflight import HOST_SHARE
        from actions.services.secret_values import secret_value_save
        from tenants.models import Organization

        time.sleep(0.5)
        url, slow_url = f"http://127.0.0.1:{instant}/v1/messages", f"http://127.0.0.1:{slow}/v1/messages"
        # One host per port would be one host for the limits: the slow provider is reached as "localhost".
        slow_url = slow_url.replace("127.0.0.1", "localhost") if args.mixed else slow_url
        in_flight = int(settings.CONDUIT_MAX_IN_FLIGHT * HOST_SHARE)  # per worker process, to one host
        if args.latency_ms and not args.mixed:
            bare_rate(slow_url, 2 * args.processes * in_flight, args.processes, in_flight)  # warm up
            bare = bare_rate(slow_url, args.n, args.processes, in_flight)
            baseline = f"plain script, {args.processes} x {in_flight} keep-alive connections"
        else:
            bare_rate(url, 200, args.processes)  # warm up; the bare client's phases alternate with the pipeline's
            baseline = "bare requests.Session"

        organization, _ = Organization.objects.get_or_create(
            slug="bench", defaults={"name": "Bench", "allow_http": True}
        )
        Invocation.objects.all().delete()
        Action.objects.filter(organization=organization).delete()
        headers = []
        if args.secret:
            organization.secret_values.all().delete()
            secret_value_save(organization=organization, data={"name": "BENCH_KEY", "value": "bench-secret-value"})
            headers = [{"name": "X-Api-Key", "value": "{{secrets.BENCH_KEY}}"}]
        organization.endpoint_limits.all().delete()
        if args.latency_ms and not args.mixed:
            # The plain script keeps P x in_flight connections open: so may the pipeline (the
            # default cap of 400 per host would otherwise be what is measured at 300 ms).
            organization.endpoint_limits.update_or_create(
                host="127.0.0.1", defaults={"max_concurrent": args.processes * in_flight}
            )
        workers = start_workers(env, work, args.processes)
        time.sleep(6)  # workers ready
        connection.close()
        backend = connection.vendor + (" + Redis" if os.environ.get("REDIS_URL") else "")
        secret = ", a secret value in a header" if args.secret else ""
        print(f"backend: {backend}, broker: {env['CELERY_BROKER_URL'].split(':')[0]}, "
              f"{args.processes} processes, CONDUIT_MAX_IN_FLIGHT={settings.CONDUIT_MAX_IN_FLIGHT}, "
              f"{args.n} calls{secret}")  # fmt: skip
        if args.mixed:
            mixed_run(organization, slow_url, f"http://localhost:{hanging}/v1/messages")
            return
        instant_action = make_action(organization, "Bench", url, headers)

        def pipeline(action) -> Callable[[], tuple[float, str]]:
            def phase() -> tuple[float, str]:
                rate, succeeded, cpu_ms = pipeline_rate(action, args.n, workers)
                return rate, f"  ({succeeded} succeeded, workers' CPU {cpu_ms:.2f} ms a call)"

            return phase

        if not args.latency_ms:  # the workers idle while the bare client runs
            bare, at_zero = in_turn(
                {f"{baseline}:": lambda: (bare_rate(url, args.n, args.processes), ""),
                 "Conduit pipeline:": pipeline(instant_action)}, args.rounds,
            ).values()  # fmt: skip
            print(f"{baseline + ':':52} {bare:8.0f} calls/s  (median of {args.rounds})")
            print(f"{'Conduit pipeline:':52} {at_zero:8.0f} calls/s  (median of {args.rounds})")
            print(f"ratio pipeline/bare:   {at_zero / bare:8.2f}")
            return
        print(f"{baseline + ':':52} {bare:8.0f} calls/s  (provider answers after {args.latency_ms} ms)")
        label = f"provider answering after {args.latency_ms} ms:"
        slow_action = make_action(organization, "Slow", slow_url, headers)
        at_zero, rate = in_turn(
            {"at once:": pipeline(instant_action), label: pipeline(slow_action)}, args.rounds
        ).values()
        print(f"{'Conduit pipeline, provider answering at once:':52} {at_zero:8.0f} calls/s  (median of {args.rounds})")
        print(f"{'Conduit pipeline, ' + label:52} {rate:8.0f} calls/s  (median of {args.rounds})")
        print(f"ratio to the plain script:       {rate / bare:6.2f}")
        print(f"ratio to its own rate at 0 ms:   {rate / at_zero:6.2f}")
    finally:
        stop(workers, servers, work)


if __name__ == "__main__":
    main()
