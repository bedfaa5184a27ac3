"""The audit trail (issue 20): every audited model changed through the admin, the API and a command leaves one
record with the right actor, door and diff, and no secret value anywhere in the table."""

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.management import call_command
from django.db.models import Max
from django.urls import reverse

from actions.models import Action, EmailSettings, EndpointLimit, SecretValue
from journeys.models import FrequencyCap, Journey, Segment
from tenants.models import ApiKey, AuditRecord, Membership, Organization
from tests.actions.helpers import SMS_ACTION
from tests.actions.test_admin import FORM as ACTION_FORM
from tests.actions.test_admin import TOKEN as ADMIN_FORM_TOKEN
from tests.conftest import World, token_client
from tests.factories import UserFactory

ORG = "/api/v1/orgs/acme"
SMTP_PASSWORD = "smtp-PASSWORD-777"
SECRET_VALUE = "sv-VALUE-31337"


def _shell(code: str) -> None:
    """A change made by a management command (Django's own `shell -c`): no request, so the command door."""
    call_command("shell", command=code, verbosity=0)


def _admin_post(client, user, view: str, data: dict, *args) -> None:
    client.force_login(user)
    response = client.post(reverse(view, args=args), data)
    assert response.status_code == 302, response.content.decode()[:3000]


@dataclass
class Door:
    """One model changed through one door: how, by whom, and what its record must say."""

    model: str
    door: str
    change: Callable[[World, object], None]
    actor: str  # the username, or "" for a command
    field: str
    new: object


def _member(w: World) -> Membership:
    return w.members["viewer"]


SMTP_API = {"host": "smtp.example.com", "port": 587, "security": "starttls", "username": "mailer",
            "password": SMTP_PASSWORD, "default_from": "Acme <hi@acme.test>", "timeout_s": 10}  # fmt: skip
JOURNEY_API = {"name": "Welcome", "entry_event": "signed_up", "steps": [{"key": "done", "type": "end"}],
               "start": "done"}  # fmt: skip

