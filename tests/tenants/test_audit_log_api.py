"""GET /api/v1/orgs/{org}/audit-log/: admin and technical roles, scoped to the organization, filtered, read only."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils import timezone

from actions.models import Action
from actions.services.endpoint_limits import endpoint_limit_create, endpoint_limit_update
from tenants.audit.context import AuditDoorMiddleware, audited_as
from tenants.models import AuditRecord
from tenants.services import api_key_create
from tests.actions.helpers import SMS_ACTION, make_action
from tests.conftest import key_client, token_client

LOG = "/api/v1/orgs/acme/audit-log/"


@pytest.fixture
def limit(world):
    """An endpoint limit made through the API by acme's technical user, then edited: two records."""
    technical = token_client(world.user("technical"))
    created = technical.post("/api/v1/orgs/acme/endpoint-limits/", {"host": "api.example.com", "calls": 5},
                             format="json").json()  # fmt: skip
    technical.patch(f"/api/v1/orgs/acme/endpoint-limits/{created['id']}/", {"calls": 7}, format="json")
    return created


@pytest.mark.parametrize("role, status", [("admin", 200), ("technical", 200), ("marketer", 403), ("viewer", 403)])
def test_admin_and_technical_read_the_log_and_lesser_roles_get_403(world, role, status):
    response = token_client(world.user(role)).get(LOG)
    assert response.status_code == status
    if status == 403:
        assert response.json()["detail"].startswith("Your role")


def test_an_update_reads_as_who_when_which_door_and_what_changed(world, limit):
    results = token_client(world.user("admin")).get(LOG, {"object_type": "endpoint_limit"}).json()["results"]
    update, create = results
    assert update["change"] == "updated" and create["change"] == "created"
    assert update["object_id"] == limit["id"] and update["object_repr"] == "api.example.com: 7 per 60 s"
    assert (update["door"], update["actor"], update["actor_type"]) == ("api", "acme_technical", "user")
    assert update["changes"] == {"calls": [5, 7]}
    assert update["at"] >= create["at"]


def test_another_organization_gets_404_and_never_sees_acme_records(world, limit):
    globex = token_client(world.globex_admin.user)
    assert globex.get(LOG).status_code == 404
    record = AuditRecord.objects.filter(organization=world.acme).first()
    assert globex.get(f"{LOG}{record.pk}/").status_code == 404
    assert globex.get(f"/api/v1/orgs/globex/audit-log/{record.pk}/").status_code == 404
    listed = globex.get("/api/v1/orgs/globex/audit-log/").json()["results"]
    assert listed and all(r["object_repr"] != "api.example.com: 7 per 60 s" for r in listed)
    assert {r["object_type"] for r in listed} <= {"organization", "member"}


def test_an_api_key_cannot_read_the_log(world):
    raw = api_key_create(organization=world.acme, name="reader", scopes=["read"])[1]
    assert key_client(raw).get(LOG).status_code == 403


def test_records_are_read_only_through_the_api(world, limit):
    admin = token_client(world.user("admin"))
    record = AuditRecord.objects.filter(organization=world.acme).first()
    assert admin.post(LOG, {}, format="json").status_code == 405
    for method in ("put", "patch", "delete"):
        assert getattr(admin, method)(f"{LOG}{record.pk}/", {}, format="json").status_code == 405
    assert admin.get(f"{LOG}{record.pk}/").json()["id"] == record.pk


def test_filters_by_object_actor_and_time(world, limit):
    admin = token_client(world.user("admin"))

    def listed(**params):
        return [(r["object_type"], r["change"]) for r in admin.get(LOG, params).json()["results"]]

    make_action(world.acme)  # by a command (no request): no actor
    assert listed(object_type="endpoint_limit", object_id=limit["id"]) == [("endpoint_limit", "updated"),
                                                                         ("endpoint_limit", "created")]  # fmt: skip
    assert listed(actor="acme_technical") == [("endpoint_limit", "updated"), ("endpoint_limit", "created")]
    assert listed(actor="nobody") == []
    assert ("action", "created") in listed(object_type="action")
    first = AuditRecord.objects.filter(organization=world.acme, object_type="endpoint_limit").order_by("pk").first()
    after = (first.timestamp + timedelta(microseconds=1)).isoformat()
    assert ("endpoint_limit", "created") not in listed(since=after, object_type="endpoint_limit")
    assert listed(until=first.timestamp.isoformat(), object_type="endpoint_limit") == []
    assert listed(since=(timezone.now() + timedelta(days=1)).isoformat()) == []


