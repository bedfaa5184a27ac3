"""Audience benchmark: profiles loaded in bulk over HTTP, then an audience journey entered at its rate.

    .venv/bin/python bench/audience.py                                      # SQLite + filesystem broker
    .venv/bin/python bench/audience.py -n 20000 --rate 500 --latency-ms 50  # smaller, slower provider
    eval "$(bash bench/services.sh)" && .venv/bin/python bench/audience.py  # PostgreSQL + Redis

In the same run:
(1) gunicorn (2 workers) on loopback with the product's URLs and bench/urls.py's do-nothing endpoint
    (the same API key authentication, scope check and body parsing, nothing stored); N profiles
    ({"country": "FR" or "DE", "n": i}) in requests of 10,000 from C client processes, the same bytes
    first to the do-nothing endpoint, then to `POST /api/v1/orgs/{org}/profiles/bulk/`: profiles/s of
    both and the ratio.
(2) P Celery workers (as bench/dispatch.py), the worker on the `audiences` queue alone and one beat
    (as `make run`: the beat sends `journeys.enter_audiences` every second), a receiver on loopback
    standing in for the provider, and a journey whose audience is the segment `profile.country == "FR"`
    (half the profiles) at --rate profiles a second, with one action step. From the runs' started_at:
    the entry rate against the target, over the whole round and over each minute (10-second windows
    when the round is shorter), every matching profile entered exactly
    once; then every call made (Invocation rows succeeded, bodies received by the stand-in) and calls/s.

The runs of one beat tick share one started_at: the first tick's runs were due over the second before
it, so the rate is counted from the first tick to the last full one (the last tick enters the tail of
the segment, less than a second's worth), the naive count (all runs over first-to-last) printed beside.
"""

import argparse
import itertools
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.dispatch import (  # noqa: E402
    bench_env,
    free_port,
    make_action,
    prepare_database,
    start_receiver,
    start_workers,
    stop,
)
from bench.journey import received  # noqa: E402

PER_REQUEST = 10_000  # the bulk endpoint's maximum
ORG = "bench-audience"
TOLERANCE = 0.05  # the accuracy: within 5 % over a minute


def profile_bodies(n: int) -> list[bytes]:
    """N profiles, half in France (even i), as bodies of PER_REQUEST profiles each."""
    items = [{"external_id": f"p{i}", "attributes": {"country": "DE" if i % 2 else "FR", "n": i}} for i in range(n)]
    return [json.dumps({"profiles": items[i : i + PER_REQUEST]}).encode() for i in range(0, n, PER_REQUEST)]


def post_all(url: str, key: str, bodies: list[bytes], expected: int) -> list[dict]:
    import requests

    session = requests.Session()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    answers = []
    for body in bodies:
        response = session.post(url, data=body, headers=headers, timeout=300)
        assert response.status_code == expected, f"{response.status_code} {response.text[:300]}"
        answers.append(response.json())
    return answers


def http_rate(url: str, key: str, bodies: list[bytes], profiles: int, clients: int, expected: int):
    """(profiles per second, the answers) for the bodies sent by `clients` processes."""
    shares = [(url, key, bodies[i::clients], expected) for i in range(clients)]
    started = time.perf_counter()
    with multiprocessing.Pool(clients) as pool:
        answers = pool.starmap(post_all, shares)
    return profiles / (time.perf_counter() - started), [a for share in answers for a in share]


def start_gunicorn(env: dict, port: int) -> subprocess.Popen:
    """The product's URLs plus the do-nothing endpoint (bench/settings.py), as bench/ingest.py serves them."""
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "--timeout", "300"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "bench.settings", "PYTHONPATH": str(ROOT)},
        start_new_session=True,
    )  # fmt: skip
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def start_beat(env: dict, work: Path) -> subprocess.Popen:
    """The one beat of the installation, its schedule file in the work folder."""
    log = open(work / "beat.log", "w")  # noqa: SIM115
    command = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=WARNING",
               "-s", str(work / "celerybeat-schedule")]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def start_audience_worker(env: dict, work: Path) -> subprocess.Popen:
    """The worker line that takes the audience ticks alone (Procfile.dev's `audiences`)."""
    log = open(work / "audiences.log", "w")  # noqa: SIM115
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "audiences", "--concurrency=1",
               "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
               "--hostname", "audiences@%h"]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def windows(instants: list[float], cumulative: list[int], length: float) -> list[tuple[float, float, float]]:
    """(offset from the first tick, seconds, runs/s) of consecutive windows of about `length` seconds, each
    from one tick to the first tick at least `length` later (less half a tick, for the beat's jitter)."""
    found, start = [], 0
    for end in range(1, len(instants)):
        span = instants[end] - instants[start]
        if span >= length - 0.5:
            found.append((instants[start] - instants[0], span, (cumulative[end] - cumulative[start]) / span))
            start = end
    return found


