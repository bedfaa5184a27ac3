"""`make run`'s demo: seed_demo's live journey sends an event's SMS and email to the demo receivers."""

import io
import socket
import threading

import pytest
from django.core.management import call_command
from django.utils import timezone

from actions.demo_receiver import make_server, make_smtp_server
from actions.models import Action
from journeys.models import Journey, JourneyRun
from tenants.models import ApiKey
from tests.conftest import key_client
from tests.journeys.helpers import drain


@pytest.fixture
def demo_receiver(settings, allow_loopback, tmp_path):
    out = io.StringIO()
    server = make_server("127.0.0.1", 0, out)
    settings.CONDUIT_DEMO_RECEIVER_PORT = server.server_address[1]
    settings.CONDUIT_DEMO_KEY_FILE = tmp_path / "demo-api-key"
    with socket.socket() as probe:  # aiosmtpd needs a port number it can connect to itself
        probe.bind(("127.0.0.1", 0))
        settings.CONDUIT_DEMO_SMTP_PORT = probe.getsockname()[1]
    smtp = make_smtp_server("127.0.0.1", settings.CONDUIT_DEMO_SMTP_PORT, out)
    smtp.start()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield out
    smtp.stop()
    server.shutdown()
    server.server_close()


def test_the_printed_event_goes_through_the_demo_journey_to_the_receiver(db, demo_receiver, settings):
    printed = io.StringIO()
    call_command("seed_demo", stdout=printed)
    raw_key = settings.CONDUIT_DEMO_KEY_FILE.read_text().strip()
    assert f"Bearer {raw_key}" in printed.getvalue() and "/admin/journeys/journeyrun/" in printed.getvalue()
    journey = Journey.objects.get(name="Abandoned cart")
    assert journey.status == "live" and set(journey.actions.values_list("status", flat=True)) == {"active"}

    event = {"name": "cart_abandoned", "profile_id": "cust-42", "profile": {"first_name": "Ada",
             "phone": "+33600000000", "email": "ada@example.com"}, "data": {"total": 120.5}}  # fmt: skip
    assert key_client(raw_key).post("/api/v1/orgs/acme/events/", event, format="json").status_code == 202
    drain()
    run = JourneyRun.objects.get()
    assert run.status == "waiting"
    JourneyRun.objects.update(due_at=timezone.now())
    drain()
    run.refresh_from_db()
    assert run.status == "completed"
    printed = demo_receiver.getvalue()
    assert "Hi Ada, your cart is waiting for you." in printed
    # Then the email, through the demo SMTP server, as `make run` shows it.
    assert "demo SMTP: from shop@acme.test to ada@example.com subject 'Ada, your cart is waiting'" in printed
    assert "Your cart of 120.5 is still there for you." in printed
    assert [s.step_key for s in run.step_runs.order_by("sequence")][-2:] == ["send_email", "done"]


def test_seed_demo_twice_keeps_one_journey_one_action_and_the_same_key(db, demo_receiver, settings):
    call_command("seed_demo", stdout=io.StringIO())
    first = settings.CONDUIT_DEMO_KEY_FILE.read_text()
    call_command("seed_demo", stdout=io.StringIO())
    assert settings.CONDUIT_DEMO_KEY_FILE.read_text() == first
    assert Journey.objects.filter(name="Abandoned cart").count() == 1
    assert Action.objects.filter(name="Send SMS (demo)").count() == 1
    settings.CONDUIT_DEMO_KEY_FILE.unlink()  # lost: the old key is revoked, a new one written
    call_command("seed_demo", stdout=io.StringIO())
    assert ApiKey.objects.filter(name="Demo shop", revoked_at=None).count() == 1
    assert settings.CONDUIT_DEMO_KEY_FILE.read_text() != first