DOORS = [
    # --- actions
    Door("action", "admin", lambda w, c: _admin_post(c, w.user("technical"), "admin:actions_action_add", ACTION_FORM),
         "acme_technical", "name", "Send SMS"),
    Door("action", "api", lambda w, c: token_client(w.user("technical")).post(f"{ORG}/actions/", SMS_ACTION,
                                                                                format="json"),
         "acme_technical", "name", "Send SMS"),
    Door("action", "command", lambda w, c: _shell(
        "from actions.services.actions import action_create; from tenants.models import Organization; "
        "from tests.actions.helpers import SMS_ACTION; "
        "action_create(organization=Organization.objects.get(slug='acme'), data=SMS_ACTION)"),
         "", "name", "Send SMS"),
    # --- secret values
    Door("secret_value", "admin", lambda w, c: _admin_post(
        c, w.user("technical"), "admin:actions_secretvalue_add",
        {"name": "SLACK", "value": SECRET_VALUE, "description": ""}), "acme_technical", "name", "SLACK"),
    Door("secret_value", "api", lambda w, c: token_client(w.user("technical")).post(
        f"{ORG}/secret-values/", {"name": "SLACK", "value": SECRET_VALUE}, format="json"),
         "acme_technical", "name", "SLACK"),
    Door("secret_value", "command", lambda w, c: _shell(
        "from actions.services.secret_values import secret_value_save; from tenants.models import Organization; "
        f"secret_value_save(organization=Organization.objects.get(slug='acme'), "
        f"data={{'name': 'SLACK', 'value': '{SECRET_VALUE}'}})"), "", "name", "SLACK"),
    # --- email settings
    Door("email_settings", "admin", lambda w, c: _admin_post(
        c, w.user("technical"), "admin:actions_emailsettings_add", SMTP_API), "acme_technical", "host",
         "smtp.example.com"),
    Door("email_settings", "api", lambda w, c: token_client(w.user("technical")).put(
        f"{ORG}/email-settings/", SMTP_API, format="json"), "acme_technical", "host", "smtp.example.com"),
    Door("email_settings", "command", lambda w, c: _shell(
        "from actions.services.email_settings import email_settings_save; from tenants.models import Organization; "
        "from tests.tenants.test_audit_trail import SMTP_API; "
        "email_settings_save(organization=Organization.objects.get(slug='acme'), data=SMTP_API)"),
         "", "host", "smtp.example.com"),
    # --- endpoint limits
    Door("endpoint_limit", "admin", lambda w, c: _admin_post(
        c, w.user("technical"), "admin:actions_endpointlimit_add",
        {"host": "api.example.com", "calls": "5", "period_s": "60", "max_concurrent": "10"}),
         "acme_technical", "calls", 5),
    Door("endpoint_limit", "api", lambda w, c: token_client(w.user("technical")).post(
        f"{ORG}/endpoint-limits/", {"host": "api.example.com", "calls": 5}, format="json"), "acme_technical",
         "calls", 5),
    Door("endpoint_limit", "command", lambda w, c: _shell(
        "from actions.services.endpoint_limits import endpoint_limit_create; "
        "from tenants.models import Organization; endpoint_limit_create("
        "organization=Organization.objects.get(slug='acme'), data={'host': 'api.example.com', 'calls': 5})"),
         "", "calls", 5),
    # --- journeys
    Door("journey", "admin", lambda w, c: _admin_post(
        c, w.user("marketer"), "admin:journeys_journey_add",
        {"name": "Welcome", "entry_event": "signed_up", "reentry": "after_exit"}), "acme_marketer", "name", "Welcome"),
    Door("journey", "api", lambda w, c: token_client(w.user("marketer")).post(
        f"{ORG}/journeys/", JOURNEY_API, format="json"), "acme_marketer", "name", "Welcome"),
    Door("journey", "command", lambda w, c: _shell(
        "from journeys.services import journey_create; from tenants.models import Organization; "
        "from tests.tenants.test_audit_trail import JOURNEY_API; "
        "journey_create(organization=Organization.objects.get(slug='acme'), data=JOURNEY_API)"),
         "", "name", "Welcome"),
    # --- segments
    Door("segment", "admin", lambda w, c: _admin_post(
        c, w.user("marketer"), "admin:journeys_segment_add",
        {"name": "French", "description": "", "expression": 'profile.country == "FR"'}), "acme_marketer", "name",
         "French"),
    Door("segment", "api", lambda w, c: token_client(w.user("marketer")).post(
        f"{ORG}/segments/", {"name": "French", "expression": 'profile.country == "FR"'}, format="json"),
         "acme_marketer", "name", "French"),
    Door("segment", "command", lambda w, c: _shell(
        "from journeys.audience.segments import segment_create; from tenants.models import Organization; "
        "segment_create(organization=Organization.objects.get(slug='acme'), "
        "data={'name': 'French', 'expression': 'profile.country == \"FR\"'})"), "", "name", "French"),
    # --- frequency caps
    Door("frequency_cap", "admin", lambda w, c: _admin_post(
        c, w.user("technical"), "admin:journeys_frequencycap_add",
        {"category": "marketing-sms", "max_calls": "3", "period_days": "7"}), "acme_technical", "max_calls", 3),
    Door("frequency_cap", "api", lambda w, c: token_client(w.user("technical")).post(
        f"{ORG}/frequency-caps/", {"category": "marketing-sms", "max_calls": 3, "period_days": 7}, format="json"),
         "acme_technical", "max_calls", 3),
    Door("frequency_cap", "command", lambda w, c: _shell(
        "from journeys.frequency_caps.services import frequency_cap_create; from tenants.models import Organization; "
        "frequency_cap_create(organization=Organization.objects.get(slug='acme'), "
        "data={'category': 'marketing-sms', 'max_calls': 3, 'period_days': 7})"), "", "max_calls", 3),
    # --- members
    Door("member", "admin", lambda w, c: _admin_post(
        c, w.user("admin"), "admin:tenants_membership_change", {"role": "marketer"}, _member(w).pk),
         "acme_admin", "role", "marketer"),
    Door("member", "api", lambda w, c: token_client(w.user("admin")).patch(
        f"{ORG}/members/{_member(w).pk}/", {"role": "marketer"}, format="json"), "acme_admin", "role", "marketer"),
    Door("member", "command", lambda w, c: call_command("member_add", "acme", "newcomer", "--role", "viewer",
                                                        stdout=open("/dev/null", "w")),  # noqa: SIM115
         "", "role", "viewer"),
    # --- API keys
    Door("api_key", "admin", lambda w, c: _admin_post(
        c, w.user("admin"), "admin:tenants_apikey_add", {"name": "shop", "scopes": ["read"]}), "acme_admin",
         "name", "shop"),
    Door("api_key", "api", lambda w, c: token_client(w.user("admin")).post(
        f"{ORG}/api-keys/", {"name": "shop", "scopes": ["read"]}, format="json"), "acme_admin", "name", "shop"),
    Door("api_key", "command", lambda w, c: _shell(
        "from tenants.services import api_key_create; from tenants.models import Organization; "
        "api_key_create(organization=Organization.objects.get(slug='acme'), name='shop', scopes=['read'])"),
         "", "name", "shop"),
    # --- the organization's settings (platform staff in the admin; its admins in the API)
    Door("organization", "admin", lambda w, c: _admin_post(
        c, UserFactory(username="staff", is_superuser=True, is_staff=True), "admin:tenants_organization_change",
        {"slug": "acme", "name": "Acme Corp", "is_active": "on", "default_time_zone": "Europe/Paris",
         "time_zone_attribute": "timezone"}, w.acme.pk), "staff", "name", "Acme Corp"),
    Door("organization", "api", lambda w, c: token_client(w.user("admin")).patch(
        f"{ORG}/", {"default_time_zone": "Europe/Paris"}, format="json"), "acme_admin", "default_time_zone",
         "Europe/Paris"),
    Door("organization", "command", lambda w, c: call_command("org_create", "initech", "Initech",
                                                              stdout=open("/dev/null", "w")),  # noqa: SIM115
         "", "name", "Initech"),
]  # fmt: skip