def verdict(rate: float, target: int) -> str:
    ratio = rate / target
    return f"ratio {ratio:.3f}, {'within' if abs(ratio - 1) <= TOLERANCE else 'NOT within'} 5 %"


def wait_until(done, timeout: float, pause: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(pause)
    return done()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=100_000, help="profiles (default 100,000; half match)")
    parser.add_argument("--rate", type=int, default=2000, help="the audience's rate_per_s (default 2,000)")
    parser.add_argument("-p", "--processes", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("-c", "--clients", type=int, default=2, help="HTTP client processes (default 2)")
    parser.add_argument("--latency-ms", type=int, default=0, help="the provider answers after this delay (default 0)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="conduit-bench-"))
    env = bench_env(work)
    port, receiver_port, log = free_port(), free_port(), work / "calls.log"
    servers = [start_receiver(receiver_port, str(args.latency_ms), str(log))]
    workers: list[subprocess.Popen] = []
    try:
        prepare_database()
        from django.db import connection
        from django.db.models import Max, Min

        from actions.models import Action, Invocation
        from journeys.audience.segments import segment_create
        from journeys.models import AudienceRound, Event, Journey, JourneyRun, Profile, Segment
        from journeys.services import journey_create, journey_publish
        from tenants.models import Organization
        from tenants.services import api_key_create

        organization, _ = Organization.objects.get_or_create(
            slug=ORG, defaults={"name": "Bench audience", "allow_http": True}
        )
        for model in (Invocation, JourneyRun, AudienceRound, Journey, Segment, Action, Event, Profile):
            model.objects.filter(organization=organization).delete()  # a shared database: an earlier run's rows
        _, key = api_key_create(
            organization=organization, name=f"bench-{time.time()}", scopes=["profiles:write", "events:write"]
        )
        servers.append(start_gunicorn(env, port))
        backend = connection.vendor + (" + Redis" if os.environ.get("REDIS_URL") else "")
        print(f"backend: {backend}, broker: {env['CELERY_BROKER_URL'].split(':')[0]}, gunicorn 2 workers, "
              f"{args.clients} client processes, {args.processes} worker processes + the audiences worker + beat, "
              f"{args.n} profiles, audience at {args.rate}/s, provider answers after {args.latency_ms} ms")  # fmt: skip

        # (1) Profiles in bulk, against the do-nothing endpoint, the same bytes.
        base = f"http://127.0.0.1:{port}/api/v1/orgs/{ORG}"
        warm = json.dumps({"profiles": [{"external_id": "warm-up", "attributes": {"country": "XX"}}]}).encode()
        for _ in range(4):  # both gunicorn workers, both URLs (the warm-up profile is not in the segment)
            post_all(f"{base}/nothing/", key, [warm], 202)
            post_all(f"{base}/profiles/bulk/", key, [warm], 200)
        bodies = profile_bodies(args.n)
        nothing, _ = http_rate(f"{base}/nothing/", key, bodies, args.n, args.clients, 202)
        bulk, answers = http_rate(f"{base}/profiles/bulk/", key, bodies, args.n, args.clients, 200)
        created, updated = sum(a["created"] for a in answers), sum(a["updated"] for a in answers)
        stored = Profile.objects.filter(organization=organization).count() - 1
        print(f"{'do-nothing endpoint (same requests):':40} {nothing:8.0f} profiles/s  "
              f"({len(bodies)} requests of up to {PER_REQUEST:,})")  # fmt: skip
        print(f"{'POST .../profiles/bulk/:':40} {bulk:8.0f} profiles/s  "
              f"(created {created}, updated {updated}; {stored} stored)")  # fmt: skip
        print(f"ratio bulk/do-nothing:  {bulk / nothing:8.2f}")
        os.killpg(servers.pop().pid, signal.SIGKILL)  # the web server (and its workers) is not in phase (2)

        # (2) The audience journey.
        workers = start_workers(env, work, args.processes)
        workers += [start_audience_worker(env, work), start_beat(env, work)]
        segment = segment_create(
            organization=organization, data={"name": "France", "expression": 'profile.country == "FR"'}
        )
        action = make_action(organization, "Audience", f"http://127.0.0.1:{receiver_port}/v1/messages", [])
        steps = [
            {"key": "call", "type": "action", "action": action.pk, "next": "done",
             "parameters": {"phone": "profile.external_id", "text": '"Bonjour " + profile.country'}},
            {"key": "done", "type": "end"},
        ]  # fmt: skip
        audience = {"segment": segment.pk, "rate_per_s": args.rate, "start_at": None, "repeat": "none"}
        journey = journey_create(
            organization=organization,
            data={"name": "Audience", "reentry": "never", "steps": steps, "start": "call", "audience": audience},
        )
        time.sleep(6)  # workers and beat ready
        journey_publish(journey=journey)
        matching = (args.n + 1) // 2
        rounds = AudienceRound.objects.filter(journey=journey)
        entry_timeout = 90 + 3 * matching / args.rate
        finished = wait_until(lambda: rounds.exclude(finished_at=None).exists(), entry_timeout)
        round_ = rounds.first()
        runs = JourneyRun.objects.filter(journey=journey)
        started = sorted(runs.values_list("started_at", flat=True))
        if not started:
            raise RuntimeError(f"no run started within {entry_timeout:.0f} s (round: {round_})")
        counts = [len(list(group)) for _, group in itertools.groupby(started)]
        instants = [t.timestamp() for t, _ in itertools.groupby(started)]
        cumulative = list(itertools.accumulate(counts))
        entered, distinct = len(started), runs.values("profile_id").distinct().count()
        outside = runs.exclude(profile__attributes__country="FR").count()
        span = instants[-1] - instants[0]
        print(f"segment: {matching} matching profiles (round's total {round_.total if round_ else '-'}); "
              f"round {'finished' if finished else 'NOT finished'}: {entered} runs, {distinct} distinct profiles, "
              f"{outside} outside the segment")  # fmt: skip
        ok = entered == matching == distinct and outside == 0
        print(f"every matching profile entered exactly once: {'yes' if ok else 'NO'}")
        if len(instants) >= 3:
            full = len(instants) - 2  # the last tick's runs are the segment's tail
            held = (cumulative[full] - cumulative[0]) / (instants[full] - instants[0])
            gaps = [b - a for a, b in itertools.pairwise(instants)]
            print(f"entry: {len(instants)} ticks over {span:.1f} s (gaps {min(gaps):.2f}-{max(gaps):.2f} s),"
                  f" naive {entered / span:.0f} runs/s (all runs over first-to-last started_at)")  # fmt: skip
            ticks = ", ".join(f"+{t - instants[0]:.2f} s {n}" for t, n in zip(instants[:12], counts[:12], strict=False))
            print(f"first ticks (runs each): {ticks}")
            print(f"entry rate, first tick to the last full one: {held:8.0f} runs/s  target {args.rate}/s: "
                  f"{verdict(held, args.rate)}")  # fmt: skip
            length = 60 if instants[full] - instants[0] >= 59.5 else 10
            for offset, seconds, rate in windows(instants[: full + 1], cumulative[: full + 1], length):
                print(f"  window +{offset:5.1f} s, {seconds:4.1f} s: {rate:8.0f} runs/s  {verdict(rate, args.rate)}")
        else:
            print(f"entry: {len(instants)} ticks only (raise -n or lower --rate for a rate)")

        # The calls: every invocation of the action ended, and each body reached the stand-in.
        invocations = Invocation.objects.filter(action=action)
        wait_until(lambda: invocations.count() >= entered and not invocations.exclude(
            status__in=Invocation.FINAL).exists(), 60 + entered / 50, pause=0.5)  # 50 calls/s at least  # fmt: skip
        wait_until(lambda: not runs.filter(status__in=JourneyRun.OPEN).exists(), 60, pause=0.5)  # the end steps
        succeeded = invocations.filter(status="succeeded").count()
        ends = invocations.aggregate(first=Min("created_at"), last=Max("finished_at"))
        completed = runs.filter(status="completed").count()
        arrived = len(received(log))
        if ends["last"] is not None:
            seconds = ends["last"].timestamp() - instants[0]
            print(f"calls: {succeeded} of {invocations.count()} invocations succeeded, {arrived} distinct bodies "
                  f"received, {completed} runs completed; {succeeded / seconds:.0f} calls/s from the first run to "
                  f"the last call ({seconds:.1f} s; last call {ends['last'].timestamp() - instants[-1]:.1f} s after "
                  f"the last entry)")  # fmt: skip
        else:
            print(f"calls: none ended ({invocations.count()} invocations, {arrived} received)")
        print(f"all calls made: {'yes' if succeeded == entered == arrived == matching else 'NO'}")
    except (RuntimeError, AssertionError) as exc:
        for process_log in sorted(work.glob("*.log")):
            if process_log.name != "calls.log":
                print(f"--- {process_log.name}\n{process_log.read_text()[-3000:]}")
        raise SystemExit(str(exc)) from None
    finally:
        stop(workers, servers, work)


if __name__ == "__main__":
    main()
