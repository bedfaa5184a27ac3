"""The audit trail in the admin: History pages scoped to the organization, the read-only trail, and restores."""

import pytest
from django.contrib import admin
from django.urls import reverse

from actions.models import Action
from journeys.models import Journey
from tenants.audit.admin import AuditHistoryAdminMixin
from tenants.models import AuditRecord
from tests.actions.helpers import SMS_ACTION
from tests.conftest import token_client

ORG = "/api/v1/orgs/acme"
STEPS_V1 = [{"key": "done", "type": "end"}]
STEPS_V2 = [{"key": "hello", "type": "wait", "duration_s": 60, "next": "done"}, {"key": "done", "type": "end"}]


@pytest.fixture
def action(world) -> Action:
    """Made and then edited through the API by the technical user: two versions in its history."""
    technical = token_client(world.user("technical"))
    created = technical.post(f"{ORG}/actions/", SMS_ACTION, format="json").json()
    technical.patch(f"{ORG}/actions/{created['id']}/", {"description": "Second wording.", "timeout_ms": 2000,
                                                        "auth": {"type": "bearer", "token": "tok-NEW-987654"}},
                    format="json")  # fmt: skip
    return Action.objects.get(pk=created["id"])


def _history(model: str, pk: int) -> str:
    return reverse(f"admin:{model}_history", args=[pk])


def _records(obj) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(object_type=obj._meta.model_name, object_id=obj.pk).order_by("pk"))


def test_an_actions_history_shows_who_when_the_door_and_the_diff_without_secrets(world, client, action):
    client.force_login(world.user("technical"))
    html = client.get(_history("actions_action", action.pk)).content.decode()
    assert "acme_technical" in html and "API" in html
    assert "Second wording." in html and "Sends a text message." in html
    assert "changed (secret, not shown)" in html
    assert "tok-SECRET-123456" not in html and "tok-NEW-987654" not in html
    assert html.count("Restore this version") == 2


def test_another_organizations_history_is_404_and_its_records_absent_from_the_trail(world, client, action):
    client.force_login(world.globex_admin.user)
    assert client.get(_history("actions_action", action.pk)).status_code == 404
    trail = client.get(reverse("admin:tenants_auditrecord_changelist")).content.decode()
    assert "Send SMS" not in trail and "acme_technical" not in trail
    acme_record = _records(action)[0]
    assert client.get(reverse("admin:tenants_auditrecord_change", args=[acme_record.pk])).status_code == 302


def test_lesser_roles_do_not_see_histories_or_the_trail(world, client, action):
    journey = token_client(world.user("marketer")).post(
        f"{ORG}/journeys/", {"name": "Welcome", "entry_event": "signed_up", "steps": STEPS_V1, "start": "done"},
        format="json",
    ).json()  # fmt: skip
    client.force_login(world.user("marketer"))
    assert client.get(_history("actions_action", action.pk)).status_code == 403
    assert client.get(_history("journeys_journey", journey["id"])).status_code == 403
    assert client.get(reverse("admin:tenants_auditrecord_changelist")).status_code == 403


