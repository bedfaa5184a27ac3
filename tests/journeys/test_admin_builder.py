"""The journey builder in the admin, through Django's test client: forms only, never JSON."""

import re

import pytest
from django.urls import reverse

from journeys.models import Journey
from tests.actions.helpers import make_action
from tests.journeys.helpers import cart_steps, drain, live_journey, send


def url(view: str, *args) -> str:
    return reverse(f"admin:journeys_journey_{view}", args=args)


@pytest.fixture
def marketer(world, client):
    client.force_login(world.user("marketer"))
    return client


def post_ok(client, path, data):
    response = client.post(path, data)
    assert response.status_code == 302, re.findall(r'class="errorlist[^"]*">(.*?)</ul>', response.content.decode())
    return response


def add_step(client, journey, key, kind):
    response = post_ok(client, url("new_step", journey.pk), {"key": key, "type": kind})
    assert response["Location"] == url("step", journey.pk, key)


def field_errors(response, field: str) -> str:
    html = response.content.decode()
    found = re.search(rf'form-row errors field-{field}">\s*<ul class="errorlist[^>]*>(.*?)</ul>', html, re.S)
    return found.group(1) if found else ""


def test_a_marketer_builds_and_publishes_a_journey_with_forms_alone(world, marketer, action):
    response = post_ok(marketer, reverse("admin:journeys_journey_add"),
                       {"name": "Win back", "entry_event": "cart_abandoned", "reentry": "after_exit"})  # fmt: skip
    journey = Journey.objects.get(name="Win back")
    assert journey.organization == world.acme and response["Location"] == url("change", journey.pk)
    for key, kind in [("check", "condition"), ("pause", "wait"), ("sms", "action"), ("done", "end")]:
        add_step(marketer, journey, key, kind)

    # The action's parameters appear once it is chosen, with their descriptions.
    page = marketer.post(url("step", journey.pk, "sms"), {"action": action.pk, "_choose_action": "1"})
    html = page.content.decode()
    assert 'name="param__phone"' in html and "Phone in E.164" in html
    sms = {"action": action.pk, "param__account": '"a1"', "param__phone": "profile.phone",
           "param__text": '"Hi " + ', "next": "done", "on_error": "done"}  # fmt: skip
    refused = marketer.post(url("step", journey.pk, "sms"), sms)
    assert refused.status_code == 200
    assert "does not parse" in field_errors(refused, "param__text") and "column" in field_errors(refused, "param__text")
    post_ok(marketer, url("step", journey.pk, "sms"), {**sms, "param__text": '"Hi " + profile.first_name'})
    post_ok(marketer, url("step", journey.pk, "check"),
            {"branch0_expression": "event.data.total > 100.0", "branch0_next": "pause", "else": "done"})  # fmt: skip
    post_ok(marketer, url("step", journey.pk, "pause"), {"duration_s": "60", "next": "sms"})

    journey.refresh_from_db()
    assert journey.start == "check"
    assert journey.steps[2] == {"key": "sms", "type": "action", "action": action.pk, "next": "done",
                                "on_error": "done", "parameters": {"account": '"a1"', "phone": "profile.phone",
                                                                   "text": '"Hi " + profile.first_name'}}  # fmt: skip
    page = marketer.get(url("change", journey.pk)).content.decode()
    assert "this draft can be published" in page
    post_ok(marketer, url("transition", journey.pk, "publish"), {"confirm": "yes"})
    journey.refresh_from_db()
    assert journey.status == "live"


def test_publishing_problems_are_listed_on_the_page_and_publish_refuses(world, marketer, action):
    response = post_ok(marketer, reverse("admin:journeys_journey_add"), {"name": "Half", "reentry": "always"})
    journey = Journey.objects.get(name="Half")
    add_step(marketer, journey, "sms", "action")
    page = marketer.get(url("change", journey.pk)).content.decode()
    assert "Before it can be published" in page and "steps[sms].action" in page and "entry_event" in page
    response = marketer.post(url("transition", journey.pk, "publish"), {"confirm": "yes"}, follow=True)
    assert "Not published" in response.content.decode()
    journey.refresh_from_db()
    assert journey.status == "draft"


def test_a_viewer_sees_the_journey_and_its_report_but_no_button_that_changes_anything(world, client, action):
    journey = live_journey(world, cart_steps(action.pk), "check")
    client.force_login(world.user("viewer"))
    page = client.get(url("change", journey.pk)).content.decode()
    assert "Report and runs" in page
    for word in ("Pause", "Stop", "New version", ">Test<", "Add a step", "Save"):
        assert word not in page, word
    assert client.get(url("report", journey.pk)).status_code == 200
    assert client.post(url("transition", journey.pk, "pause")).status_code == 403
    assert client.get(url("test", journey.pk)).status_code == 403
    assert client.post(url("step", journey.pk, "sms"), {"next": "done"}).status_code == 403
    journey.refresh_from_db()
    assert journey.status == "live"


