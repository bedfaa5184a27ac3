"""The actions admin through Django's test client: the same services as the API, scoped by role."""

import base64
import json

import pytest
from django.db import connection
from django.urls import reverse

from actions.models import Action
from actions.services.actions import action_check
from config.common.exceptions import Conflict
from journeys.models import Journey
from tests.actions.helpers import SMS_ACTION, admin_form_data, make_action
from tests.factories import UserFactory

TOKEN = "tok-ADMIN-SECRET-424242"
ADD = "admin:actions_action_add"
CHANGELIST = "admin:actions_action_changelist"

FORM = {
    "name": "Send SMS",
    "description": "Sends a text message.",
    "status": "active",
    "method": "POST",
    "url": "https://sms.example.com/v1/messages",
    "query": "",
    "headers": '[{"name": "X-Tenant", "value": "acme"}]',
    "body": '{"to": "{{phone}}", "text": "{{text}}"}',
    "parameters": '[{"name": "phone", "type": "string", "required": true, "description": "E.164"},'
    ' {"name": "text", "type": "string", "required": false, "default": "Hello"}]',
    "auth_type": "bearer",
    "bearer_token": TOKEN,
    "response_schema": "",
    "timeout_ms": "10000",
    "max_retries": "3",
    "rate_limit_calls": "",
    "rate_limit_period_s": "",
    "on_rate_limit": "delay",
    "client_certificate": "",
    "client_key": "",
    "generate_signing_secret": "on",
}


def _url(view: str, action: Action) -> str:
    return reverse(f"admin:actions_action_{view}", args=[action.pk])


def _form(response):
    return response.context["adminform"].form


def _raw_column(action: Action, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM actions_action WHERE id = %s", [action.pk])
        return cursor.fetchone()[0]


# --- creating and editing -------------------------------------------------------------


def test_technical_user_creates_an_action_with_bearer_auth_and_never_sees_the_secret_again(world, client):
    client.force_login(world.user("technical"))
    response = client.post(reverse(ADD), FORM)
    assert response.status_code == 302, _form(response).errors

    action = Action.objects.get(name="Send SMS")
    assert action.organization == world.acme
    assert action.created_by == world.user("technical")
    assert action.auth_type == "bearer" and action.auth_secrets == {"token": TOKEN}
    assert TOKEN not in _raw_column(action, "auth_secrets")
    assert action.signing_secret.startswith("whsec_")
    assert action.parameters[1] == {
        "name": "text", "type": "string", "required": False, "default": "Hello", "description": "",
    }  # fmt: skip

    first = client.get(_url("change", action)).content.decode()  # the page the save redirects to
    assert TOKEN not in first and first.count(action.signing_secret) == 2  # the generated secret, once, and Copy
    page = client.get(_url("change", action))
    html = page.content.decode()
    assert page.status_code == 200
    assert TOKEN not in html and action.signing_secret not in html
    assert "Set. Leave blank to keep it" in html
    assert "Test request" in html and "Duplicate" in html and "Export JSON" in html
    assert "Not used by any journey yet." in html


def test_saving_the_change_form_with_the_secret_left_blank_keeps_it(world, client):
    client.force_login(world.user("technical"))
    client.post(reverse(ADD), FORM)
    action = Action.objects.get(name="Send SMS")
    signing_secret = action.signing_secret

    data = admin_form_data(client.get(_url("change", action)))
    assert data["bearer_token"] == "" and data["client_key"] == ""
    data["description"] = "Sends a text message, now shorter."
    response = client.post(_url("change", action), data)
    assert response.status_code == 302, _form(response).errors

    action.refresh_from_db()
    assert action.description == "Sends a text message, now shorter."
    assert action.auth_secrets == {"token": TOKEN}
    assert action.signing_secret == signing_secret

    response = client.post(_url("change", action), {**data, "bearer_token": "tok-NEW-999999"})
    assert response.status_code == 302
    action.refresh_from_db()
    assert action.auth_secrets == {"token": "tok-NEW-999999"}


def test_signing_secret_can_be_generated_again_or_removed(world, client):
    action = make_action(world.acme)
    old = action.signing_secret
    client.force_login(world.user("technical"))
    data = admin_form_data(client.get(_url("change", action)))

    saved = client.post(_url("change", action), {**data, "generate_signing_secret": "on"}, follow=True)
    action.refresh_from_db()
    assert action.signing_secret.startswith("whsec_") and action.signing_secret != old
    # Shown once, with a Copy button, so the receiving system can verify; the next page no longer has it.
    shown = saved.content.decode()
    assert "it will not be shown again" in shown and f'data-copy="{action.signing_secret}"' in shown
    assert action.signing_secret not in client.get(_url("change", action)).content.decode()

    client.post(_url("change", action), {**data, "clear_signing_secret": "on"})
    action.refresh_from_db()
    assert action.signing_secret == ""
    html = client.get(_url("change", action)).content.decode()
    assert "Signing secret set" in html and '<div class="readonly">no</div>' in html

    own = "whsec_" + base64.b64encode(b"k" * 32).decode()
    client.post(_url("change", action), {**data, "signing_secret": own})
    action.refresh_from_db()
    assert action.signing_secret == own
    assert own not in client.get(_url("change", action)).content.decode()

    response = client.post(_url("change", action), {**data, "signing_secret": "not-a-secret"})
    assert "Standard Webhooks secret" in _form(response).errors["signing_secret"][0]
    response = client.post(_url("change", action), {**data, "signing_secret": own, "clear_signing_secret": "on"})
    assert "Choose one" in _form(response).errors["clear_signing_secret"][0]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("body", '{"to": "{{phone}}", "text": "{{greeting}}"}', "{{greeting}} names no declared parameter"),
        ("headers", '[{"name": "X-Tenant", "value": "acme"', "This is not valid JSON"),
        ("headers", '[{"name": "Host", "value": "evil.example"}]', "set by Conduit itself"),
        ("url", "http://sms.example.com/v1/messages", "must use https://"),
        ("parameters", '[{"name": "phone", "type": "telephone"}]', "unknown type"),
    ],
)
def test_an_invalid_form_shows_the_problem_next_to_its_field_and_saves_nothing(world, client, field, value, message):
    client.force_login(world.user("technical"))
    response = client.post(reverse(ADD), {**FORM, field: value})
    assert response.status_code == 200
    errors = _form(response).errors
    assert any(message in error for error in errors[field]), errors
    assert message.replace('"', "&quot;") in response.content.decode()
    assert not Action.objects.exists()


