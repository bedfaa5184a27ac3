"""Changes shown before they are made: the admin's confirmation page and POST .../actions/{id}/preview/."""

import json

import pytest
from django.urls import reverse
from werkzeug import Response

from actions.admin.change_confirmation import BACK, CONFIRM, SEALED
from actions.models import Action
from actions.services.actions import action_update
from journeys.services import journey_create
from tests.actions.helpers import SMS_ACTION, admin_form_data, make_action
from tests.conftest import token_client
from tests.journeys.helpers import cart_steps, live_journey, send
from tests.workers import wait_for

OLD_TOKEN = SMS_ACTION["auth"]["token"]
NEW_TOKEN = "tok-NEW-SECRET-777777"


@pytest.fixture
def used(world):
    """An action a live journey and a draft use."""
    action = make_action(world.acme)
    live = live_journey(world, cart_steps(action.pk), "check")
    draft = journey_create(
        organization=world.acme,
        data={"name": "Winback", "entry_event": "cart_abandoned", "steps": cart_steps(action.pk), "start": "check"},
    )
    return action, live, draft


def _change_url(action: Action) -> str:
    return reverse("admin:actions_action_change", args=[action.pk])


def _form_data(client, action: Action) -> dict:
    """What a browser sends back from the change page: password boxes come back blank."""
    return admin_form_data(client.get(_change_url(action)))


def _secrets_of(action: Action) -> list[str]:
    action.refresh_from_db()
    return [OLD_TOKEN, NEW_TOKEN, action.signing_secret]


# --- the admin -------------------------------------------------------------------------


def test_saving_an_action_journeys_use_shows_the_diff_and_the_journeys_and_saves_only_on_confirm(world, client, used):
    action, live, draft = used
    client.force_login(world.user("technical"))
    typed = {
        **_form_data(client, action),
        "description": "Sends a shorter text.",
        "bearer_token": NEW_TOKEN,
        "timeout_ms": "5000",
    }
    response = client.post(_change_url(action), typed)

    assert response.status_code == 200 and "admin/actions/action/confirm_change.html" in [
        t.name for t in response.templates
    ]
    html = response.content.decode()
    changes = {c["field"]: c for c in response.context["changes"]}
    assert set(changes) == {"description", "timeout_ms", "auth.token"}
    assert changes["description"]["old"] == "Sends a text message." and "Sends a shorter text." in html
    assert changes["timeout_ms"] == {
        "field": "timeout_ms",
        "label": "Timeout (milliseconds)",
        "secret": False,
        "old": "10000",
        "new": "5000",
    }
    assert changes["auth.token"]["secret"] and changes["auth.token"]["label"] == "Token (bearer)"
    assert "its value is never shown" in html
    assert f'href="{reverse("admin:journeys_journey_change", args=[live.pk])}"' in html
    assert f'href="{reverse("admin:journeys_journey_change", args=[draft.pk])}"' in html
    assert "a draft: not live yet" in html and "runs call it now" in html
    assert not [secret for secret in _secrets_of(action) if secret in html]
    assert action.description == SMS_ACTION["description"] and action.auth_secrets == {"token": OLD_TOKEN}

    saved = client.post(_change_url(action), {SEALED: response.context["sealed"], CONFIRM: "Save"})
    assert saved.status_code == 302
    action.refresh_from_db()
    assert action.description == "Sends a shorter text." and action.timeout_ms == 5000
    assert action.auth_secrets == {"token": NEW_TOKEN}


def test_back_returns_to_the_form_with_what_was_typed_and_saves_nothing(world, client, used):
    action, _live, _draft = used
    client.force_login(world.user("technical"))
    typed = {**_form_data(client, action), "description": "Typed, not saved.", "bearer_token": NEW_TOKEN}
    sealed = client.post(_change_url(action), typed).context["sealed"]

    back = client.post(_change_url(action), {SEALED: sealed, BACK: "Back"}, follow=True)
    assert back.status_code == 200
    form = back.context["adminform"].form
    assert form["description"].value() == "Typed, not saved."
    html = back.content.decode()
    assert "type them again" in html and NEW_TOKEN not in html and OLD_TOKEN not in html
    action.refresh_from_db()
    assert action.description == SMS_ACTION["description"] and action.auth_secrets == {"token": OLD_TOKEN}


