"""Ingestion benchmark: events per second accepted by the API, against a do-nothing endpoint.

    .venv/bin/python bench/ingest.py                          # embedded default (SQLite)
    eval "$(bash bench/services.sh)" && .venv/bin/python bench/ingest.py   # PostgreSQL + Redis

Starts gunicorn (2 workers) on loopback with the product's URLs plus a do-nothing DRF endpoint
that authenticates the same API key, checks the same scope and parses the same body. Then,
in the same run, sends the same events to both: one event per request, and batches of 1,000.
"""

import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
KEY = "1m5t0yN0o7Vr2rdJZ7bLX5d4j2uL5q3k6yD0kqjH3mE="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(url: str, key: str, bodies: list[bytes]) -> None:
    import requests

    session = requests.Session()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for body in bodies:
        response = session.post(url, data=body, headers=headers)
        assert response.status_code == 202, response.text[:300]


def rate(url: str, key: str, bodies: list[bytes], events: int, clients: int) -> float:
    shares = [bodies[i::clients] for i in range(clients)]
    started = time.perf_counter()
    with multiprocessing.Pool(clients) as pool:
        pool.starmap(client, [(url, key, share) for share in shares])
    return events / (time.perf_counter() - started)


def payloads(prefix: str, events: int, per_request: int) -> list[bytes]:
    items = [
        {"id": f"{prefix}-{i}", "name": "cart_abandoned", "profile_id": f"cust-{i % 5000}",
         "profile": {"country": "FR"}, "data": {"total": i % 300, "items": [1, 2]}}
        for i in range(events)
    ]  # fmt: skip
    if per_request == 1:
        return [json.dumps(item).encode() for item in items]
    return [json.dumps(items[i : i + per_request]).encode() for i in range(0, events, per_request)]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="conduit-ingest-"))
    env = os.environ.copy()
    env.setdefault("DATABASE_URL", f"sqlite:///{work / 'ingest.sqlite3'}")
    env.update(
        FIELD_ENCRYPTION_KEYS=KEY, DJANGO_SETTINGS_MODULE="bench.settings",
        AXES_ENABLED="false", LOG_LEVEL="WARNING", CELERY_BROKER_FOLDER=str(work / "broker"),
    )  # fmt: skip
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    from journeys.models import Event
    from tenants.models import Organization
    from tenants.services import api_key_create

    organization, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    Event.objects.filter(organization=organization).delete()
    _, key = api_key_create(organization=organization, name=f"bench-{time.time()}", scopes=["events:write"])
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}",
         "--log-level", "warning"],
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        base = f"http://127.0.0.1:{port}/api/v1/orgs/bench"
        print(f"backend: {django.db.connection.vendor}, gunicorn 2 workers, 4 client processes")
        for label, events, per_request in (("one event per request", 2000, 1), ("batches of 1,000", 20000, 1000)):
            nothing = rate(f"{base}/nothing/", key, payloads("n", events, per_request), events, 4)
            ingest = rate(f"{base}/events/", key, payloads(f"e{per_request}", events, per_request), events, 4)
            print(f"{label:<22} do-nothing {nothing:8.0f} events/s   ingest {ingest:8.0f} events/s   "
                  f"ratio {ingest / nothing:.2f}")  # fmt: skip
        stored = Event.objects.filter(organization=organization).count()
        print(f"events stored: {stored} (expected 22000)")
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