def test_missing_auth_secret_is_shown_on_the_secret_field(world, client):
    client.force_login(world.user("technical"))
    response = client.post(reverse(ADD), {**FORM, "auth_type": "basic", "basic_username": "acme"})
    assert response.status_code == 200
    assert "password: required for basic auth" in _form(response).errors["basic_password"]
    assert not Action.objects.exists()


def test_a_refusal_at_save_time_is_a_form_error_not_a_500(world, client, monkeypatch):
    action = make_action(world.acme)
    client.force_login(world.user("technical"))
    data = admin_form_data(client.get(_url("change", action)))

    def refuse(**kwargs):
        raise Conflict(
            "This action is used by a live journey.",
            {"parameters": ["phone: used by the live journey Welcome; it cannot be removed"]},
        )

    monkeypatch.setattr("actions.admin.actions.services.action_update", refuse)
    response = client.post(_url("change", action), {**data, "description": "changed"})
    assert response.status_code == 200
    assert "used by the live journey Welcome" in _form(response).errors["parameters"][0]
    action.refresh_from_db()
    assert action.description == SMS_ACTION["description"]


def test_an_edit_that_breaks_a_live_journey_is_shown_on_the_parameters_before_saving(world, client, monkeypatch):
    action = make_action(world.acme)
    journey = Journey.objects.create(organization=world.acme, name="Welcome", entry_event="signed_up", status="live")
    journey.actions.add(action)
    client.force_login(world.user("technical"))
    data = admin_form_data(client.get(_url("change", action)))
    kept = [p for p in action.parameters if p["name"] != "phone"]

    def never_called(**kwargs):
        raise AssertionError("the form saved what action_check refuses")

    monkeypatch.setattr("actions.admin.actions.services.action_update", never_called)
    response = client.post(_url("change", action), {**data, "parameters": json.dumps(kept)})
    assert response.status_code == 200
    assert _form(response).errors["parameters"] == ["Used by live journeys: Welcome (v1)."]
    action.refresh_from_db()
    assert [p["name"] for p in action.parameters] == [p["name"] for p in SMS_ACTION["parameters"]]