def test_an_action_no_journey_uses_saves_directly(world, client):
    action = make_action(world.acme)
    client.force_login(world.user("technical"))
    response = client.post(_change_url(action), {**_form_data(client, action), "description": "Now."})
    assert response.status_code == 302
    action.refresh_from_db()
    assert action.description == "Now."


def test_saving_without_a_change_saves_directly_even_when_journeys_use_it(world, client, used):
    action, _live, _draft = used
    client.force_login(world.user("technical"))
    assert client.post(_change_url(action), _form_data(client, action)).status_code == 302


def test_a_change_saved_meanwhile_is_shown_again_before_saving(world, client, used):
    action, _live, _draft = used
    client.force_login(world.user("technical"))
    typed = {**_form_data(client, action), "description": "Mine."}
    sealed = client.post(_change_url(action), typed).context["sealed"]
    action_update(action=action, data={"max_retries": 5})  # someone else, in between

    again = client.post(_change_url(action), {SEALED: sealed, CONFIRM: "Save"})
    assert again.status_code == 200 and again.context["stale"]
    assert {c["field"] for c in again.context["changes"]} >= {"description", "max_retries"}
    action.refresh_from_db()
    assert action.description == SMS_ACTION["description"]
    assert client.post(_change_url(action), {SEALED: again.context["sealed"], CONFIRM: "Save"}).status_code == 302
    action.refresh_from_db()
    assert action.description == "Mine." and action.max_retries == 3  # the form's value, as typed


def test_a_confirmation_sealed_for_someone_else_or_tampered_saves_nothing(world, client, used):
    action, _live, _draft = used
    client.force_login(world.user("technical"))
    sealed = client.post(_change_url(action), {**_form_data(client, action), "description": "x"}).context["sealed"]

    client.force_login(world.user("admin"))  # another person of the same organization
    refused = client.post(_change_url(action), {SEALED: sealed, CONFIRM: "Save"})
    assert refused.status_code == 302 and refused.url == _change_url(action)
    client.force_login(world.user("technical"))
    assert client.post(_change_url(action), {SEALED: sealed[:-4] + "AAAA", CONFIRM: "Save"}).status_code == 302
    action.refresh_from_db()
    assert action.description == SMS_ACTION["description"]


def test_a_marketer_and_another_organization_never_reach_the_confirmation(world, client, used):
    action, _live, _draft = used
    client.force_login(world.user("technical"))
    data = {**_form_data(client, action), "description": "x"}
    sealed = client.post(_change_url(action), data).context["sealed"]

    client.force_login(world.user("marketer"))
    assert client.post(_change_url(action), data).status_code == 403
    assert client.post(_change_url(action), {SEALED: sealed, BACK: "Back"}, follow=True).status_code == 403
    client.force_login(world.globex_admin.user)
    foreign = client.post(_change_url(action), data, follow=True)
    assert "confirm_change.html" not in str([t.name for t in foreign.templates])
    action.refresh_from_db()
    assert action.description == SMS_ACTION["description"]


# --- the API -------------------------------------------------------------------------------


def _preview_url(action: Action) -> str:
    return f"/api/v1/orgs/acme/actions/{action.pk}/preview/"


def test_the_api_preview_answers_the_diff_and_the_journeys_and_saves_nothing(world, used):
    action, live, draft = used
    client = token_client(world.user("technical"))
    body = {"description": "Shorter.", "auth": {"type": "bearer", "token": NEW_TOKEN}, "signing_secret": "generate"}
    response = client.post(_preview_url(action), body, format="json")

    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["changes"] == {
        "description": {"old": "Sends a text message.", "new": "Shorter."},
        "auth.token": {"changed": True},
        "signing_secret": {"changed": True},
    }
    assert answer["journeys"] == [
        {"id": live.pk, "name": "Cart", "version": 1, "status": "live", "live": True},
        {"id": draft.pk, "name": "Winback", "version": 1, "status": "draft", "live": False},
    ]
    text = response.content.decode()
    assert not [secret for secret in _secrets_of(action) if secret in text] and "whsec_" not in text
    assert action.description == SMS_ACTION["description"] and action.auth_secrets == {"token": OLD_TOKEN}


