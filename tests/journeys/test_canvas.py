"""The canvas's endpoint: it reads and saves the journey document through the services, scoped to the
organization, for roles that may edit; problems come back by step; the side panel saves in place."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from journeys.models import Journey
from journeys.services import journey_create
from tests.journeys.helpers import live_journey

STEPS = [
    {"key": "pause", "type": "wait", "duration_s": 60, "next": "done"},
    {"key": "done", "type": "end"},
]


def url(view: str, *args) -> str:
    return reverse(f"admin:journeys_journey_{view}", args=args)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def draft(world):
    return journey_create(organization=world.acme, data={"name": "Cart", "entry_event": "cart_abandoned",
                                                         "steps": STEPS, "start": "pause"})  # fmt: skip


def save(client, journey, body, **extra):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(url("canvas", journey.pk), raw, content_type="application/json", **extra)


def test_a_marketer_saves_steps_links_and_positions_in_one_document(world, draft):
    steps = [*STEPS, {"key": "check", "type": "condition", "branches": [{"expression": "", "next": "done"}]}]
    steps[0] = {**steps[0], "next": "check"}
    layout = {"pause": {"x": 240, "y": 30}, "check": {"x": 520, "y": 30}, "done": {"x": 800.5, "y": -10}}
    answer = save(logged_in(world.user("marketer")), draft, {"steps": steps, "start": "pause", "layout": layout})

    assert answer.status_code == 200, answer.content
    draft.refresh_from_db()
    assert draft.steps == steps and draft.layout == layout
    body = answer.json()
    assert body["steps"] == steps and body["layout"] == layout and body["editable"] is True
    # A branch just drawn has no expression yet: saved, and named on its step as a problem to fix.
    assert "branches[0].expression: an expression is required" in body["problems"]["check"]
    assert "else: say where to go when no branch matches" in body["problems"]["check"]
    assert "pause" not in body["problems"]


def test_the_document_read_back_has_the_palette_of_active_actions_and_no_configuration(world, draft):
    from actions.services.actions import action_create

    action_create(organization=world.acme, data={"name": "Send SMS", "description": "Texts.", "status": "active",
                                                 "url": "https://sms.example/secret-path", "body": {}})  # fmt: skip
    action_create(organization=world.acme, data={"name": "Old", "status": "archived", "url": "https://x.example/"})
    action_create(organization=world.globex, data={"name": "Theirs", "status": "active", "url": "https://x.example/"})
    body = logged_in(world.user("marketer")).get(url("canvas", draft.pk)).json()

    assert [a["name"] for a in body["palette"]["actions"]] == ["Send SMS"]
    assert body["palette"]["actions"][0]["description"] == "Texts."
    assert [s["type"] for s in body["palette"]["steps"]] == ["condition", "wait", "split", "wait_event", "jump", "end"]
    assert "secret-path" not in json.dumps(body) and "Theirs" not in json.dumps(body)


def test_bad_documents_get_a_400_naming_the_step_and_nothing_stored_changes(world, draft):
    marketer = logged_in(world.user("marketer"))
    cases = [
        (b"{not json", "not JSON"),
        (b"[" * 5000, "not JSON"),
        ({"steps": STEPS, "name": "renamed"}, "steps, start and layout, nothing else"),
        ({}, "steps, start and layout"),
        ({"steps": [{"key": "pause", "type": "wait", "duration_s": "soon", "next": "done"}]}, "pause"),
        ({"steps": [{"key": "a\u0000", "type": "end"}]}, "\\u0000"),
        ({"steps": STEPS, "layout": {"pause": {"x": "left", "y": 0}}}, "layout.pause.x"),
        ({"steps": [{"key": "c", "type": "condition", "branches": [{"expression": "1 +", "next": ""}]}]}, "c"),
    ]
    for body, named in cases:
        answer = save(marketer, draft, body)
        assert answer.status_code == 400, (body, answer.content)
        found = answer.json()
        assert named in json.dumps(found, ensure_ascii=True) or named in json.dumps(found), (named, found)
    draft.refresh_from_db()
    assert draft.steps == STEPS and draft.name == "Cart"


def test_a_huge_document_is_refused_before_it_is_read(world, draft):
    answer = save(logged_in(world.user("marketer")), draft, b'{"steps": "' + b"x" * 1_100_000 + b'"}')
    assert answer.status_code == 413 and "1,000,000 bytes" in answer.json()["general"][0]


def test_a_live_journey_cannot_be_changed_from_the_canvas(world):
    live = live_journey(world, STEPS, "pause")
    marketer = logged_in(world.user("marketer"))
    assert marketer.get(url("canvas", live.pk)).json()["editable"] is False
    answer = save(marketer, live, {"steps": STEPS[1:], "start": "done"})
    assert answer.status_code == 409 and "Make a new version" in answer.json()["general"][0]
    assert Journey.objects.get(pk=live.pk).steps == STEPS


def test_a_viewer_reads_the_canvas_but_cannot_save_it(world, draft):
    viewer = logged_in(world.user("viewer"))
    assert viewer.get(url("canvas", draft.pk)).json()["editable"] is False
    assert save(viewer, draft, {"steps": []}).status_code == 403
    assert Journey.objects.get(pk=draft.pk).steps == STEPS


def test_another_organization_gets_404(world, draft):
    theirs = logged_in(world.globex_admin.user)
    assert theirs.get(url("canvas", draft.pk)).status_code == 404
    assert save(theirs, draft, {"steps": []}).status_code == 404
    assert theirs.get(url("step", draft.pk, "pause") + "?panel=1").status_code == 404
    assert Journey.objects.get(pk=draft.pk).steps == STEPS


def test_the_canvas_needs_the_admin_csrf_token(world, draft):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.user("marketer"))
    assert save(client, draft, {"steps": []}).status_code == 403
    token = client.get(url("change", draft.pk)).cookies["csrftoken"].value
    assert save(client, draft, {"steps": STEPS, "start": "pause"}, HTTP_X_CSRFTOKEN=token).status_code == 200


def test_the_side_panel_is_the_step_form_alone_and_saves_in_place(world, draft):
    marketer = logged_in(world.user("marketer"))
    panel = marketer.get(url("step", draft.pk, "pause") + "?panel=1")
    text = panel.content.decode()
    assert panel.status_code == 200 and "<html" not in text and 'name="duration_s"' in text

    saved = marketer.post(url("step", draft.pk, "pause") + "?panel=1", {"duration_s": "5", "next": "done"})
    assert saved.status_code == 200 and saved["X-Journey-Saved"] == "1" and "Step pause saved." in saved.text
    assert Journey.objects.get(pk=draft.pk).steps[0]["duration_s"] == 5

    refused = marketer.post(url("step", draft.pk, "pause") + "?panel=1", {"duration_s": "-1", "next": "done"})
    assert refused.status_code == 200 and "X-Journey-Saved" not in refused
    assert 'class="form-row errors field-duration_s"' in refused.text

    deleted = marketer.post(url("step", draft.pk, "done") + "?panel=1", {"_delete": "1"})
    assert deleted["X-Journey-Saved"] == "1" and "Step done deleted." in deleted.text
    assert [s["key"] for s in Journey.objects.get(pk=draft.pk).steps] == ["pause"]


def test_a_split_drawn_with_more_branches_than_the_form_usually_shows_keeps_them_all_when_its_panel_is_saved(world):
    shares = [{"percent": 20, "next": "done"} for _ in range(5)]
    steps = [{"key": "share", "type": "split", "branches": shares}, {"key": "done", "type": "end"}]
    draft = journey_create(organization=world.acme, data={"name": "Five ways", "entry_event": "signup",
                                                         "steps": steps, "start": "share"})  # fmt: skip
    marketer = logged_in(world.user("marketer"))
    assert 'name="branch4_percent"' in marketer.get(url("step", draft.pk, "share") + "?panel=1").text

    fields = {f"branch{n}_percent": "20" for n in range(5)} | {f"branch{n}_next": "done" for n in range(5)}
    saved = marketer.post(url("step", draft.pk, "share") + "?panel=1", {**fields, "branch4_percent": "10"})
    assert saved["X-Journey-Saved"] == "1"
    assert Journey.objects.get(pk=draft.pk).steps[0]["branches"] == [*shares[:4], {"percent": 10, "next": "done"}]


def test_a_viewer_panel_has_no_form(world, draft):
    text = logged_in(world.user("viewer")).get(url("step", draft.pk, "pause") + "?panel=1").content.decode()
    assert "<form" not in text and 'type="submit"' not in text and "Read-only" in text
