import contextlib

from django.conf import settings
from django.core.management.base import BaseCommand

from actions.demo_receiver import make_server, make_smtp_server


class Command(BaseCommand):
    help = (
        "Run the demo receivers on loopback: prints every call the demo SMS action makes (HTTP) and every "
        "email the demo email action sends (SMTP)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=settings.CONDUIT_DEMO_RECEIVER_PORT)
        parser.add_argument("--smtp-port", type=int, default=settings.CONDUIT_DEMO_SMTP_PORT)

    def handle(self, **options) -> None:
        server = make_server("127.0.0.1", options["port"], self.stdout)
        smtp = make_smtp_server("127.0.0.1", options["smtp_port"], self.stdout)
        smtp.start()
        self.stdout.write(f"Demo receiver listening on http://127.0.0.1:{options['port']}/")
        self.stdout.write(f"Demo SMTP server listening on 127.0.0.1:{options['smtp_port']}")
        try:
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
        finally:
            smtp.stop()