def test_live_journey_buttons_for_an_editor(world, marketer, action):
    journey = live_journey(world, cart_steps(action.pk), "check")
    page = marketer.get(url("change", journey.pk)).content.decode()
    assert 'value="Yes, pause"' in page and 'value="Yes, stop"' in page and 'value="Yes, new version"' in page
    assert 'value="Yes, publish"' not in page and "Add a step" not in page
    post_ok(marketer, url("transition", journey.pk, "pause"), {"confirm": "yes"})
    journey.refresh_from_db()
    assert (
        journey.status == "paused" and 'value="Yes, resume"' in marketer.get(url("change", journey.pk)).content.decode()
    )


def test_another_organizations_actions_never_appear_in_the_choices(world, marketer, action):
    foreign = make_action(world.globex, name="Globex secret SMS")
    archived = make_action(world.acme, name="Old SMS", status="archived")
    journey = live_journey(world, cart_steps(action.pk), "check")
    draft = Journey.objects.get(pk=marketer.post(url("transition", journey.pk, "new-version"), {"confirm": "yes"}) and
                                Journey.objects.get(previous=journey).pk)  # fmt: skip
    html = marketer.get(url("step", draft.pk, "sms")).content.decode()
    select = re.search(r'<select name="action".*?</select>', html, re.S).group(0)
    assert f'value="{action.pk}"' in select and "Globex" not in select
    assert f'value="{foreign.pk}"' not in select and f'value="{archived.pk}"' not in select
    refused = marketer.post(url("step", draft.pk, "sms"), {"action": foreign.pk, "next": "sent"})
    assert "Select a valid choice" in field_errors(refused, "action")


def test_another_organizations_journey_does_not_open(world, client, action):
    journey = live_journey(world, cart_steps(action.pk), "check")
    client.force_login(world.globex_admin.user)
    for path in (url("change", journey.pk), url("report", journey.pk), url("step", journey.pk, "sms")):
        assert client.get(path).status_code in (302, 404), path
    assert client.post(url("transition", journey.pk, "stop")).status_code == 404


def test_the_diagram_has_every_step_and_every_branch(world, marketer, action):
    journey = live_journey(world, cart_steps(action.pk), "check")
    page = marketer.get(url("change", journey.pk)).content.decode()
    svg = re.search(r'<svg[^>]*class="journey-diagram".*?</svg>', page, re.S).group(0)
    assert set(re.findall(r'class="step" data-key="(\w+)"', svg)) == {s["key"] for s in journey.steps}
    arrows = set(re.findall(r'data-from="(\w+)" data-to="(\w+)" data-label="([^"]+)"', svg))
    assert arrows == {
        ("check", "sms", "if event.data.total &gt; 100.0"), ("check", "small", "else"),
        ("sms", "sent", "next"), ("sms", "missing", "error"),
        ("missing", "not_found", 'if steps.sms.status == &quot;http_404&quot;'), ("missing", "small", "else"),
    }  # fmt: skip


def test_test_page_shows_the_path_and_hides_requests_from_a_marketer(world, marketer, action, receiver):
    journey = live_journey(world, cart_steps(action.pk), "check")
    data = {"profile": '{"phone": "+33611111111", "first_name": "Bo"}', "event": '{"data": {"total": 500.0}}',
            "dry_run": "on"}  # fmt: skip
    html = marketer.post(url("test", journey.pk), data).content.decode()
    assert "Path taken: completed" in html and "dry run" in html and "Hi Bo" in html
    assert "127.0.0.1" not in html and receiver == []
    bad = marketer.post(url("test", journey.pk), {**data, "profile": "{not json"})
    assert "not valid JSON" in field_errors(bad, "profile")


def test_report_page_counts_and_lists_runs_with_links_to_calls(world, marketer, action, receiver):
    journey = live_journey(world, cart_steps(action.pk), "check")
    send(world)
    drain()
    html = marketer.get(url("report", journey.pk)).content.decode()
    assert "completed 1" in html and "in 1 · ok 1" in html
    assert reverse("admin:actions_invocation_change", args=[journey.runs.get().step_runs.get(step_key="sms")
                                                           .invocation_id]) in html  # fmt: skip
