"""Soak test: load and faults, then proof that nothing was lost (exits non-zero if a check fails).

    .venv/bin/python bench/soak.py                     # 50,000 events, a worker killed every 20 s
    .venv/bin/python bench/soak.py --events 2000 --kills 1     # the short version CI runs
    .venv/bin/python bench/soak.py --latency-ms 50-300         # the provider's answers take 50-300 ms

On PostgreSQL (Debian's cluster, started by bench/services.sh, a fresh database) and a Redis of
its own on loopback (broker, rate limits, cache), it starts gunicorn (3 workers), two Celery
workers, beat and a provider that answers 10% 500, 5% too late, 2% 429 with Retry-After and
the rest 200 (with --latency-ms MIN-MAX the 200, 500 and 429 come after a delay at random in that
range, which must stay under the action's 500 ms timeout; the late ones still come after 1 s).
Several clients send the events (batches of 100 and single events, 5% of ids sent twice) into a
live journey `condition -> action -> wait 1 s -> action -> end`. Meanwhile a worker is SIGKILLed
every 20 s and replaced, Redis is restarted once and the web server once.
Then it checks: every accepted event stored once; every run ended; each invocation reached the
provider with its one Idempotency-Key and a succeeded one was answered 200; the rate limits
held as the provider saw them; no 5xx from the API.
"""

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.dispatch import KEY, free_port  # noqa: E402
from bench.receiver import latency_range  # noqa: E402

RATE_LIMIT = (200, 1)  # calls per second, per action: what the provider must never see exceeded
ACTION_TIMEOUT_MS = 500
SLOW_S = 1.0


# --- processes ----------------------------------------------------------------------


