"""The audit trail beside real Celery workers: runs, calls and an API key's use are not configuration changes, so
the trail records none of them, and an edit made while the workers run is recorded once, as it was made."""

import pytest

from journeys.models import JourneyRun
from tenants.models import AuditRecord
from tenants.services import api_key_create
from tests.conftest import key_client, token_client
from tests.journeys.helpers import PARAMETERS, action, live_journey, receiver  # noqa: F401  (fixtures)
from tests.workers import wait_for

pytestmark = pytest.mark.worker


def test_a_journey_run_by_a_real_worker_leaves_only_the_edit_made_meanwhile(workers, world, action, receiver):  # noqa: F811
    steps = [{"key": "sms", "type": "action", "action": action.pk, "parameters": PARAMETERS, "next": "done",
              "on_error": "done"}, {"key": "done", "type": "end"}]  # fmt: skip
    live_journey(world, steps, "sms")
    shop = key_client(api_key_create(organization=world.acme, name="shop", scopes=["events:write"])[1])
    before = AuditRecord.objects.order_by("-pk").values_list("pk", flat=True).first()
    workers.start()

    events = [{"name": "cart_abandoned", "profile_id": f"cust-{n}", "profile": {"phone": "+33600000000",
               "first_name": "Ada"}} for n in range(3)]  # fmt: skip
    assert shop.post("/api/v1/orgs/acme/events/", events, format="json").status_code == 202
    edited = token_client(world.user("technical")).patch(
        f"/api/v1/orgs/acme/actions/{action.pk}/", {"description": "Edited while calls go out."}, format="json"
    )
    assert edited.status_code == 200
    wait_for(lambda: JourneyRun.objects.filter(status=JourneyRun.Status.COMPLETED).count() == 3, timeout=60,
             message="three runs to complete")  # fmt: skip
    assert len(receiver) == 3

    records = list(AuditRecord.objects.filter(pk__gt=before))
    assert [(r.object_type, r.door, r.actor_name, r.changes) for r in records] == [
        ("action", "api", "acme_technical", {"description": ["Sends a text message.", "Edited while calls go out."]})
    ]
