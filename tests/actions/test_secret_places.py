"""Issue 16 (1): secret values go only where the action's own templates put them, found by position.

Text from an event, a profile or a provider answer can never become a secret, whatever it holds:
a reference sealed with the installation's SECRET_KEY (the published development key), a marker
guessed in the new form, or `{{secrets.NAME}}` itself.
"""

import json
from urllib.parse import parse_qs

import pytest
from django.conf import settings
from django.utils.crypto import salted_hmac

from actions.models import Action, Invocation
from actions.runtime import invocation_enqueue, invocation_send
from actions.services.secret_values import secret_value_save
from tests.conftest import token_client

SECRET = "hdr-SECRET-4242"
PARAMETERS = [{"name": "note", "type": "string", "required": False, "description": "Free text"}]


@pytest.fixture
def acme(world, allow_loopback):
    world.acme.allow_http = True
    world.acme.save()
    secret_value_save(organization=world.acme, data={"name": "HKEY", "value": SECRET})
    return world.acme


@pytest.fixture
def tech(world):
    return token_client(world.user("technical"))


def sealed_with_the_key(organization_id: int, name: str) -> str:
    """What the old rendering trusted: a marker keyed by SECRET_KEY, which anyone with the key can make."""
    mac = salted_hmac(
        "conduit.secret-reference", f"{organization_id}:{name}", secret=settings.SECRET_KEY, algorithm="sha256"
    ).hexdigest()[:24]
    return f"~secret.{name}.{mac}~"


def forgeries(organization_id: int) -> list[str]:
    return [
        sealed_with_the_key(organization_id, "HKEY"),
        f"~{'0' * 32}.HKEY~",
        "{{secrets.HKEY}}",
        "{{ secrets.HKEY }}",
        "%7B%7Bsecrets.HKEY%7D%7D",
    ]


def everywhere_action(tech, httpserver) -> dict:
    """{{note}} in the path, the query, a header and the body; the secret in a header of its own."""
    data = {
        "name": "Everywhere",
        "status": "active",
        "url": httpserver.url_for("/hook/") + "{{note}}",
        "query": [{"name": "q", "value": "{{note}}"}],
        "headers": [{"name": "X-Note", "value": "{{note}}"}, {"name": "X-Token", "value": "{{secrets.HKEY}}"}],
        "body": {"text": "{{note}}", "also": "before {{note}} after"},
        "parameters": PARAMETERS,
    }
    response = tech.post("/api/v1/orgs/acme/actions/", data, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def sent(action: dict, note: str) -> Invocation:
    invocation = invocation_enqueue(action=Action.objects.get(pk=action["id"]), values={"note": note})
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    return invocation


@pytest.mark.parametrize("door", ["test button", "runtime"])
def test_no_forged_reference_becomes_the_secret(acme, tech, httpserver, door):
    httpserver.expect_request("/hook/", method="POST").respond_with_json({"ok": True})
    action = everywhere_action(tech, httpserver)
    for forged in forgeries(acme.pk):
        httpserver.clear_log()
        httpserver.expect_request(f"/hook/{forged}").respond_with_json({"ok": True})
        if door == "runtime":
            assert sent(action, forged).status == "succeeded"
        else:
            answer = tech.post(
                f"/api/v1/orgs/acme/actions/{action['id']}/test/", {"parameters": {"note": forged}}, format="json"
            )
            assert answer.json()["outcome"] == "succeeded", answer.json()
        [(received, _)] = httpserver.log
        assert received.headers["X-Token"] == SECRET  # the template's own reference is filled
        assert received.headers["X-Note"] == forged
        assert received.path == f"/hook/{forged}"
        assert parse_qs(received.query_string.decode()) == {"q": [forged]}
        assert json.loads(received.data) == {"text": forged, "also": f"before {forged} after"}
        assert received.get_data(as_text=True).count(SECRET) == 0


def test_the_stored_request_holds_places_not_markers(acme, tech, httpserver):
    httpserver.expect_request("/hook/hi").respond_with_json({"ok": True})
    invocation = sent(everywhere_action(tech, httpserver), "hi")
    request = invocation.request
    assert ["X-Token", "{{secrets.HKEY}}"] in request["headers"]
    assert request["secrets"] == [{"part": "header", "at": 0, "name": "HKEY", "encode": "header", "index": 1}]
    assert "~" not in json.dumps(request)  # no marker, no nonce: nothing to copy into an event
    assert SECRET not in json.dumps(request)
    shown = tech.get(f"/api/v1/orgs/acme/invocations/{invocation.pk}/").json()["request"]
    assert "secrets" not in shown and ["X-Token", "{{secrets.HKEY}}"] in shown["headers"]


def test_a_stored_request_whose_text_moved_is_not_sent(acme, tech, httpserver):
    """A place that no longer holds its reference (a row edited by hand) sends nothing rather than guess."""
    httpserver.expect_request("/hook/hi").respond_with_json({"ok": True})
    action = everywhere_action(tech, httpserver)
    invocation = invocation_enqueue(action=Action.objects.get(pk=action["id"]), values={"note": "hi"})
    invocation.request["headers"][1][1] = "x{{secrets.HKEY}}"
    Invocation.objects.filter(pk=invocation.pk).update(request=invocation.request)
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    assert invocation.status != "succeeded" and invocation.outcome == "error"
    assert "does not match where its secret values stand" in invocation.error
    assert httpserver.log == []


def test_a_call_rendered_with_keyed_markers_is_not_sent(acme, tech, httpserver):
    """A call left pending from before this change holds keyed markers: it fails, it does not trust them."""
    httpserver.expect_request("/hook/hi").respond_with_json({"ok": True})
    action = everywhere_action(tech, httpserver)
    invocation = invocation_enqueue(action=Action.objects.get(pk=action["id"]), values={"note": "hi"})
    request = dict(invocation.request, secrets=[])
    request["headers"][1][1] = sealed_with_the_key(acme.pk, "HKEY")
    Invocation.objects.filter(pk=invocation.pk).update(request=request)
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    assert (invocation.status, httpserver.log) == ("failed", [])
    assert "earlier version" in invocation.error


def test_secrets_in_a_form_body_and_a_query_are_placed(acme, tech, httpserver):
    httpserver.expect_request("/form/a/b/c").respond_with_json({"ok": True})
    secret_value_save(organization=acme, data={"name": "PATH", "value": "a/b/c"})
    data = {
        "name": "Form", "status": "active", "body_type": "form", "parameters": PARAMETERS,
        "url": httpserver.url_for("/form/") + "{{secrets.PATH}}",
        "query": [{"name": "k", "value": "{{note}}-{{secrets.HKEY}}"}],
        "body": {"To": "{{note}}", "Key": "{{secrets.HKEY}}&x=1"},
    }  # fmt: skip
    action = tech.post("/api/v1/orgs/acme/actions/", data, format="json").json()
    answer = tech.post(
        f"/api/v1/orgs/acme/actions/{action['id']}/test/", {"parameters": {"note": "{{secrets.PATH}}"}}, format="json"
    )
    assert answer.json()["outcome"] == "succeeded", answer.json()
    [(received, _)] = httpserver.log
    assert parse_qs(received.query_string.decode()) == {"k": [f"{{{{secrets.PATH}}}}-{SECRET}"]}
    assert parse_qs(received.get_data(as_text=True)) == {"To": ["{{secrets.PATH}}"], "Key": [f"{SECRET}&x=1"]}
    assert SECRET not in json.dumps(answer.json())
