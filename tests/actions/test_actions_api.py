import logging

import pytest

from actions.models import Action
from tests.actions.helpers import SMS_ACTION, make_action
from tests.conftest import key_client, token_client

ACTIONS = "/api/v1/orgs/acme/actions/"
SECRETS = ["tok-SECRET-123456", "whsec_"]


def _post(world, body, role="technical"):
    return token_client(world.user(role)).post(ACTIONS, body, format="json")


def test_technical_user_creates_an_action_and_reads_it_back_without_secrets(world, caplog):
    caplog.set_level(logging.DEBUG)
    response = _post(world, SMS_ACTION)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["auth"] == {"type": "bearer", "token_set": True}
    assert body["signing_secret_set"] is True
    assert body["url"] == SMS_ACTION["url"]
    detail = token_client(world.user("technical")).get(f"{ACTIONS}{body['id']}/")
    assert b"tok-SECRET" not in response.content
    for text in (detail.content, caplog.text.encode()):
        for secret in SECRETS:
            assert secret.encode() not in text
    stored = Action.objects.get(pk=body["id"])
    assert stored.auth_secrets == {"token": "tok-SECRET-123456"}
    # The generated signing secret is answered once, to the request that asked for it, so a receiver can verify.
    assert body["generated_signing_secret"] == stored.signing_secret and stored.signing_secret.startswith("whsec_")
    assert detail.json()["generated_signing_secret"] is None


def test_a_signing_secret_generated_again_is_answered_once_and_a_given_one_never(world):
    action = make_action(world.acme)
    client = token_client(world.user("technical"))
    again = client.patch(f"{ACTIONS}{action.pk}/", {"signing_secret": "generate"}, format="json").json()
    action.refresh_from_db()
    assert again["generated_signing_secret"] == action.signing_secret != ""
    given = "whsec_" + "a2V5" * 11
    answer = client.patch(f"{ACTIONS}{action.pk}/", {"signing_secret": given}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["generated_signing_secret"] is None and given.encode() not in answer.content
    listed = client.get(ACTIONS).content
    assert b"whsec_" not in listed


def test_secrets_are_encrypted_at_rest(world):
    from django.db import connection

    action = make_action(world.acme)
    with connection.cursor() as cursor:
        cursor.execute("SELECT auth_secrets, signing_secret FROM actions_action WHERE id = %s", [action.pk])
        raw_secrets, raw_signing = cursor.fetchone()
    assert "tok-SECRET" not in raw_secrets and raw_secrets.startswith("gAAAA")
    assert "whsec_" not in raw_signing


def test_omitting_a_secret_on_update_keeps_it(world):
    action = make_action(world.acme)
    client = token_client(world.user("technical"))
    response = client.patch(f"{ACTIONS}{action.pk}/", {"auth": {"type": "bearer"}}, format="json")
    assert response.status_code == 200, response.content
    action.refresh_from_db()
    assert action.auth_secrets == {"token": "tok-SECRET-123456"}
    client.patch(f"{ACTIONS}{action.pk}/", {"auth": {"type": "bearer", "token": "new-token-999"}}, format="json")
    action.refresh_from_db()
    assert action.auth_secrets == {"token": "new-token-999"}


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_marketer_and_viewer_see_the_palette_only(world, role):
    active = make_action(world.acme)
    make_action(world.acme, name="Draft one", status="draft")
    client = token_client(world.user(role))
    listed = client.get(ACTIONS).json()["results"]
    assert [a["name"] for a in listed] == ["Send SMS"]
    detail = client.get(f"{ACTIONS}{active.pk}/").json()
    assert set(detail) == {"id", "name", "description", "status", "parameters", "used_in"}
    text = client.get(f"{ACTIONS}{active.pk}/").content.decode()
    for forbidden in ("sms.example.com", "X-Tenant", "auth", "signing", "certificate", "tok-SECRET"):
        assert forbidden not in text


def test_api_key_with_read_scope_sees_the_palette(world):
    from tenants.services import api_key_create

    make_action(world.acme)
    _, raw = api_key_create(organization=world.acme, name="reader", scopes=["read"])
    listed = key_client(raw).get(ACTIONS).json()["results"]
    assert listed[0]["name"] == "Send SMS" and "url" not in listed[0]


BAD_INPUT = [
    ({"body": {"to": "{{nobody}}"}}, "body"),
    ({"parameters": [{"name": "phone", "type": "money"}]}, "parameters"),
    ({"headers": [{"name": "Host", "value": "evil"}]}, "headers"),
    ({"headers": [{"name": "Content-Length", "value": "1"}]}, "headers"),
    ({"headers": [{"name": "X Bad", "value": "1"}]}, "headers"),
    ({"url": "/v1/messages"}, "url"),
    ({"url": "https://user:pw@sms.example.com/x"}, "url"),
    ({"url": "http://sms.example.com/x"}, "url"),
    ({"url": "https://{{account}}.example.com/x"}, "url"),
    ({"auth": {"type": "basic", "password": "x"}}, "auth"),
    ({"auth": {"type": "oauth2_client_credentials", "client_id": "c", "client_secret": "s"}}, "auth"),
    ({"auth": {"type": "carrier-pigeon"}}, "auth"),
    ({"auth": "bearer"}, "auth"),
    ({"body": "not json"}, "body"),
    ({"timeout_ms": 60000}, "timeout_ms"),
    ({"max_retries": 11}, "max_retries"),
    ({"max_retries": "many"}, "max_retries"),
    ({"rate_limit_calls": 5}, "rate_limit_period_s"),
    ({"signing_secret": "not-a-secret"}, "signing_secret"),
    ({"surprise": 1}, "surprise"),
    ({"method": "TRACE"}, "method"),
    (
        {"client_certificate": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"},
        "client_certificate",
    ),
]


@pytest.mark.parametrize("change, field", BAD_INPUT, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD_INPUT)])
def test_bad_action_input_gets_400_naming_the_field(world, change, field):
    response = _post(world, {**SMS_ACTION, **change})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["detail"] == "Invalid input."
    assert field in body["errors"], body
    assert not Action.objects.exists()