def _new_records(since_id: int):
    return AuditRecord.objects.filter(pk__gt=since_id).order_by("pk")


def _last_id() -> int:
    return AuditRecord.objects.aggregate(last=Max("pk"))["last"] or 0


@pytest.mark.parametrize("door", DOORS, ids=[f"{d.model}-{d.door}" for d in DOORS])
def test_a_change_through_each_door_leaves_one_record_with_its_actor_door_and_diff(world, client, door):
    before = _last_id()
    response = door.change(world, client)
    if response is not None:
        assert response.status_code in (200, 201), response.content
    records = list(_new_records(before))
    assert len(records) == 1, [(r.object_type, r.changes) for r in records]
    record = records[0]
    assert (record.object_type, record.door, record.actor_name) == (door.model, door.door, door.actor)
    assert record.actor_type == ("user" if door.actor else "")
    assert record.changes[door.field][1] == door.new
    expected_org = Organization.objects.get(slug="initech").pk if record.object_repr == "Initech" else world.acme.pk
    assert record.organization_id == expected_org
    assert record.object_id is not None and record.object_repr


def _table_text() -> str:
    rows = AuditRecord.objects.values()
    return json.dumps([{k: str(v) for k, v in row.items()} for row in rows])


def test_no_secret_value_is_ever_recorded(world, client):
    technical = token_client(world.user("technical"))
    sms = {**SMS_ACTION, "auth": {"type": "bearer", "token": "tok-FIRST-0001"}, "signing_secret": "generate"}
    action = technical.post(f"{ORG}/actions/", sms, format="json").json()
    signing_secret = Action.objects.get(pk=action["id"]).signing_secret
    technical.patch(f"{ORG}/actions/{action['id']}/", {"auth": {"type": "bearer", "token": "tok-SECOND-0002"}},
                    format="json")  # fmt: skip
    _admin_post(client, world.user("technical"), "admin:actions_action_add", {**ACTION_FORM, "name": "Admin SMS"})
    secret = technical.post(f"{ORG}/secret-values/", {"name": "SLACK", "value": SECRET_VALUE}, format="json").json()
    technical.patch(f"{ORG}/secret-values/{secret['id']}/", {"value": "sv-NEWER-4242"}, format="json")
    technical.put(f"{ORG}/email-settings/", SMTP_API, format="json")
    created = token_client(world.user("admin")).post(f"{ORG}/api-keys/", {"name": "shop", "scopes": ["read"]},
                                                     format="json").json()  # fmt: skip
    key_hash = ApiKey.objects.get(pk=created["id"]).key_hash

    text = _table_text()
    for value in ["tok-FIRST-0001", "tok-SECOND-0002", ADMIN_FORM_TOKEN, signing_secret, SECRET_VALUE,
                  "sv-NEWER-4242", SMTP_PASSWORD, created["key"], key_hash]:  # fmt: skip
        assert value not in text
    # Named, and shown as changed: the secret value's new value, the action's new token, the SMTP password.
    updates = AuditRecord.objects.filter(action=AuditRecord.Action.UPDATE)
    assert updates.get(object_type="secret_value").changes == {"value": [None, "changed"]}
    assert updates.get(object_type="action").changes == {"auth_secrets": [None, "changed"]}
    smtp = AuditRecord.objects.get(object_type="email_settings")
    assert smtp.changes["password"] == [None, "changed"] and smtp.changes["username"] == [None, "mailer"]
    assert "key_hash" not in AuditRecord.objects.get(object_type="api_key").changes


