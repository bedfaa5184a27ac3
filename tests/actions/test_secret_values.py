"""Secret values: `{{secrets.NAME}}` reaches the receiver as the real value, encoded for where it stands,
and never comes back out of Conduit (API answers, invocation records, the admin, the logs)."""

import json
import logging
from urllib.parse import parse_qs

import pytest
from werkzeug import Response

from actions.models import Action, SecretValue
from actions.runtime import invocation_enqueue, invocation_send
from actions.services.secret_values import secret_value_save
from tests.conftest import token_client

PATH_SECRET = "T1/B2/xyz"
QUERY_SECRET = "q&k=v+1"
HEADER_SECRET = "hdr-SECRET-4242"
BODY_SECRET = 'say "hi" \\ now'
SECRETS = {"HOOK": PATH_SECRET, "QKEY": QUERY_SECRET, "HKEY": HEADER_SECRET, "BKEY": BODY_SECRET}
# Every form a value could take in a record: as given, URL-encoded, JSON-escaped.
VALUE_FORMS = [*SECRETS.values(), "q%26k%3Dv%2B1", "q%26k%3Dv", "T1%2FB2", 'say \\"hi\\"']
PARAMETERS = [{"name": "note", "type": "string", "required": False, "description": "Free text"}]
SECRETS_API = "/api/v1/orgs/acme/secret-values/"


@pytest.fixture
def acme(world, allow_loopback):
    world.acme.allow_http = True
    world.acme.save()
    for name, value in SECRETS.items():
        secret_value_save(organization=world.acme, data={"name": name, "value": value})
    return world.acme


@pytest.fixture
def tech(world):
    return token_client(world.user("technical"))


@pytest.fixture
def receiver(httpserver):
    httpserver.expect_request("/services/T1/B2/xyz").respond_with_json({"ok": True})
    return httpserver


def _action_data(httpserver, **overrides):
    return {
        "name": "Webhook",
        "status": "active",
        "url": httpserver.url_for("/services/{{secrets.HOOK}}"),
        "query": [{"name": "key", "value": "{{secrets.QKEY}}"}],
        "headers": [{"name": "X-Token", "value": "{{secrets.HKEY}}"}],
        "body": {"text": "{{note}}", "auth": "{{secrets.BKEY}}"},
        "parameters": PARAMETERS,
        **overrides,
    }