def test_action_check_names_every_problem_without_saving(world):
    action = make_action(world.acme)
    journey = Journey.objects.create(organization=world.acme, name="Welcome", entry_event="signed_up", status="live")
    journey.actions.add(action)
    problems = action_check(
        organization=world.acme, action=action, data={"parameters": [], "url": "http://sms.example.com/"}
    )
    assert problems["parameters"] == ["Used by live journeys: Welcome (v1)."]
    assert any("https://" in message for message in problems["url"])
    assert "body" in problems  # its placeholders now name no parameter
    action.refresh_from_db()
    assert action.parameters and action.url.startswith("https://")
    assert action_check(organization=world.acme, data={**SMS_ACTION, "name": "Another"}) == {}


# --- the test request -----------------------------------------------------------------


def test_test_request_page_shows_the_answer_and_masks_the_secret(world, client, httpserver, allow_loopback):
    world.acme.allow_http = True
    world.acme.save()
    httpserver.expect_request("/v1/accounts/A1/messages", method="POST").respond_with_json(
        {"id": "msg-0001", "queued": True}, status=202
    )
    action = make_action(world.acme, url=httpserver.url_for("/v1/accounts/{{account}}/messages"))
    client.force_login(world.user("technical"))

    page = client.get(_url("test", action)).content.decode()
    assert "phone (string, required)" in page and "Phone in E.164" in page

    response = client.post(
        _url("test", action),
        {"parameter-account": "A1", "parameter-phone": "+33600000000", "parameter-text": "Hi"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "msg-0001" in html and "HTTP 202" in html
    assert "Authorization: Bearer ********" in html
    assert "tok-SECRET-123456" not in html
    [(received, _)] = httpserver.log
    assert received.headers["Authorization"] == "Bearer tok-SECRET-123456"
    assert json.loads(received.data) == {"to": "+33600000000", "text": "Hi"}


def test_test_request_with_a_missing_value_says_so_next_to_the_parameter(world, client):
    action = make_action(world.acme)
    client.force_login(world.user("technical"))
    response = client.post(_url("test", action), {"parameter-account": "A1", "parameter-text": "Hi"})
    assert response.status_code == 200
    form = response.context["form"]
    assert "required, but no value was given" in form.errors["phone"][0]


def test_test_request_to_a_refused_destination_shows_the_sentence(world, client, httpserver):
    world.acme.allow_http = True
    world.acme.save()
    action = make_action(world.acme, url=httpserver.url_for("/{{account}}"))
    client.force_login(world.user("technical"))
    response = client.post(
        _url("test", action),
        {"parameter-account": "A1", "parameter-phone": "+33600000000", "parameter-text": "Hi"},
    )
    assert response.context["result"].outcome == "refused"
    assert response.context["result"].error in response.content.decode()
    assert httpserver.log == []


# --- roles and organizations ----------------------------------------------------------


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_marketer_and_viewer_cannot_open_the_action_configuration(world, client, role):
    action = make_action(world.acme)
    client.force_login(world.user(role))
    for url in (
        reverse(CHANGELIST),
        reverse(ADD),
        _url("change", action),
        _url("test", action),
        _url("export", action),
        reverse("admin:actions_action_infer"),
        reverse("admin:actions_action_import"),
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(_url("duplicate", action)).status_code == 403


def test_marketer_sees_the_palette_without_url_headers_or_secrets(world, client):
    active = make_action(world.acme)
    make_action(world.acme, name="Unfinished draft", status="draft")
    client.force_login(world.user("marketer"))

    index = client.get(reverse("admin:index")).content.decode()
    assert "Action palette" in index
    assert reverse(CHANGELIST) not in index

    listing = client.get(reverse("admin:actions_paletteaction_changelist"))
    html = listing.content.decode()
    assert listing.status_code == 200
    assert "Send SMS" in html and "phone (string, required)" in html
    assert "Unfinished draft" not in html

    detail = client.get(reverse("admin:actions_paletteaction_change", args=[active.pk]))
    html = detail.content.decode()
    assert detail.status_code == 200
    for name in ("account", "phone", "text", "Phone in E.164", "Not used by any journey yet."):
        assert name in html
    for forbidden in ("sms.example.com", "X-Tenant", "tok-SECRET", "whsec_", "Bearer", '<input type="text"'):
        assert forbidden not in html
    assert client.post(reverse("admin:actions_paletteaction_change", args=[active.pk])).status_code == 403


def test_acme_technical_user_never_sees_or_opens_globex_actions(world, client):
    globex_action = make_action(world.globex, name="Globex launch codes")
    make_action(world.acme)
    client.force_login(world.user("technical"))

    listing = client.get(reverse(CHANGELIST)).content.decode()
    assert "Send SMS" in listing and "Globex launch codes" not in listing
    palette = client.get(reverse("admin:actions_paletteaction_changelist")).content.decode()
    assert "Globex launch codes" not in palette

    for view in ("change", "test", "export"):
        response = client.get(_url(view, globex_action), follow=True)
        assert response.redirect_chain, view
        assert "Globex launch codes" not in response.content.decode()
    response = client.post(_url("duplicate", globex_action))
    assert response.status_code == 302
    assert Action.objects.filter(organization=world.globex).count() == 1
    response = client.post(_url("test", globex_action), {"parameter-account": "x"})
    assert response.status_code == 302


# --- from a sample, duplicate, export, import -----------------------------------------

SAMPLE = {"to": "+33600000000", "amount": 12.5, "meta": {"vip": True}, "channel": "sms"}


def test_infer_page_turns_a_sample_into_a_draft_with_the_chosen_parameters(world, client):
    client.force_login(world.user("technical"))
    url = reverse("admin:actions_action_infer")
    assert client.get(url).status_code == 200

    step1 = client.post(url, {"sample": json.dumps(SAMPLE), "sample_response": '{"id": "m1"}', "step": "fields"})
    html = step1.content.decode()
    assert step1.status_code == 200
    assert {f["path"]: f["type"] for f in step1.context["fields"]} == {
        "to": "string", "amount": "decimal", "meta.vip": "boolean", "channel": "string",
    }  # fmt: skip
    assert 'value="meta.vip"' in html and "Becomes a parameter" in html

    response = client.post(
        url,
        {
            "sample": json.dumps(SAMPLE),
            "sample_response": '{"id": "m1"}',
            "parameters": ["to", "meta.vip"],
            "name": "Notify",
            "url": "https://notify.example.com/send",
            "method": "POST",
            "step": "create",
        },
    )
    action = Action.objects.get(name="Notify")
    assert response.status_code == 302 and response.url == _url("change", action)
    assert action.organization == world.acme and action.status == "draft"
    assert [(p["name"], p["type"]) for p in action.parameters] == [("to", "string"), ("vip", "boolean")]
    assert action.body == {"to": "{{to}}", "amount": 12.5, "meta": {"vip": "{{vip}}"}, "channel": "sms"}
    assert action.response_schema == {"type": "object", "properties": {"id": {"type": "string"}}}


def test_infer_page_with_bad_json_or_a_bad_url_shows_a_form_error(world, client):
    client.force_login(world.user("technical"))
    url = reverse("admin:actions_action_infer")
    response = client.post(url, {"sample": '{"to": ', "step": "fields"})
    assert "This is not valid JSON" in response.context["form"].errors["sample"][0]

    response = client.post(
        url,
        {
            "sample": json.dumps(SAMPLE),
            "name": "Notify",
            "url": "ftp://x",
            "method": "POST",
            "step": "create",
        },
    )
    assert response.status_code == 200
    assert "must be an absolute https:// URL" in response.context["form"].errors["url"]
    assert not Action.objects.exists()


def test_duplicate_makes_a_draft_copy_and_opens_it(world, client):
    action = make_action(world.acme)
    client.force_login(world.user("technical"))
    assert client.get(_url("duplicate", action)).status_code == 405
    response = client.post(_url("duplicate", action))
    copy = Action.objects.get(name="Send SMS (copy)")
    assert response.status_code == 302 and response.url == _url("change", copy)
    assert copy.status == "draft" and copy.auth_secrets == action.auth_secrets


def test_export_downloads_the_configuration_without_secrets(world, client):
    action = make_action(world.acme)
    client.force_login(world.user("technical"))
    response = client.get(_url("export", action))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="send-sms.json"'
    text = response.content.decode()
    assert "tok-SECRET" not in text and "whsec_" not in text
    exported = json.loads(text)
    assert exported["format"] == "conduit.action.v1" and exported["auth"] == {"type": "bearer"}


def test_import_into_globex_creates_a_draft_there(world, client):
    client.force_login(world.user("technical"))
    exported = client.get(_url("export", make_action(world.acme))).content.decode()

    client.force_login(world.globex_admin.user)
    url = reverse("admin:actions_action_import")
    assert client.get(url).status_code == 200
    response = client.post(url, {"data": exported})
    imported = Action.objects.get(organization=world.globex)
    assert response.status_code == 302 and response.url == _url("change", imported)
    assert imported.name == "Send SMS" and imported.status == "draft"
    assert imported.auth_type == "bearer" and imported.auth_secrets == {}
    assert imported.created_by == world.globex_admin.user


def test_import_of_something_else_shows_the_services_messages(world, client):
    client.force_login(world.user("technical"))
    url = reverse("admin:actions_action_import")
    response = client.post(url, {"data": '{"name": "x"}'})
    assert response.status_code == 200
    assert "not a Conduit action export" in response.content.decode()
    response = client.post(url, {"data": "not json"})
    assert "This is not valid JSON" in response.context["form"].errors["data"][0]
    assert not Action.objects.exists()


AUTH_FORMS = {
    "basic": ({"basic_username": "acme", "basic_password": "pw-SECRET-1234"}, {"password": "pw-SECRET-1234"}),
    "api_key": (
        {"api_key_in": "header", "api_key_name": "X-Api-Key", "api_key_value": "key-SECRET-1234"},
        {"value": "key-SECRET-1234"},
    ),
    "oauth2_client_credentials": (
        {
            "oauth2_token_url": "https://auth.example.com/token",
            "oauth2_client_id": "conduit",
            "oauth2_client_secret": "cs-SECRET-1234",
            "oauth2_scope": "sms",
        },
        {"client_secret": "cs-SECRET-1234"},
    ),
    "token_endpoint": (
        {
            "token_request": json.dumps(
                {
                    "url": "https://auth.example.com/login",
                    "headers": {"X-Key": "hdr-SECRET-1234"},
                    "body": {"password": "body-SECRET-1234"},
                }
            ),
            "token_path": "data.access_token",
            "token_cache_seconds": "600",
            "token_inject_as": "header",
            "token_inject_name": "X-Token",
        },
        {"request": {"headers": {"X-Key": "hdr-SECRET-1234"}, "body": {"password": "body-SECRET-1234"}}},
    ),
}


@pytest.mark.parametrize("kind", AUTH_FORMS)
def test_every_auth_type_is_saved_through_the_form_and_its_secrets_kept_when_left_out(world, client, kind):
    fields, secrets = AUTH_FORMS[kind]
    client.force_login(world.user("admin"))
    response = client.post(reverse(ADD), {**FORM, "auth_type": kind, "bearer_token": "", **fields})
    assert response.status_code == 302, _form(response).errors
    action = Action.objects.get(name="Send SMS")
    assert action.auth_type == kind and action.auth_secrets == secrets

    page = client.get(_url("change", action))
    html = page.content.decode()
    for secret in ("pw-SECRET", "key-SECRET", "cs-SECRET", "hdr-SECRET", "body-SECRET"):
        assert secret not in html
    if kind == "token_endpoint":
        assert "headers and body are set; leave them out to keep them" in html

    data = admin_form_data(page)
    data["description"] = "edited"
    response = client.post(_url("change", action), data)
    assert response.status_code == 302, _form(response).errors
    action.refresh_from_db()
    assert action.description == "edited" and action.auth_type == kind and action.auth_secrets == secrets


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"auth_type": "api_key", "api_key_in": "header", "api_key_name": "Host"},
            "api_key_name",
            "not a header",
        ),
        (
            {
                "auth_type": "token_endpoint",
                "token_request": '{"url": "ftp://auth"}',
                "token_cache_seconds": "60",
            },
            "token_request",
            "request.url: must be an absolute https:// URL",
        ),
        (
            {"auth_type": "token_endpoint", "token_request": '{"url": "https://auth.example.com"}'},
            "token_path",
            "token_path: required",
        ),
        (
            {
                "auth_type": "token_endpoint",
                "token_inject_as": "header",
                "token_path": "t",
                "token_cache_seconds": "5",
            },
            "token_inject_name",
            "inject.name: required",
        ),
    ],
)
def test_auth_problems_are_shown_on_the_auth_field_they_concern(world, client, fields, field, message):
    client.force_login(world.user("technical"))
    response = client.post(reverse(ADD), {**FORM, "bearer_token": "", **fields})
    assert response.status_code == 200
    errors = _form(response).errors
    assert any(message in error for error in errors.get(field, [])), errors
    assert not Action.objects.exists()


