import contextlib

from django.conf import settings
from django.core.management.base import BaseCommand

from actions.demo_receiver import make_server


class Command(BaseCommand):
    help = "Run the demo receiver on loopback: prints every call the demo action makes and answers 200."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=settings.CONDUIT_DEMO_RECEIVER_PORT)

    def handle(self, **options) -> None:
        server = make_server("127.0.0.1", options["port"], self.stdout)
        self.stdout.write(f"Demo receiver listening on http://127.0.0.1:{options['port']}/")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