def _action(tech, httpserver, **overrides):
    response = tech.post("/api/v1/orgs/acme/actions/", _action_data(httpserver, **overrides), format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _test_call(tech, action, parameters):
    response = tech.post(f"/api/v1/orgs/acme/actions/{action['id']}/test/", {"parameters": parameters}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _assert_no_value(text):
    for value in VALUE_FORMS:
        assert value not in text


def _sent_invocation(action, values):
    invocation = invocation_enqueue(action=Action.objects.get(pk=action["id"]), values=values)
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    return invocation


# --- what the receiver gets ------------------------------------------------------------


def test_secrets_reach_the_receiver_encoded_for_path_query_header_and_json_body(acme, tech, receiver):
    result = _test_call(tech, _action(tech, receiver), {"note": "hello"})
    assert result["outcome"] == "succeeded", result
    [(received, _)] = receiver.log
    assert received.path == "/services/T1/B2/xyz"  # slashes stay slashes (a Slack webhook path)
    assert parse_qs(received.query_string.decode()) == {"key": [QUERY_SECRET]}  # "&=" encoded, not split
    assert received.headers["X-Token"] == HEADER_SECRET
    assert json.loads(received.data) == {"text": "hello", "auth": BODY_SECRET}  # the quote is JSON-escaped


def test_an_invocation_sends_the_values_too(acme, tech, receiver):
    """The runtime path (stored request, sent later) puts the values in as the test call does."""
    invocation = _sent_invocation(_action(tech, receiver), {"note": "hi"})
    assert invocation.status == "succeeded", invocation.error
    [(received, _)] = receiver.log
    assert received.headers["X-Token"] == HEADER_SECRET
    assert json.loads(received.data)["auth"] == BODY_SECRET


def test_a_form_body_gets_the_value_form_encoded(acme, tech, httpserver):
    httpserver.expect_request("/form").respond_with_data("ok")
    action = _action(
        tech, httpserver, url=httpserver.url_for("/form"), query=[], headers=[], body_type="form",
        body={"Body": "{{note}}", "Token": "{{secrets.QKEY}}", "Quote": "{{secrets.BKEY}}"},
    )  # fmt: skip
    assert _test_call(tech, action, {"note": "a b&c"})["outcome"] == "succeeded"
    [(received, _)] = httpserver.log
    assert received.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert parse_qs(received.get_data(as_text=True)) == {"Body": ["a b&c"], "Token": [QUERY_SECRET],
                                                         "Quote": [BODY_SECRET]}  # fmt: skip


def test_a_form_body_repeats_a_field_for_a_list(acme, tech, httpserver):
    httpserver.expect_request("/form").respond_with_data("ok")
    action = _action(
        tech, httpserver, url=httpserver.url_for("/form"), query=[], headers=[], body_type="form",
        body={"To": "{{phones}}", "Flag": True},
        parameters=[{"name": "phones", "type": "list", "required": True}],
    )  # fmt: skip
    assert _test_call(tech, action, {"phones": ["+331", "+332"]})["outcome"] == "succeeded"
    [(received, _)] = httpserver.log
    assert received.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert received.get_data(as_text=True) == "To=%2B331&To=%2B332&Flag=true"


def test_a_form_body_that_is_not_an_object_is_a_400_on_body(acme, tech, httpserver):
    data = _action_data(httpserver, body_type="form", body=["a", "b"])
    response = tech.post("/api/v1/orgs/acme/actions/", data, format="json")
    assert response.status_code == 400
    assert "form body must be a JSON object" in " ".join(response.json()["errors"]["body"])


# --- the value never comes back out ---------------------------------------------------


def test_the_test_call_answer_never_holds_a_value(acme, tech, receiver):
    result = _test_call(tech, _action(tech, receiver), {"note": "hello"})
    assert result["outcome"] == "succeeded"
    _assert_no_value(json.dumps(result))


def test_the_test_call_answer_shows_the_reference(acme, tech, receiver):
    result = _test_call(tech, _action(tech, receiver), {"note": "hello"})
    assert "/services/{{secrets.HOOK}}" in result["request"]["url"]
    assert ["X-Token", "{{secrets.HKEY}}"] in result["request"]["headers"]


def test_the_invocation_detail_never_holds_a_value(acme, tech, receiver):
    invocation = _sent_invocation(_action(tech, receiver), {"note": "hi"})
    detail = tech.get(f"/api/v1/orgs/acme/invocations/{invocation.pk}/")
    assert detail.status_code == 200
    _assert_no_value(detail.content.decode())


def test_the_invocation_detail_shows_the_reference(acme, tech, receiver):
    invocation = _sent_invocation(_action(tech, receiver), {"note": "hi"})
    request = tech.get(f"/api/v1/orgs/acme/invocations/{invocation.pk}/").json()["request"]
    assert "~secret." not in json.dumps(request)
    assert "/services/{{secrets.HOOK}}?key={{secrets.QKEY}}" in request["url"]
    assert ["X-Token", "{{secrets.HKEY}}"] in request["headers"]


def test_the_invocation_admin_page_never_holds_a_value(world, acme, tech, receiver, client):
    invocation = _sent_invocation(_action(tech, receiver), {"note": "hi"})
    client.force_login(world.user("technical"))
    page = client.get(f"/admin/actions/invocation/{invocation.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "X-Token" in html  # the request is on the page
    _assert_no_value(html.replace("&quot;", '"').replace("&amp;", "&"))
    _assert_no_value(html)


def test_the_invocation_admin_page_shows_the_reference(world, acme, tech, receiver, client):
    invocation = _sent_invocation(_action(tech, receiver), {"note": "hi"})
    client.force_login(world.user("technical"))
    html = client.get(f"/admin/actions/invocation/{invocation.pk}/change/").content.decode()
    assert "~secret." not in html
    assert "X-Token: {{secrets.HKEY}}" in html


@pytest.mark.parametrize(
    "level",
    [
        logging.INFO,  # the default LOG_LEVEL
        logging.DEBUG,
    ],
)
def test_the_logs_never_hold_a_value(acme, tech, httpserver, caplog, level):
    """A failing receiver makes Conduit record errors and retry; no log line carries a value."""
    httpserver.expect_request("/services/T1/B2/xyz").respond_with_data("down", status=503)
    caplog.set_level(level)
    action = _action(tech, httpserver)
    assert _test_call(tech, action, {"note": "hello"})["outcome"] == "http_503"
    invocation = _sent_invocation(action, {"note": "hi"})
    assert (invocation.status, invocation.outcome) == ("pending", "http_503")  # to be retried
    ours = [r for r in caplog.records if not r.name.startswith("werkzeug")]  # werkzeug: the receiver's own log
    _assert_no_value("\n".join(f"{r.name} {r.getMessage()}" for r in ours))


def test_a_response_that_echoes_a_secret_is_masked(acme, tech, httpserver):
    httpserver.expect_request("/services/T1/B2/xyz").respond_with_handler(
        lambda request: Response(json.dumps({"got": request.headers["X-Token"]}), content_type="application/json")
    )
    action = _action(tech, httpserver)
    result = _test_call(tech, action, {"note": "hi"})
    assert result["outcome"] == "succeeded"
    assert "got" in result["response_body"]
    invocation = _sent_invocation(action, {"note": "hi"})
    detail = tech.get(f"/api/v1/orgs/acme/invocations/{invocation.pk}/")
    _assert_no_value(json.dumps(result) + detail.content.decode() + invocation.response_body)


# --- a value that only looks like a reference stays text ---------------------------------


@pytest.mark.parametrize(
    "literal", ["{{secrets.HKEY}}", "{{ secrets.HKEY }}", "~secret.HKEY.000000000000000000000000~"]
)
def test_a_parameter_value_cannot_pull_a_secret_in(acme, tech, receiver, literal):
    """An event's data fills parameters: it must never make a secret go where it was not put."""
    action = _action(tech, receiver, headers=[], query=[], body={"text": "{{note}}"})
    assert _test_call(tech, action, {"note": literal})["outcome"] == "succeeded"
    invocation = _sent_invocation(action, {"note": literal})
    assert invocation.status == "succeeded"
    for received, _ in receiver.log:
        assert json.loads(received.data) == {"text": literal}
        assert HEADER_SECRET not in received.get_data(as_text=True)


def test_a_reference_seen_in_a_record_cannot_pull_a_secret_in(acme, tech, receiver):
    """What a record shows of a secret, copied into an event's data, is only text."""
    action = _action(tech, receiver)
    first = _sent_invocation(action, {"note": "hi"})
    shown = tech.get(f"/api/v1/orgs/acme/invocations/{first.pk}/").json()["request"]
    [seen] = [value for name, value in shown["headers"] if name == "X-Token"]
    leak = _action(tech, receiver, name="Leak", headers=[], query=[], body={"text": "{{note}}"})
    _test_call(tech, leak, {"note": seen})
    assert json.loads(receiver.log[-1][0].data) == {"text": seen}


def test_a_forged_reference_is_recorded_as_the_text_sent(acme, tech, receiver):
    forged = "~secret.HKEY.000000000000000000000000~"
    action = _action(tech, receiver, headers=[], query=[], body={"text": "{{note}}"})
    answer = _test_call(tech, action, {"note": forged})
    invocation = _sent_invocation(action, {"note": forged})
    detail = tech.get(f"/api/v1/orgs/acme/invocations/{invocation.pk}/").json()
    assert [json.loads(r.data) for r, _ in receiver.log] == [{"text": forged}] * 2
    assert json.loads(answer["request"]["body"]) == {"text": forged}
    assert json.loads(detail["request"]["body"]) == {"text": forged}


# --- saving actions that use secrets -------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"url": "http://127.0.0.1:9/services/{{secrets.NOPE}}"}, "url"),
        ({"headers": [{"name": "X-Token", "value": "{{secrets.NOPE}}"}]}, "headers"),
        ({"query": [{"name": "k", "value": "{{secrets.NOPE}}"}]}, "query"),
        ({"body": {"auth": "{{secrets.NOPE}}"}}, "body"),
    ],
)
def test_an_unknown_secret_is_a_400_naming_the_field(acme, tech, httpserver, overrides, field):
    response = tech.post("/api/v1/orgs/acme/actions/", _action_data(httpserver, **overrides), format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "{{secrets.NOPE}} names no secret value" in " ".join(errors[field]), errors


def test_a_secret_in_the_host_is_refused(acme, tech):
    data = {"name": "Host", "url": "https://{{secrets.HKEY}}.example.com/hook", "parameters": []}
    response = tech.post("/api/v1/orgs/acme/actions/", data, format="json")
    assert response.status_code == 400
    problems = response.json()["errors"]["url"]
    assert problems == ["placeholders may stand only in the path, not in the host"], problems


def test_deleting_or_renaming_a_used_secret_is_a_409(acme, tech, receiver):
    _action(tech, receiver)
    secret = SecretValue.objects.get(organization=acme, name="HKEY")
    response = tech.delete(f"{SECRETS_API}{secret.pk}/")
    assert response.status_code == 409 and "Webhook" in response.json()["detail"]
    response = tech.patch(f"{SECRETS_API}{secret.pk}/", {"name": "RENAMED"}, format="json")
    assert response.status_code == 409 and "Webhook" in response.json()["detail"]
    assert SecretValue.objects.filter(organization=acme, name="HKEY").exists()
    unused = tech.post(SECRETS_API, {"name": "SPARE", "value": "spare-value"}, format="json").json()
    assert tech.patch(f"{SECRETS_API}{unused['id']}/", {"name": "SPARE2"}, format="json").status_code == 200
    assert tech.delete(f"{SECRETS_API}{unused['id']}/").status_code == 204


# --- the secret-values API ------------------------------------------------------------


def test_the_api_never_answers_the_value(acme, tech, receiver):
    _action(tech, receiver)
    created = tech.post(SECRETS_API, {"name": "NEW_ONE", "value": "n3w-v4lue", "description": "d"}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert "value" not in body and body["reference"] == "{{secrets.NEW_ONE}}"
    listing = tech.get(SECRETS_API)
    detail = tech.get(f"{SECRETS_API}{body['id']}/")
    updated = tech.patch(f"{SECRETS_API}{body['id']}/", {"value": "n3w-v4lue-2"}, format="json")
    for response in (listing, detail, updated):
        assert response.status_code == 200
        _assert_no_value(response.content.decode())
        assert "n3w-v4lue" not in response.content.decode()
    rows = listing.json()["results"] if isinstance(listing.json(), dict) else listing.json()
    assert all("value" not in row for row in rows)
    assert {r["name"]: r["used_by"] for r in rows}["HKEY"] == ["Webhook"]
    assert SecretValue.objects.get(name="NEW_ONE").value == "n3w-v4lue-2"  # the update was kept


def test_a_marketer_gets_403_and_another_organization_404(world, acme):
    secret = SecretValue.objects.get(organization=acme, name="HKEY")
    marketer = token_client(world.user("marketer"))
    assert marketer.get(SECRETS_API).status_code == 403
    assert marketer.post(SECRETS_API, {"name": "X", "value": "y"}, format="json").status_code == 403
    globex = token_client(world.globex_admin.user)
    assert globex.get(SECRETS_API).status_code == 404
    assert globex.get(f"{SECRETS_API}{secret.pk}/").status_code == 404
    assert globex.get(f"/api/v1/orgs/globex/secret-values/{secret.pk}/").status_code == 404
    assert globex.delete(f"/api/v1/orgs/globex/secret-values/{secret.pk}/").status_code == 404
    assert SecretValue.objects.filter(pk=secret.pk).exists()


def test_a_provider_echoing_a_value_in_a_header_gets_it_masked(acme, tech, httpserver):
    """A redirect's Location (or any header) that repeats the path must not hand the value back."""
    httpserver.expect_request("/services/T1/B2/xyz").respond_with_response(
        Response("moved", status=308, headers={"Location": "/services/T1/B2/xyz/", "X-Echo": HEADER_SECRET})
    )
    result = _test_call(tech, _action(tech, httpserver), {"note": "hi"})
    assert result["status_code"] == 308
    _assert_no_value(json.dumps(result))
    headers = {name.lower(): value for name, value in result["response_headers"].items()}
    assert headers["location"] == "/services/{{secrets.HOOK}}/" and headers["x-echo"] == "{{secrets.HKEY}}"


def test_a_signed_call_with_a_value_in_its_body_verifies(acme, tech, receiver):
    """The signature covers the bytes the receiver gets, with the value in them."""
    from standardwebhooks import Webhook

    action = _action(tech, receiver, signing_secret="generate")
    secret = Action.objects.get(pk=action["id"]).signing_secret
    invocation = _sent_invocation(action, {"note": "signed"})
    assert invocation.status == "succeeded", invocation.error
    request = receiver.log[-1][0]
    assert json.loads(request.get_data())["auth"] == BODY_SECRET
    Webhook(secret).verify(request.get_data(), dict(request.headers))  # raises when the signature is wrong