class Stack:
    def __init__(self, work: Path, env: dict):
        self.work, self.env = work, env
        self.workers: list[subprocess.Popen] = []
        self.others: dict[str, subprocess.Popen] = {}
        self.count = 0

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115
        return subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip

    def redis(self) -> None:
        port = self.env["SOAK_REDIS_PORT"]
        # Persistent, as production must run it (README): the rate-limit counters live here.
        (self.work / "redis").mkdir(exist_ok=True)
        self.others["redis"] = self._spawn("redis", [
            "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
            "--appendfsync", "everysec", "--dir", str(self.work / "redis"),
        ])  # fmt: skip
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", port, "ping"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise SystemExit("redis did not start")

    def web(self) -> None:
        self.others["web"] = self._spawn("web", [
            sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", self.env["SOAK_WEB"],
            "--workers", "3", "--graceful-timeout", "5", "--log-level", "warning",
        ])  # fmt: skip

    def beat(self) -> None:
        self.others["beat"] = self._spawn("beat", [
            sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=WARNING",
            "--schedule", str(self.work / "beat-schedule"),
        ])  # fmt: skip

    def worker(self) -> None:
        self.count += 1
        self.workers.append(self._spawn(f"worker{self.count}", [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=4", "--loglevel=WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname", f"soak{self.count}@%h",
        ]))  # fmt: skip

    def kill(self, process: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def restart(self, name: str) -> None:
        """Stop (SIGTERM: Redis writes its file, gunicorn finishes its requests) and start again."""
        process = self.others[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill(process)
        getattr(self, name)()

    def stop(self) -> None:
        for process in [*self.workers, *self.others.values()]:
            self.kill(process)


# --- clients ------------------------------------------------------------------------


def client(url: str, key: str, bodies: list[tuple[list[str], bytes]], results) -> None:
    """Send each body until it is accepted (202); a refused connection or a timeout is tried again."""
    import requests

    session = requests.Session()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    accepted, latencies, server_errors, retries = [], [], 0, 0
    for ids, body in bodies:
        while True:
            started = time.perf_counter()
            try:
                response = session.post(url, data=body, headers=headers, timeout=30)
            except requests.RequestException:
                retries += 1
                session = requests.Session()
                time.sleep(0.2)
                continue
            latencies.append(time.perf_counter() - started)
            if response.status_code == 202:
                accepted.extend(ids)
                break
            if response.status_code >= 500:
                server_errors += 1
            retries += 1
            time.sleep(0.2)
    results.put((accepted, latencies, server_errors, retries))


def bodies_for(count: int, seed: int) -> list[tuple[list[str], bytes]]:
    rng = random.Random(seed)
    ids = [f"e{seed}-{i}" for i in range(count)]
    ids += rng.sample(ids, count // 20)  # some ids sent twice
    rng.shuffle(ids)

    def event(event_id: str) -> dict:
        return {"id": event_id, "name": "soak", "profile_id": event_id,
                "profile": {"phone": event_id}, "data": {"total": 100.0}}  # fmt: skip

    bodies, position = [], 0
    while position < len(ids):
        size = 1 if rng.random() < 0.3 else 100
        chunk = ids[position : position + size]
        position += size
        payload = [event(i) for i in chunk] if size > 1 else event(chunk[0])
        bodies.append((chunk, json.dumps(payload).encode()))
    return bodies


# --- checks -------------------------------------------------------------------------


def read_provider(work: Path) -> list[tuple[float, str, str, str, str]]:
    entries = []
    for path in work.glob("provider.log.*"):
        for line in path.read_text().splitlines():
            parts = line.split(" ")
            if len(parts) == 5:
                entries.append((float(parts[0]), parts[1], parts[2], parts[3], parts[4]))
    return sorted(entries)


def max_in_window(times: list[float], period: float) -> int:
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] >= period:
            start += 1
        best = max(best, end - start + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000, help="distinct events (default 50,000)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--kills", type=int, default=0, help="stop killing workers after this many (0: no limit)")
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between worker kills")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")
    parser.add_argument("--latency-ms", default="0", metavar="MIN-MAX",
                        help='provider delay for 200, 500 and 429 ("100", "50-300"; default 0: at once)')  # fmt: skip
    args = parser.parse_args()
    try:
        latency = latency_range(args.latency_ms)
    except ValueError:
        parser.error(f"--latency-ms: {args.latency_ms!r} is neither MS nor MIN-MAX")
    # An answer at or past the action's timeout is the "too late" fault (the client counts that 200
    # as a timeout): the normal answers must come before it, or nothing but faults would be left.
    if latency and not latency[0] <= latency[1] < ACTION_TIMEOUT_MS / 1000:
        parser.error(f"--latency-ms: MIN <= MAX < the action's timeout ({ACTION_TIMEOUT_MS} ms)")

    services = subprocess.run(["bash", str(ROOT / "bench" / "services.sh")], capture_output=True, text=True)
    if services.returncode:
        raise SystemExit(f"bench/services.sh failed:\n{services.stderr[-2000:]}")
    subprocess.run(["su", "postgres", "-c", "dropdb --if-exists conduit_soak; createdb -O conduit conduit_soak"],
                   check=True, capture_output=True)  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="conduit-soak-"))
    redis_port, web = str(free_port()), f"127.0.0.1:{free_port()}"
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "FIELD_ENCRYPTION_KEYS": KEY,
        "SECRET_KEY": "soak-" + "x" * 50, "ALLOWED_HOSTS": "127.0.0.1", "AXES_ENABLED": "false",
        "DATABASE_URL": "postgres://conduit:conduit@127.0.0.1:5432/conduit_soak",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/1", "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "CONDUIT_ALLOWED_PRIVATE_NETWORKS": "127.0.0.0/8", "CONDUIT_RETRY_BASE_S": "0.5",
        "CONDUIT_SWEEP_INTERVAL_S": "2", "CONDUIT_SWEEP_GRACE_S": "5", "LOG_LEVEL": "WARNING",
        "SOAK_REDIS_PORT": redis_port, "SOAK_WEB": web,
    }  # fmt: skip
    os.environ.update(env)
    stack = Stack(work, env)
    provider_port = free_port()
    provider = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "soak_receiver.py"), str(provider_port), "2",
         str(work / "provider.log"), str(SLOW_S), args.latency_ms],
        start_new_session=True,
    )  # fmt: skip
    failures: list[str] = []
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        call_command("createcachetable", verbosity=0)
        from actions.models import Invocation
        from actions.services.actions import action_create
        from journeys.models import Event, JourneyRun
        from journeys.services import journey_create, journey_publish
        from tenants.models import Organization
        from tenants.services import api_key_create

        organization = Organization.objects.create(slug="soak", name="Soak", allow_http=True)
        actions = {}
        for name in ("first", "second"):
            actions[name] = action_create(organization=organization, data={
                "name": name, "status": "active", "url": f"http://127.0.0.1:{provider_port}/{name}",
                "body": {"to": "{{to}}"}, "parameters": [{"name": "to", "type": "string"}],
                "timeout_ms": ACTION_TIMEOUT_MS, "max_retries": 4,
                "rate_limit_calls": RATE_LIMIT[0], "rate_limit_period_s": RATE_LIMIT[1],
            })  # fmt: skip
        steps = [
            {"key": "check", "type": "condition", "else": "done",
             "branches": [{"expression": "event.data.total > 0.0", "next": "first"}]},
            {"key": "first", "type": "action", "action": actions["first"].pk, "parameters": {"to": "profile.phone"},
             "next": "pause", "on_error": "pause"},
            {"key": "pause", "type": "wait", "duration_s": 1, "next": "second"},
            {"key": "second", "type": "action", "action": actions["second"].pk, "parameters": {"to": "profile.phone"},
             "next": "done", "on_error": "done"},
            {"key": "done", "type": "end"},
        ]  # fmt: skip
        journey_publish(journey=journey_create(organization=organization, data={
            "name": "Soak", "entry_event": "soak", "reentry": "always", "steps": steps, "start": "check"}))  # fmt: skip
        _, raw_key = api_key_create(organization=organization, name="soak", scopes=["events:write"])
        connection.close()

        stack.redis()
        stack.web()
        stack.beat()
        stack.worker()
        stack.worker()
        time.sleep(5)

        results: multiprocessing.Queue = multiprocessing.Queue()
        share = args.events // args.clients
        clients = [
            multiprocessing.Process(target=client, args=(f"http://{web}/api/v1/orgs/soak/events/", raw_key,
                                                         bodies_for(share, seed), results))
            for seed in range(args.clients)
        ]  # fmt: skip
        started = time.time()
        for process in clients:
            process.start()
        kills, redis_restarted, web_restarted, last_kill = 0, False, False, time.time()
        sent_at = None
        outcomes = []
        while True:
            now = time.time()
            while not results.empty():
                outcomes.append(results.get())
            sending = any(p.is_alive() for p in clients)
            if now - last_kill >= args.kill_every and (not args.kills or kills < args.kills):
                victim = stack.workers.pop(0)
                stack.kill(victim)
                stack.worker()
                kills, last_kill = kills + 1, now
                print(f"{now - started:6.1f} s  killed a worker (SIGKILL) and started another", flush=True)
            if not redis_restarted and now - started > min(30, args.kill_every * 0.75):
                stack.restart("redis")
                redis_restarted = True
                print(f"{now - started:6.1f} s  restarted Redis", flush=True)
            if not web_restarted and now - started > min(45, args.kill_every * 1.25):
                stack.restart("web")
                web_restarted = True
                print(f"{now - started:6.1f} s  restarted the web server", flush=True)
            if not sending and len(outcomes) == len(clients):
                if sent_at is None:
                    sent_at = time.time()
                    print(f"{sent_at - started:6.1f} s  all events accepted", flush=True)
                open_runs = JourneyRun.objects.filter(status__in=JourneyRun.OPEN).count()
                unprocessed = Event.objects.filter(processed_at=None).count()
                if open_runs == 0 and unprocessed == 0 and redis_restarted and web_restarted:
                    break
            if int(now - started) % 10 == 0:
                open_now = JourneyRun.objects.filter(status__in=JourneyRun.OPEN).count()
                print(f"{now - started:6.1f} s  {len(outcomes)}/{len(clients)} clients done, {open_now} runs open",
                      flush=True)  # fmt: skip
            if now - started > args.timeout:
                failures.append(f"gave up after {args.timeout:.0f} s")
                break
            time.sleep(1)
        finished = time.time()
        time.sleep(1.5)  # the provider flushes its log
        connection.close()

        accepted = {i for ids, _, _, _ in outcomes for i in ids}
        latencies = sorted(x for _, lat, _, _ in outcomes for x in lat)
        server_errors = sum(e for _, _, e, _ in outcomes)
        retries = sum(r for _, _, _, r in outcomes)
        stored = list(Event.objects.filter(organization=organization).values_list("client_id", flat=True))
        if len(stored) != len(set(stored)) or set(stored) != accepted:
            failures.append(f"events: {len(accepted)} accepted, {len(stored)} stored, {len(set(stored))} distinct")
        runs = JourneyRun.objects.filter(organization=organization)
        stuck = runs.filter(status__in=JourneyRun.OPEN).count()
        if stuck or runs.count() != len(accepted):
            failures.append(f"runs: {runs.count()} for {len(accepted)} events, {stuck} not ended")
        provider_log = read_provider(work)
        keys_by_call = defaultdict(set)
        answered_200 = set()
        # Each request is logged with the answer decided at its arrival. With --latency-ms a client may
        # give up before a 200 reaches it (its next attempt carries the same key): a logged 200 is then
        # not a 200 received, but a 200 received is always logged, so "succeeded => answered 200" holds.
        for _, path, key, outcome, to in provider_log:
            keys_by_call[(path.strip("/"), to)].add(key)
            if outcome == "200":
                answered_200.add(key)
        invocations = list(Invocation.objects.filter(organization=organization).values_list(
            "action__name", "request", "idempotency_key", "status"))  # fmt: skip
        wrong_keys = lied = 0
        for name, request, key, status in invocations:
            seen = keys_by_call.get((name, json.loads(request["body"])["to"]), set())
            if seen - {str(key)}:
                wrong_keys += 1
            if status == "succeeded" and str(key) not in answered_200:
                lied += 1
        if wrong_keys:
            failures.append(f"{wrong_keys} invocations reached the provider with another Idempotency-Key")
        if lied:
            failures.append(f"{lied} invocations recorded as succeeded were not answered 200")
        # Arrival times: a call is counted by the limiter right before it is sent and reaches the
        # provider then, whatever the answer's delay, so the window check needs no change for latency.
        per_path = defaultdict(list)
        for at, path, *_ in provider_log:
            per_path[path].append(at)
        peaks = {path: max_in_window(times, RATE_LIMIT[1]) for path, times in per_path.items()}
        if any(peak > RATE_LIMIT[0] for peak in peaks.values()):
            failures.append(f"rate limit exceeded as the provider saw it: {peaks} > {RATE_LIMIT[0]}")
        if server_errors:
            failures.append(f"{server_errors} API answers were 5xx")

        outcomes_seen = defaultdict(int)
        for _, _, _, outcome, _ in provider_log:
            outcomes_seen[outcome] += 1
        p95 = latencies[int(len(latencies) * 0.95) - 1] * 1000 if latencies else 0
        print("\n=== soak summary ===")
        print(f"events: {len(accepted)} distinct accepted ({args.events} sent, plus 5% repeated ids), "
              f"stored {len(stored)}; {len(latencies)} API requests, {retries} retried, "
              f"{server_errors} 5xx")  # fmt: skip
        print(f"faults: {kills} workers SIGKILLed, Redis restarted once, web server restarted once; "
              f"provider latency {args.latency_ms} ms")  # fmt: skip
        print(f"provider: {len(provider_log)} requests {dict(outcomes_seen)}; peak per {RATE_LIMIT[1]} s "
              f"{max(peaks.values(), default=0)} (limit {RATE_LIMIT[0]})")  # fmt: skip
        print(f"runs: {runs.count()}, {runs.filter(status='completed').count()} completed, {stuck} open")
        statuses = defaultdict(int)
        for _, _, _, status in invocations:
            statuses[status] += 1
        print(f"invocations: {len(invocations)} {dict(statuses)}")
        sending_s = (sent_at or finished) - started
        print(f"throughput: {len(accepted) / sending_s:.0f} events/s accepted, "
              f"{runs.count() / (finished - started):.0f} runs/s to the end; API p50 "
              f"{statistics.median(latencies) * 1000:.0f} ms, p95 {p95:.0f} ms")  # fmt: skip
        print("checks: " + ("all passed" if not failures else "FAILED\n  " + "\n  ".join(failures)))
        if failures:
            for log in sorted(work.glob("worker*.log"))[-2:]:
                print(f"--- {log.name}\n{log.read_text()[-2000:]}")
    finally:
        stack.stop()
        os.killpg(provider.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
