"""Real Celery worker processes for tests whose path crosses Celery.

The workers share the test database (a file for SQLite) and the test broker folder,
and call the loopback test servers, which tests allow explicitly.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.factories import TEST_ENCRYPTION_KEY

ROOT = Path(__file__).resolve().parent.parent
WORKER_SETTINGS = {
    "CONDUIT_RETRY_BASE_S": "0.2",
    "CONDUIT_SWEEP_INTERVAL_S": "1",
    "CONDUIT_SWEEP_GRACE_S": "2",
    "CONDUIT_CIRCUIT_MIN_CALLS": "4",
    "CONDUIT_CIRCUIT_COOLDOWN_S": "3",  # long enough to see a call held, short enough to wait for
    # Short leases, so that a test of a killed worker waits seconds, not half a minute (runtime.dispatch.lease_s).
    "CONDUIT_BATCH_BUDGET_S": "1",
    "CONDUIT_LEASE_MARGIN_S": "1",
}


def database_url() -> str:
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    return f"postgres://{params['USER']}:{params['PASSWORD']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"


class Workers:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **WORKER_SETTINGS,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_FOLDER": str(settings.CELERY_BROKER_FOLDER),
            "FIELD_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
            "CONDUIT_ALLOWED_PRIVATE_NETWORKS": "127.0.0.0/8,::1/128",
            "AXES_ENABLED": "false",
        }

    def start(
        self, *, beat: bool = True, concurrency: int = 1, env: dict[str, str] | None = None, queues: str = ""
    ) -> subprocess.Popen:
        """Start a worker (with the beat scheduler when asked, with these settings, on these queues, else all)
        and wait until it is ready."""
        name = f"w{len(self.processes) + 1}"
        log = self.log_dir / f"{name}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO",
            f"--concurrency={concurrency}", "--hostname", f"{name}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        if queues:
            command += ["-Q", queues]
        if beat:
            command += ["--beat", "--schedule", str(self.log_dir / f"{name}-beat")]
        with open(log, "w") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=self.env() | (env or {}), stdout=out, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool children: a crash, not a shutdown."""
        for child in _children(process.pid):
            os.kill(child, signal.SIGKILL)
        process.kill()
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                self.kill(process)

    def logs(self) -> str:
        return "\n".join(p.read_text()[-4000:] for p in sorted(self.log_dir.glob("*.log")))


def _children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return []
    return [int(x) for x in out.split()]


def finished(*invocations, timeout: float = 30.0) -> list:
    """The invocations read back once every one has ended."""
    from actions.models import Invocation

    ids = [i.pk for i in invocations]

    def done():
        rows = list(Invocation.objects.filter(pk__in=ids))
        return rows if all(r.status in Invocation.FINAL for r in rows) else None

    return wait_for(done, timeout=timeout, message="invocations to finish")


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


@pytest.fixture
def workers(transactional_db, allow_loopback, tmp_path, settings):
    """Start workers with `workers.start()`; all are killed at the end of the test."""
    for name, value in WORKER_SETTINGS.items():
        setattr(settings, name, float(value) if "." in value or name.endswith("_S") else int(value))
    folder = Path(settings.CELERY_BROKER_FOLDER)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()
    print(pool.logs())
    shutil.rmtree(folder, ignore_errors=True)