def test_undeclared_placeholder_message_names_it(world):
    response = _post(world, {**SMS_ACTION, "body": {"to": "{{nobody}}"}})
    assert response.json()["errors"]["body"] == ["body.to: placeholder {{nobody}} names no declared parameter"]


def test_bad_update_keeps_what_is_stored(world):
    action = make_action(world.acme)
    response = token_client(world.user("admin")).patch(
        f"{ACTIONS}{action.pk}/", {"url": "ftp://x", "description": "changed"}, format="json"
    )
    assert response.status_code == 400
    action.refresh_from_db()
    assert action.url == SMS_ACTION["url"] and action.description == SMS_ACTION["description"]


def test_plain_http_allowed_where_the_organization_allows_it(world):
    world.acme.allow_http = True
    world.acme.save()
    assert _post(world, {**SMS_ACTION, "url": "http://sms.internal/x"}).status_code == 201


def test_duplicate_name_is_a_400_on_name(world):
    make_action(world.acme)
    response = _post(world, SMS_ACTION)
    assert response.status_code == 400 and "name" in response.json()["errors"]


def test_infer_from_a_sample_payload_and_response(world):
    client = token_client(world.user("technical"))
    sample = {"to": "+33600000000", "amount": 12.5, "when": "2026-11-29T10:00:00Z", "meta": {"vip": True}}
    answer = client.post(
        f"{ACTIONS}infer/",
        {"sample": sample, "parameters": ["to", "meta.vip"], "sample_response": {"id": "m1", "n": 2}},
        format="json",
    ).json()
    assert {f["path"]: f["type"] for f in answer["fields"]} == {
        "to": "string", "amount": "decimal", "when": "datetime", "meta.vip": "boolean",
    }  # fmt: skip
    assert answer["body"] == {
        "to": "{{to}}",
        "amount": 12.5,
        "when": "2026-11-29T10:00:00Z",
        "meta": {"vip": "{{vip}}"},
    }
    assert [(p["name"], p["type"]) for p in answer["parameters"]] == [("to", "string"), ("vip", "boolean")]
    assert answer["response_schema"] == {
        "type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}},
    }  # fmt: skip
    created = _post(
        world,
        {
            **SMS_ACTION,
            "name": "From sample",
            "url": "https://sms.example.com/v1/messages",
            "body": answer["body"],
            "parameters": answer["parameters"],
        },
    )
    assert created.status_code == 201, created.content
    bad = client.post(f"{ACTIONS}infer/", {"sample": sample, "parameters": ["nope"]}, format="json")
    assert bad.status_code == 400 and "parameters" in bad.json()["errors"]


def test_export_carries_no_secret_and_imports_as_a_draft_elsewhere(world):
    action = make_action(world.acme)
    exported = token_client(world.user("technical")).get(f"{ACTIONS}{action.pk}/export/")
    assert exported.status_code == 200
    assert b"tok-SECRET" not in exported.content and b"whsec_" not in exported.content
    imported = token_client(world.globex_admin.user).post(
        "/api/v1/orgs/globex/actions/import/", exported.json(), format="json"
    )
    assert imported.status_code == 201, imported.content
    body = imported.json()
    assert body["status"] == "draft" and body["auth"] == {"type": "bearer", "token_set": False}
    assert Action.objects.get(pk=body["id"]).organization == world.globex
    activate = token_client(world.globex_admin.user).patch(
        f"/api/v1/orgs/globex/actions/{body['id']}/", {"status": "active"}, format="json"
    )
    assert activate.status_code == 400 and "token: required" in activate.json()["errors"]["auth"][0]


def test_duplicate_makes_a_draft_copy(world):
    action = make_action(world.acme)
    copy = token_client(world.user("technical")).post(f"{ACTIONS}{action.pk}/duplicate/").json()
    assert copy["name"] == "Send SMS (copy)" and copy["status"] == "draft"
    assert Action.objects.get(pk=copy["id"]).auth_secrets == {"token": "tok-SECRET-123456"}


def test_client_certificate_can_be_set_and_removed(world):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "conduit-client")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    action = make_action(world.acme)
    client = token_client(world.user("technical"))
    url = f"{ACTIONS}{action.pk}/"
    answer = client.patch(url, {"client_certificate": pem, "client_key": key_pem}, format="json").json()
    assert answer["client_key_set"] is True and "PRIVATE KEY" not in str(answer)
    answer = client.patch(url, {"clear_client_certificate": True}, format="json").json()
    assert answer["client_key_set"] is False and answer["client_certificate"] == ""