def test_platform_staff_choose_the_organization_of_a_new_action(world, client):
    client.force_login(UserFactory(username="staff", is_superuser=True, is_staff=True))
    response = client.post(reverse(ADD), {**FORM, "bearer_token": TOKEN})
    assert "organization" in _form(response).errors
    response = client.post(reverse(ADD), {**FORM, "organization": world.globex.pk})
    assert response.status_code == 302, _form(response).errors
    action = Action.objects.get()
    assert action.organization == world.globex
    assert client.get(_url("change", action)).status_code == 200

    infer = reverse("admin:actions_action_infer")
    step1 = client.post(infer, {"sample": json.dumps(SAMPLE), "step": "fields"})
    assert len(step1.context["fields"]) == 4
    response = client.post(
        infer,
        {"sample": json.dumps(SAMPLE), "name": "Notify", "url": "https://n.example.com", "step": "create"},
    )
    assert "organization" in response.context["form"].errors
    response = client.post(
        infer,
        {"sample": json.dumps(SAMPLE), "name": "Notify", "url": "https://n.example.com", "step": "create",
         "organization": world.acme.pk},
    )  # fmt: skip
    assert Action.objects.get(name="Notify").organization == world.acme


def test_oauth2_action_configured_in_the_admin_answers_the_test_button(world, client, httpserver, allow_loopback):
    """The done-when of the actions issue: OAuth2 client credentials, the test button, the real answer."""
    world.acme.allow_http = True
    world.acme.save()
    httpserver.expect_request("/oauth/token", method="POST").respond_with_json(
        {"access_token": "at-REAL-777", "expires_in": 3600}
    )
    httpserver.expect_request(
        "/v1/messages", method="POST", headers={"Authorization": "Bearer at-REAL-777"}
    ).respond_with_json({"id": "sms-42", "status": "queued"}, status=201)
    client.force_login(world.user("technical"))
    form = {
        **FORM, "url": httpserver.url_for("/v1/messages"), "auth_type": "oauth2_client_credentials",
        "bearer_token": "", "oauth2_token_url": httpserver.url_for("/oauth/token"),
        "oauth2_client_id": "conduit", "oauth2_client_secret": "cs-REAL-SECRET", "oauth2_scope": "sms",
    }  # fmt: skip
    response = client.post(reverse(ADD), form)
    assert response.status_code == 302, _form(response).errors
    action = Action.objects.get(name="Send SMS")

    html = client.post(
        _url("test", action), {"parameter-phone": "+33600000000", "parameter-text": "Hi"}
    ).content.decode()
    assert "sms-42" in html and "HTTP 201" in html
    assert "cs-REAL-SECRET" not in html and "at-REAL-777" not in html
    token_request = httpserver.log[0][0]
    assert token_request.form["client_secret"] == "cs-REAL-SECRET" and token_request.form["scope"] == "sms"