def test_a_delete_is_recorded_with_what_was_deleted(world):
    technical = token_client(world.user("technical"))
    limit = technical.post(f"{ORG}/endpoint-limits/", {"host": "api.example.com", "calls": 5}, format="json").json()
    before = _last_id()
    assert technical.delete(f"{ORG}/endpoint-limits/{limit['id']}/").status_code == 204
    (record,) = _new_records(before)
    assert (record.action, record.object_type, record.object_id) == (AuditRecord.Action.DELETE, "endpoint_limit",
                                                                      limit["id"])  # fmt: skip
    assert record.changes["host"] == ["api.example.com", None]
    assert not EndpointLimit.objects.exists()


def test_publishing_a_new_version_records_the_old_one_closing(world):
    marketer = token_client(world.user("marketer"))
    journey = marketer.post(f"{ORG}/journeys/", JOURNEY_API, format="json").json()
    marketer.post(f"{ORG}/journeys/{journey['id']}/publish/")
    draft = marketer.post(f"{ORG}/journeys/{journey['id']}/new-version/").json()
    marketer.post(f"{ORG}/journeys/{draft['id']}/publish/")
    closing = AuditRecord.objects.get(
        object_type="journey", object_id=journey["id"], changes__status=["live", "closed"]
    )
    assert closing.door == "api" and closing.actor_name == "acme_marketer"


def test_every_audited_model_is_covered_here():
    from tenants.audit.registry import object_types

    assert set(object_types()) == {d.model for d in DOORS}
    assert {m._meta.label for m in object_types().values()} == {
        m._meta.label
        for m in (
            Action,
            SecretValue,
            EmailSettings,
            EndpointLimit,
            Journey,
            Segment,
            FrequencyCap,
            Membership,
            ApiKey,
            Organization,
        )
    }