def test_the_trail_is_read_only_in_the_admin(world, client, action):
    client.force_login(world.user("admin"))
    record = _records(action)[0]
    listing = client.get(reverse("admin:tenants_auditrecord_changelist")).content.decode()
    assert "Send SMS" in listing and "globex" not in listing.lower()
    assert client.get(reverse("admin:tenants_auditrecord_add")).status_code == 403
    page = client.get(reverse("admin:tenants_auditrecord_change", args=[record.pk])).content.decode()
    assert 'name="_save"' not in page and "Send SMS" in page
    delete = reverse("admin:tenants_auditrecord_delete", args=[record.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert AuditRecord.objects.filter(pk=record.pk).exists()


def test_an_action_is_restored_to_an_earlier_version_and_the_restore_is_recorded(world, client, action):
    first, _second = _records(action)
    client.force_login(world.user("technical"))
    restore = reverse("admin:actions_action_audit_restore", args=[action.pk, first.pk])
    assert client.get(restore).status_code == 405
    response = client.post(restore)
    assert response.status_code == 302 and response["Location"] == reverse("admin:actions_action_change",
                                                                             args=[action.pk])  # fmt: skip
    action.refresh_from_db()
    assert (action.description, action.timeout_ms) == ("Sends a text message.", 10_000)
    assert action.auth_secrets == {"token": "tok-NEW-987654"}  # the trail keeps no secret: the current one stays
    restored = _records(action)[-1]
    assert (restored.door, restored.actor_name) == ("admin", "acme_technical")
    assert restored.changes == {
        "description": ["Second wording.", "Sends a text message."],
        "timeout_ms": [2000, 10000],
    }


def test_a_journey_draft_is_restored_and_a_live_journey_restores_into_a_new_draft(world, client):
    marketer = token_client(world.user("marketer"))
    document = {"name": "Welcome", "entry_event": "signed_up", "steps": STEPS_V1, "start": "done"}
    journey = Journey.objects.get(pk=marketer.post(f"{ORG}/journeys/", document, format="json").json()["id"])
    marketer.patch(f"{ORG}/journeys/{journey.pk}/", {"steps": STEPS_V2, "start": "hello", "name": "Hello"},
                   format="json")  # fmt: skip
    first = _records(journey)[0]
    client.force_login(world.user("technical"))

    response = client.post(reverse("admin:journeys_journey_audit_restore", args=[journey.pk, first.pk]))
    assert response["Location"] == reverse("admin:journeys_journey_change", args=[journey.pk])
    journey.refresh_from_db()
    assert (journey.name, journey.steps, journey.start, journey.status) == ("Welcome", STEPS_V1, "done", "draft")

    # Live, it never changes: the restore goes into a draft of a new version, which replaces it when published.
    marketer.patch(f"{ORG}/journeys/{journey.pk}/", {"steps": STEPS_V2, "start": "hello"}, format="json")
    marketer.post(f"{ORG}/journeys/{journey.pk}/publish/")
    response = client.post(reverse("admin:journeys_journey_audit_restore", args=[journey.pk, first.pk]))
    draft = Journey.objects.get(previous=journey)
    assert response["Location"] == reverse("admin:journeys_journey_change", args=[draft.pk])
    assert (draft.status, draft.steps, draft.version) == ("draft", STEPS_V1, 2)
    journey.refresh_from_db()
    assert (journey.status, journey.steps) == ("live", STEPS_V2)


def test_a_version_that_no_longer_passes_the_rules_is_refused_with_the_reason(world, client, action):
    first = _records(action)[0]
    action.organization.actions.exclude(pk=action.pk).delete()
    technical = token_client(world.user("technical"))
    technical.patch(f"{ORG}/actions/{action.pk}/", {"name": "Renamed"}, format="json")
    technical.post(f"{ORG}/actions/", {**SMS_ACTION, "name": "Send SMS"}, format="json")  # takes the old name
    client.force_login(world.user("technical"))
    response = client.post(reverse("admin:actions_action_audit_restore", args=[action.pk, first.pk]), follow=True)
    assert "cannot be restored" in response.content.decode() and "already has an action named" in (
        response.content.decode()
    )
    action.refresh_from_db()
    assert action.name == "Renamed"


def test_a_history_page_exists_for_every_audited_model(world, client):
    from tenants.audit.registry import object_types

    client.force_login(world.user("admin"))
    membership = world.members["viewer"]
    assert client.get(_history("tenants_membership", membership.pk)).status_code == 200
    assert client.get(_history("tenants_organization", world.acme.pk)).status_code == 200
    assert client.get(_history("tenants_organization", world.globex.pk)).status_code == 404
    for model in object_types().values():
        assert isinstance(admin.site.get_model_admin(model), AuditHistoryAdminMixin), model
