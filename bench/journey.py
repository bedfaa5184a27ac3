"""Journey benchmark: profiles per second through condition -> action -> end, and event-to-call latency.

    .venv/bin/python bench/journey.py                                      # SQLite + filesystem broker
    .venv/bin/python bench/journey.py --latency-ms 100                     # the provider answers after 100 ms
    eval "$(bash bench/services.sh)" && .venv/bin/python bench/journey.py  # PostgreSQL + Redis

Starts a receiver on loopback that logs each call's arrival (answering at once, or --latency-ms after
each request, as a real provider), and P Celery worker processes. In the same run: (1) the baseline:
at 0 ms the bare client (one keep-alive requests.Session per process) makes N POSTs; with
--latency-ms a plain script with as many keep-alive connections as the pipeline keeps open to one
host (P processes, a thread and a Session per connection), as bench/dispatch.py; (2) N events for
N profiles are stored at once and the time until all N runs have completed (their calls answered)
gives profiles per second; (3) events arrive at a steady rate (--rate, default 200/s) in small
batches and each call's arrival at the receiver minus its event's commit gives the latency (p50,
p95; the provider's own answer time is not in it). The target: p95 under 1 s at 200 events/s.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.dispatch import (  # noqa: E402
    bare_rate,
    bench_env,
    free_port,
    prepare_database,
    start_receiver,
    start_workers,
    stop,
)

TARGET_P95_MS, TARGET_RATE = 1000, 200  # the target for the latency phase


def received(log: Path) -> dict[str, float]:
    """Profile id -> arrival time of its call, from the receiver's log."""
    arrivals = {}
    if log.exists():
        for line in log.read_bytes().splitlines():
            stamp, _, body = line.partition(b" ")
            try:
                arrivals[json.loads(body)["to"]] = float(stamp)
            except ValueError:
                continue
    return arrivals