@pytest.mark.parametrize(
    "params, field",
    [({"since": "yesterday"}, "since"), ({"until": "13/13/2026"}, "until"), ({"object_type": "invoice"}, "object_type"),
     ({"object_id": "x"}, "object_id"), ({"object_id": str(2**70)}, "object_id"), ({"actor": "a" * 201}, "actor")],
)  # fmt: skip
def test_bad_filter_values_are_a_400_naming_the_parameter(world, params, field):
    response = token_client(world.user("technical")).get(LOG, params)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_an_api_key_is_recorded_as_the_actor_when_it_makes_a_change(world):
    key = api_key_create(organization=world.acme, name="deploy", scopes=["read"])[0]

    def view(request):
        request.user, request.auth = AnonymousUser(), key  # as DRF sets them once the key is authenticated
        endpoint_limit_create(organization=world.acme, data={"host": "hooks.example.com", "calls": 9})
        return HttpResponse(status=201)

    AuditDoorMiddleware(view)(RequestFactory().post("/api/v1/orgs/acme/endpoint-limits/"))
    record = AuditRecord.objects.get(object_type="endpoint_limit")
    assert (record.door, record.actor_type, record.api_key, record.actor) == ("api", "api_key", key, None)
    results = token_client(world.user("admin")).get(LOG, {"actor": key.prefix}).json()["results"]
    assert [(r["actor"], r["actor_type"]) for r in results] == [(str(key), "api_key")]


def test_the_actor_name_stays_when_the_user_is_deleted(world):
    limit = endpoint_limit_create(organization=world.acme, data={"host": "api.example.com", "calls": 5})
    leaver = world.user("technical")
    with audited_as(door="admin", user=leaver):
        endpoint_limit_update(endpoint_limit=limit, data={"calls": 6})
    leaver.delete()
    record = AuditRecord.objects.get(object_type="endpoint_limit", action=AuditRecord.Action.UPDATE)
    assert (record.actor, record.actor_name, record.actor_type) == (None, "acme_technical", "user")


def test_a_record_is_never_changed_once_written(world, limit):
    record = AuditRecord.objects.filter(organization=world.acme).first()
    record.object_repr = "forged"
    with pytest.raises(ValueError, match="written once"):
        record.save()


def test_an_action_is_restored_through_the_api_and_only_by_those_who_read_the_log(world):
    technical = token_client(world.user("technical"))
    action = technical.post("/api/v1/orgs/acme/actions/", SMS_ACTION, format="json").json()
    technical.patch(f"/api/v1/orgs/acme/actions/{action['id']}/", {"description": "Newer."}, format="json")
    first = AuditRecord.objects.filter(object_type="action", object_id=action["id"]).order_by("pk").first()

    assert token_client(world.user("marketer")).post(f"{LOG}{first.pk}/restore/").status_code == 403
    assert token_client(world.globex_admin.user).post(f"{LOG}{first.pk}/restore/").status_code == 404
    response = technical.post(f"{LOG}{first.pk}/restore/")
    assert response.status_code == 200
    assert response.json() == {"object_type": "action", "object_id": action["id"], "object_repr": "Send SMS"}
    assert Action.objects.get(pk=action["id"]).description == SMS_ACTION["description"]
    last = AuditRecord.objects.filter(object_type="action").order_by("pk").last()
    assert (last.door, last.actor_name, last.changes) == (
        "api",
        "acme_technical",
        {"description": ["Newer.", SMS_ACTION["description"]]},
    )


def test_a_record_of_an_object_that_cannot_be_restored_is_a_409(world, limit):
    record = AuditRecord.objects.filter(object_type="endpoint_limit").first()
    response = token_client(world.user("admin")).post(f"{LOG}{record.pk}/restore/")
    assert response.status_code == 409 and "Only an action or a journey" in response.json()["detail"]


def test_only_operators_prune_old_records_from_the_command_line(world, limit):
    kept = AuditRecord.objects.count()
    call_command("auditlogflush", "--before-date", "2000-01-01", "--yes", stdout=StringIO())
    assert AuditRecord.objects.count() == kept
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    call_command("auditlogflush", "--before-date", tomorrow, "--yes", stdout=StringIO())
    assert not AuditRecord.objects.exists()
