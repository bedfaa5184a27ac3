"""Email benchmark: N email invocations through the whole pipeline against bare smtplib.

    .venv/bin/python bench/emails.py                    # embedded default: SQLite + filesystem broker
    eval "$(bash bench/services.sh)" && .venv/bin/python bench/emails.py   # PostgreSQL + Redis

Starts an SMTP server (aiosmtpd) on loopback in its own process, then in the same run: (1) P
processes send N emails with smtplib, one connection per email as Django's backend opens one
per send, and (2) N email invocations are enqueued and P Celery worker processes send them.
Prints the rates and the ratios. The pipeline reuses one connection per batch of calls, so
the bare client reusing one connection for all its emails is the fairer baseline.
"""

import argparse
import multiprocessing
import os
import smtplib
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.dispatch import bench_env, free_port, prepare_database, run_invocations, start_workers, stop  # noqa: E402

SERVER = """
import asyncio, sys
from aiosmtpd.controller import Controller
class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
asyncio.run(asyncio.Event().wait())
"""


def _message(index: int) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "shop@acme.test", "ada@example.com", f"Cart {index}"
    message.set_content("Hi Ada,\n\nYour cart is still there for you.\n")
    return message


def bare_client(port: int, emails: int, reuse: bool) -> None:
    connection = smtplib.SMTP("127.0.0.1", port) if reuse else None
    for index in range(emails):
        if reuse:
            connection.send_message(_message(index))
        else:
            with smtplib.SMTP("127.0.0.1", port) as once:
                once.send_message(_message(index))
    if connection:
        connection.quit()


def bare_rate(port: int, n: int, processes: int, reuse: bool = False) -> float:
    started = time.perf_counter()
    with multiprocessing.Pool(processes) as pool:
        pool.starmap(bare_client, [(port, n // processes, reuse)] * processes)
    return (n // processes * processes) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="emails (default 2000)")
    parser.add_argument("-p", "--processes", type=int, default=2, help="worker and client processes (default 2)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="conduit-bench-"))
    env = bench_env(work)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], start_new_session=True)
    workers: list[subprocess.Popen] = []
    try:
        prepare_database()
        from django.db import connection

        from actions.models import Action, EmailSettings, Invocation
        from actions.services.actions import action_create
        from actions.services.email_settings import email_settings_save
        from tenants.models import Organization

        time.sleep(1)
        bare_rate(port, 100, args.processes)  # warm up
        bare = bare_rate(port, args.n, args.processes)
        reused = bare_rate(port, args.n, args.processes, reuse=True)

        organization, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        Invocation.objects.all().delete()
        Action.objects.filter(organization=organization).delete()
        EmailSettings.objects.filter(organization=organization).delete()
        email_settings_save(
            organization=organization,
            data={"host": "127.0.0.1", "port": port, "security": "none", "default_from": "shop@acme.test"},
        )
        action = action_create(
            organization=organization,
            data={
                "name": "Bench email", "status": "active", "kind": "email", "url": "",
                "email": {"to": "{{email}}", "subject": "Cart {{n}}", "text": "Hi {{name}},\n\nYour cart is there."},
                "parameters": [{"name": "email", "type": "string"}, {"name": "name", "type": "string"},
                               {"name": "n", "type": "integer"}],
            },
        )  # fmt: skip
        workers = start_workers(env, work, args.processes)
        time.sleep(6)  # workers ready
        connection.close()
        _, elapsed, succeeded = run_invocations(
            action, lambda i: {"email": "ada@example.com", "name": "Ada", "n": i}, args.n
        )
        pipeline = args.n / elapsed
        backend = connection.vendor + (" + Redis" if os.environ.get("REDIS_URL") else "")
        print(f"backend: {backend}, {args.processes} processes, {args.n} emails")
        print(f"bare smtplib, a connection per email:  {bare:8.0f} emails/s")
        print(f"bare smtplib, one connection reused:   {reused:8.0f} emails/s")
        print(f"Conduit pipeline:                      {pipeline:8.0f} emails/s  ({succeeded} succeeded)")
        print(f"ratio pipeline/bare (per email):       {pipeline / bare:8.2f}")
        print(f"ratio pipeline/bare (reused):          {pipeline / reused:8.2f}")
    finally:
        stop(workers, [server], work)


if __name__ == "__main__":
    main()