def wait_for_calls(log: Path, wanted: set[str], timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        arrivals = received(log)
        if wanted <= set(arrivals):
            return arrivals
        time.sleep(0.05)
    missing = len(wanted - set(received(log)))
    raise RuntimeError(f"{missing} of {len(wanted)} calls never arrived within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000, help="profiles for the throughput phase (default 5000)")
    parser.add_argument("-p", "--processes", type=int, default=2, help="worker and client processes (default 2)")
    parser.add_argument("--rate", type=int, default=200, help="events per second in the latency phase")
    parser.add_argument("--seconds", type=int, default=10, help="length of the latency phase")
    parser.add_argument("--latency-ms", type=int, default=0, help="the provider answers after this delay (default 0)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="conduit-bench-"))
    env = bench_env(work)
    port, log = free_port(), work / "calls.log"
    receiver = start_receiver(port, str(args.latency_ms), str(log))
    workers: list[subprocess.Popen] = []
    try:
        prepare_database()
        from django.conf import settings
        from django.db import connection

        from actions.models import Action, Invocation
        from actions.runtime.inflight import HOST_SHARE
        from actions.services.actions import action_create
        from journeys.models import Event, Journey, JourneyRun, Profile
        from journeys.services import events_ingest, journey_create, journey_publish
        from tenants.models import Organization

        time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/v1/messages"
        if args.latency_ms:
            # One connection at a time would measure only the delay (10 calls/s at 100 ms): as many
            # connections as a worker process keeps open to one host, and at least 4 calls on each.
            in_flight = int(settings.CONDUIT_MAX_IN_FLIGHT * HOST_SHARE)
            calls = max(args.n, 4 * args.processes * in_flight)
            bare_rate(url, 2 * args.processes * in_flight, args.processes, in_flight)  # warm up
            bare = bare_rate(url, calls, args.processes, in_flight)
            baseline = f"plain script, {args.processes} x {in_flight} connections:"
        else:
            bare_rate(url, 200, args.processes)  # warm up
            bare = bare_rate(url, args.n, args.processes)
            baseline = "bare requests.Session:"

        organization, _ = Organization.objects.get_or_create(
            slug="bench", defaults={"name": "Bench", "allow_http": True}
        )
        for model in (JourneyRun, Event, Profile, Invocation, Journey, Action):
            model.objects.filter(organization=organization).delete()
        action = action_create(
            organization=organization,
            data={
                "name": "Bench", "status": "active", "url": url, "body": {"to": "{{phone}}", "text": "{{text}}"},
                "parameters": [{"name": "phone", "type": "string"}, {"name": "text", "type": "string"}],
            },
        )  # fmt: skip
        steps = [
            {"key": "check", "type": "condition",
             "branches": [{"expression": "event.data.total > 100.0", "next": "call"}], "else": "done"},
            {"key": "call", "type": "action", "action": action.pk, "next": "done",
             "parameters": {"phone": "profile.phone", "text": '"Hi " + profile.first_name'}},
            {"key": "done", "type": "end"},
        ]  # fmt: skip
        journey = journey_create(
            organization=organization,
            data={"name": "Bench", "entry_event": "cart", "reentry": "always", "steps": steps, "start": "check"},
        )
        journey_publish(journey=journey)
        workers = start_workers(env, work, args.processes)
        time.sleep(6)  # workers ready

        def event(profile: str) -> dict:
            return {"name": "cart", "profile_id": profile, "profile": {"phone": profile, "first_name": "Ada"},
                    "data": {"total": 150.0}}  # fmt: skip

        # (2) throughput: N events stored at once, in batches of 1,000 as the API takes them.
        wanted = [f"t{i}" for i in range(args.n)]
        started = time.time()
        for offset in range(0, args.n, 1000):
            events_ingest(organization=organization, events=[event(p) for p in wanted[offset : offset + 1000]])
        stored = time.time() - started
        wait_for_calls(log, set(wanted), timeout=300)
        while JourneyRun.objects.filter(journey=journey, status="completed").count() < args.n:
            time.sleep(0.05)  # through the end step too, and the latency phase starts with nothing queued
        through = args.n / (time.time() - started)

        # (3) latency: a steady flow in batches of one tenth of a second each.
        accepted: dict[str, float] = {}
        per_tick, ticks = max(1, args.rate // 10), args.seconds * 10
        begin = time.time()
        for tick in range(ticks):
            batch = [f"l{tick}-{i}" for i in range(per_tick)]
            events_ingest(organization=organization, events=[event(p) for p in batch])
            now = time.time()
            accepted.update(dict.fromkeys(batch, now))
            time.sleep(max(0.0, begin + (tick + 1) / 10 - time.time()))
        arrivals = wait_for_calls(log, set(accepted), timeout=120)
        latencies = sorted((arrivals[p] - accepted[p]) * 1000 for p in accepted)
        p50 = statistics.median(latencies)
        p95 = latencies[int(len(latencies) * 0.95) - 1]
        completed = JourneyRun.objects.filter(journey=journey, status="completed").count()

        backend = connection.vendor + (" + Redis" if os.environ.get("REDIS_URL") else "")
        print(f"backend: {backend}, broker: {env['CELERY_BROKER_URL'].split(':')[0]}, "
              f"{args.processes} worker processes, journey condition -> action -> end, "
              f"provider answers after {args.latency_ms} ms")  # fmt: skip
        print(f"{baseline:24} {bare:8.0f} calls/s")
        print(f"journey, {args.n} profiles: {through:8.0f} profiles/s  (stored in {stored:.1f} s)")
        print(f"ratio journey/bare:      {through / bare:8.2f}")
        print(f"event stored -> call received at {args.rate} events/s for {args.seconds} s: "
              f"p50 {p50:.0f} ms, p95 {p95:.0f} ms  ({len(latencies)} calls; {completed} runs completed)")  # fmt: skip
        verdict = "met" if p95 < TARGET_P95_MS else "NOT met"
        if args.rate < TARGET_RATE:
            verdict += f" at {args.rate} events/s only: run --rate {TARGET_RATE} for the target"
        print(f"p95 {p95:.0f} ms at {args.rate} events/s, provider at {args.latency_ms} ms "
              f"(target: under {TARGET_P95_MS} ms at {TARGET_RATE} events/s): {verdict}")  # fmt: skip
    except RuntimeError as exc:
        for worker_log in sorted(work.glob("worker*.log")):
            print(f"--- {worker_log.name}\n{worker_log.read_text()[-3000:]}")
        raise SystemExit(str(exc)) from None
    finally:
        stop(workers, [receiver], work)


if __name__ == "__main__":
    main()
