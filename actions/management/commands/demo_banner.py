"""`make run`'s last words: once the web server answers, print what seed_demo said (logins, the demo's
curl) and where the admin is, after the start-up logs, where a person sees them; then wait quietly."""

import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print the demo's banner once the web server answers (make run's Procfile)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", required=True, help="The web server's address, e.g. http://127.0.0.1:8000")
        parser.add_argument("--file", required=True, help="What seed_demo printed.")

    def handle(self, **options) -> None:
        for name in ("SIGTERM", "SIGINT"):  # honcho's stop: end without a traceback
            signal.signal(getattr(signal, name), lambda *_: sys.exit(0))
        base = options["url"].rstrip("/")
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/v1/", timeout=1).close()  # noqa: S310 (our own loopback)
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                time.sleep(0.5)
        time.sleep(2)  # the worker's and beat's start-up lines come first
        banner = Path(options["file"]).read_text() if Path(options["file"]).exists() else ""
        self.stdout.write(f"\n{banner.rstrip()}\n\nAdmin: {base}/admin/   API docs: {base}/api/v1/docs/\n")
        self.stdout.flush()
        while True:
            signal.pause()