def test_the_api_preview_answers_bad_input_as_patch_does(world, used):
    action, _live, _draft = used
    client = token_client(world.user("technical"))
    for body in ({"timeout_ms": 5}, {"url": "http://sms.example.com/"}, {"no_such_field": 1}, {"parameters": "x"}):
        preview = client.post(_preview_url(action), body, format="json")
        patch = client.patch(f"/api/v1/orgs/acme/actions/{action.pk}/", body, format="json")
        assert preview.status_code == patch.status_code == 400, body
        assert preview.json() == patch.json() and set(body) <= set(preview.json()["errors"])
    kept = [p for p in action.parameters if p["name"] != "phone"]  # a live journey maps phone: 409, as PATCH
    preview = client.post(_preview_url(action), {"parameters": kept}, format="json")
    assert preview.status_code == 409 and "Cart" in preview.json()["errors"]["parameters"][0]
    action.refresh_from_db()
    assert action.timeout_ms == 10_000 and len(action.parameters) == 3


def test_the_api_preview_is_for_technical_roles_of_the_organization_only(world, used):
    action, _live, _draft = used
    for role in ("marketer", "viewer"):
        response = token_client(world.user(role)).post(_preview_url(action), {"name": "x"}, format="json")
        assert response.status_code == 403, role
    foreign = token_client(world.globex_admin.user)
    assert foreign.post(_preview_url(action), {"name": "x"}, format="json").status_code == 404
    globex_action = make_action(world.globex)
    mine = token_client(world.user("admin"))
    assert mine.post(_preview_url(globex_action), {"name": "x"}, format="json").status_code == 404
    assert mine.post(_preview_url(action), {"name": "x"}, format="json").status_code == 200
    assert Action.objects.get(pk=action.pk).name == SMS_ACTION["name"]


# --- through a real worker ----------------------------------------------------------------


@pytest.mark.worker
def test_a_confirmed_change_is_what_the_live_journeys_next_call_sends(workers, world, client, httpserver):
    world.acme.allow_http = True
    world.acme.save()
    headers = []

    def handle(request):
        headers.append(request.headers.get("X-Tenant"))
        return Response(json.dumps({"id": "m1"}), status=200, content_type="application/json")

    httpserver.expect_request("/v1/accounts/a1/messages").respond_with_handler(handle)
    action = make_action(
        world.acme, url=httpserver.url_for("/v1/accounts/{{account}}/messages"), auth={"type": "none"}, max_retries=0
    )
    live_journey(world, cart_steps(action.pk), "check")
    client.force_login(world.user("technical"))
    typed = {**_form_data(client, action), "headers": '[{"name": "X-Tenant", "value": "acme-2"}]'}
    page = client.post(_change_url(action), typed)
    assert [c["field"] for c in page.context["changes"]] == ["headers"]
    assert client.post(_change_url(action), {SEALED: page.context["sealed"], CONFIRM: "Save"}).status_code == 302

    workers.start()
    send(world)
    wait_for(lambda: headers, timeout=40, message="the journey's call")
    assert headers == ["acme-2"]


TOKEN_ENDPOINT = {
    "type": "token_endpoint",
    "request": {"url": "https://sms.example.com/login", "headers": {"X-Key": "hdr-SECRET-1234"}, "body": {"k": "v"}},
    "token_path": "data.access_token",
    "cache_seconds": 600,
    "inject": {"as": "header", "name": "X-Token"},
}


def test_a_token_requests_secret_parts_are_only_said_to_change_and_never_typed_back(world, client):
    action = make_action(world.acme, auth=TOKEN_ENDPOINT)
    live_journey(world, cart_steps(action.pk), "check")
    new_request = {**TOKEN_ENDPOINT["request"], "headers": {"X-Key": "hdr-NEW-SECRET-999"}}
    auth = {**TOKEN_ENDPOINT, "request": new_request, "inject": {"as": "header", "name": "X-Access"}}
    answer = token_client(world.user("technical")).post(_preview_url(action), {"auth": auth}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["changes"] == {
        "auth.inject.name": {"old": "X-Token", "new": "X-Access"},
        "auth.request.headers": {"changed": True},
    }
    assert "SECRET" not in answer.content.decode()

    client.force_login(world.user("technical"))
    typed = {**_form_data(client, action), "token_request": json.dumps(new_request)}
    page = client.post(_change_url(action), typed)
    assert [c["field"] for c in page.context["changes"]] == ["auth.request.headers"]
    back = client.post(_change_url(action), {SEALED: page.context["sealed"], BACK: "Back"})
    assert "SECRET" not in page.content.decode() and "SECRET" not in back.content.decode()
    assert json.loads(back.context["adminform"].form["token_request"].value()) == {"url": new_request["url"]}
