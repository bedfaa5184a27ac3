"""Dispatch benchmark: N invocations through the whole pipeline against a bare requests.Session.

    .venv/bin/python bench/dispatch.py                 # embedded default: SQLite + filesystem broker
    .venv/bin/python bench/dispatch.py --secret        # the same, the action's header a secret value
    DATABASE_URL=postgres://... REDIS_URL=redis://... CELERY_BROKER_URL=redis://... \\
        .venv/bin/python bench/dispatch.py             # production stack (bench/services.sh starts one)

Starts a fast receiver on loopback, then in the same run: (1) the bare client makes N POSTs
from P processes, one keep-alive Session each; (2) N invocations are enqueued and P worker
processes (Celery, prefork, concurrency 1 each) send them. Prints both rates and the ratio.
"""

import argparse
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
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


def bare_rate(url: str, n: int, processes: int) -> float:
    started = time.perf_counter()
    with multiprocessing.Pool(processes) as pool:
        pool.starmap(bare_client, [(url, n // processes)] * processes)
    return (n // processes * processes) / (time.perf_counter() - started)


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


def stop(workers: list[subprocess.Popen], server: subprocess.Popen, work: Path) -> None:
    """Kill the workers, the server standing in for the provider (and its forked children), drop the work folder."""
    for process in workers:
        process.kill()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000, help="calls (default 5000)")
    parser.add_argument("-p", "--processes", type=int, default=2, help="worker and client processes (default 2)")
    parser.add_argument(
        "--secret", action="store_true", help="the action's header holds a secret value ({{secrets.NAME}})"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="conduit-bench-"))
    env = bench_env(work)
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "receiver.py"), str(port), "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    workers: list[subprocess.Popen] = []
    try:
        prepare_database()
        from django.db import connection

        from actions.models import Action, Invocation
        from actions.services.actions import action_create
        from actions.services.secret_values import secret_value_save
        from tenants.models import Organization

        time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/v1/messages"
        bare_rate(url, 200, args.processes)  # warm up
        bare = bare_rate(url, args.n, args.processes)

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
        action = action_create(
            organization=organization,
            data={
                "name": "Bench", "status": "active", "url": url, "body": {"to": "{{phone}}", "text": "{{text}}"},
                "parameters": [{"name": "phone", "type": "string"}, {"name": "text", "type": "string"}],
                "headers": headers,
            },
        )  # fmt: skip
        workers = start_workers(env, work, args.processes)
        time.sleep(6)  # workers ready
        connection.close()
        values = {"phone": "+33600000000", "text": "hello"}
        enqueued, elapsed, succeeded = run_invocations(action, lambda i: values, args.n)
        pipeline = args.n / elapsed
        backend = connection.vendor + (" + Redis" if os.environ.get("REDIS_URL") else "")
        secret = ", a secret value in a header" if args.secret else ""
        print(f"backend: {backend}, broker: {env['CELERY_BROKER_URL'].split(':')[0]}, "
              f"{args.processes} processes, {args.n} calls{secret}")  # fmt: skip
        print(f"bare requests.Session: {bare:8.0f} calls/s")
        print(f"Conduit pipeline:      {pipeline:8.0f} calls/s  ({succeeded} succeeded; enqueue took {enqueued:.1f} s)")
        print(f"ratio pipeline/bare:   {pipeline / bare:8.2f}")
    finally:
        stop(workers, receiver, work)


if __name__ == "__main__":
    main()
