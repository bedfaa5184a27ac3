"""Secrets stay ciphertext outside the database too: in dumps and exports (issue 16, item 10) and in the
cache of fetched access tokens (item 17)."""

import base64
import datetime
import io
import json
import os
import pickle
import stat

import pytest
import redis
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.core.serializers.base import DeserializationError
from django.db import connection
from django.utils import timezone
from werkzeug import Request, Response

from actions.models import Action, EmailSettings, Invocation, InvocationAttempt, SecretValue
from actions.services.actions import action_test
from actions.services.email_settings import email_settings_save
from actions.services.secret_values import secret_value_save
from config.encryption import decrypt_text, encrypted_fields, is_fernet_token
from journeys.models import Event, Profile
from tenants.models import Organization
from tests.actions.helpers import make_action
from tests.factories import TEST_ENCRYPTION_KEY

FORMATS = ["json", "jsonl", "xml", "yaml"]


def _certificate_and_key() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "conduit-client")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem


@pytest.fixture
def secrets_everywhere(world) -> dict[str, dict[str, str]]:
    """One of every kind of stored secret in acme, and a token in globex: organization -> label -> clear text."""
    certificate, key_pem = _certificate_and_key()
    bearer = make_action(world.acme, client_certificate=certificate, client_key=key_pem)
    bearer.previous_signing_secret = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
    bearer.save()
    make_action(
        world.acme,
        name="CRM",
        auth={"type": "oauth2_client_credentials", "token_url": "https://auth.example.com/token",
              "client_id": "crm-client", "client_secret": "cs-SECRET-oauth-4242"},
    )  # fmt: skip
    secret_value_save(organization=world.acme, data={"name": "SLACK_HOOK", "value": "sv-SECRET-slack-9090"})
    email_settings_save(
        organization=world.acme,
        data={"host": "smtp.example.com", "username": "mailer", "password": "smtp-SECRET-pass-31",
              "default_from": "Acme <hello@acme.test>"},
    )  # fmt: skip
    make_action(world.globex, auth={"type": "bearer", "token": "tok-GLOBEX-secret-77"})
    return {
        "acme": {
            "bearer token": "tok-SECRET-123456",
            "signing secret": Action.objects.get(pk=bearer.pk).signing_secret,
            "previous signing secret": bearer.previous_signing_secret,
            "client key": key_pem.splitlines()[1],
            "client secret": "cs-SECRET-oauth-4242",
            "secret value": "sv-SECRET-slack-9090",
            "SMTP password": "smtp-SECRET-pass-31",
        },
        "globex": {"bearer token": "tok-GLOBEX-secret-77"},
    }


def _every_secret(secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    return {f"{org} {label}": value for org, labels in secrets.items() for label, value in labels.items()}


def _stored(**scope: object) -> dict[str, object]:
    """Every encrypted field of every row (of the organization given), decrypted: what a round trip gives back."""
    rows = {}
    for model in (Action, SecretValue, EmailSettings):
        for row in model.objects.filter(**scope).order_by("pk"):
            for field in encrypted_fields(model):
                rows[f"{model.__name__}:{row.pk}.{field}"] = getattr(row, field)
    return rows


def _dump(*labels: str, format: str = "json") -> str:
    out = io.StringIO()
    call_command("dumpdata", *labels, format=format, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("format", FORMATS)
def test_dumpdata_writes_no_secret_in_clear_for_any_organization(secrets_everywhere, format):
    dump = _dump(format=format)
    shown = [label for label, value in _every_secret(secrets_everywhere).items() if value in dump]
    assert shown == []
    assert "Send SMS" in dump and "smtp.example.com" in dump  # the rest of the rows is there


def test_dumpdata_writes_each_encrypted_field_as_ciphertext_the_keys_open(secrets_everywhere):
    opened = {}
    for row in json.loads(_dump("actions")):
        model = {"actions.action": Action, "actions.secretvalue": SecretValue, "actions.emailsettings": EmailSettings}
        for field in encrypted_fields(model[row["model"]]) if row["model"] in model else ():
            if row["fields"][field]:
                assert is_fernet_token(row["fields"][field]), f"{row['model']}.{field}"
                opened[f"{row['model']}:{row['pk']}.{field}"] = decrypt_text(row["fields"][field])
    clear = "\n".join(opened.values())
    assert [label for label, value in _every_secret(secrets_everywhere).items() if value not in clear] == []


def _delete_secret_rows() -> None:
    Action.objects.all().delete()
    SecretValue.objects.all().delete()
    EmailSettings.objects.all().delete()


@pytest.mark.parametrize("format", FORMATS)
def test_loaddata_of_a_dump_restores_the_same_secrets(secrets_everywhere, tmp_path, format):
    before = _stored()
    path = tmp_path / f"actions.{format}"
    path.write_text(_dump("actions", format=format))
    _delete_secret_rows()
    call_command("loaddata", str(path), verbosity=0)
    assert _stored() == before
    assert Action.objects.get(name="CRM").auth_secrets == {"client_secret": "cs-SECRET-oauth-4242"}


def test_a_dump_loads_after_a_key_rotation_but_not_without_its_key(secrets_everywhere, tmp_path, settings):
    before = _stored()
    path = tmp_path / "actions.json"
    path.write_text(_dump("actions"))
    _delete_secret_rows()
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DeserializationError, match="Cannot decrypt") as refused:
        call_command("loaddata", str(path), verbosity=0)
    assert not [value for value in _every_secret(secrets_everywhere).values() if value in str(refused.value)]
    settings.FIELD_ENCRYPTION_KEYS = [*settings.FIELD_ENCRYPTION_KEYS, TEST_ENCRYPTION_KEY]
    call_command("loaddata", str(path), verbosity=0)
    assert _stored() == before


def test_a_pasted_ciphertext_is_stored_as_typed_not_opened(secrets_everywhere, world):
    """Outside a dump a Fernet token is just text: a user cannot make Conduit open another secret's ciphertext."""
    token = json.loads(_dump("actions.secretvalue"))[0]["fields"]["value"]
    secret = secret_value_save(organization=world.globex, data={"name": "PASTED", "value": token})
    assert SecretValue.objects.get(pk=secret.pk).value == token


def _export(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("export_organization", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_export_organization_without_the_flag_holds_no_secret(secrets_everywhere):
    export, _ = _export("acme")
    assert [label for label, value in _every_secret(secrets_everywhere).items() if value in export] == []
    rows = json.loads(export)
    assert {row["model"] for row in rows} >= {"tenants.organization", "tenants.membership", "actions.action",
                                              "actions.secretvalue", "actions.emailsettings"}  # fmt: skip
    assert "Globex" not in export and "tok-GLOBEX" not in export


def test_export_organization_with_secrets_holds_its_own_secrets_only(secrets_everywhere):
    export, warning = _export("acme", "--with-secrets")
    assert [label for label, value in secrets_everywhere["acme"].items() if value not in export] == []
    assert "tok-GLOBEX-secret-77" not in export and "Globex" not in export
    assert "in clear" in warning


def test_an_export_with_secrets_moves_an_organization_to_other_keys(secrets_everywhere, tmp_path, settings, world):
    invocation = Invocation.objects.create(organization=world.acme, action=Action.objects.get(name="CRM"))
    InvocationAttempt.objects.create(invocation=invocation, number=1, outcome="succeeded", started_at=timezone.now())
    profile = Profile.objects.create(organization=world.acme, external_id="cust-1", attributes={"plan": "gold"})
    Event.objects.create(organization=world.acme, profile=profile, name="signed_up", occurred_at=timezone.now())
    before = _stored(organization__slug="acme")
    path = tmp_path / "acme.json"
    call_command("export_organization", "acme", "--with-secrets", "--output", str(path), stderr=io.StringIO())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    Organization.objects.filter(slug="acme").delete()
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # another installation: the old key is not there at all
    call_command("loaddata", str(path), verbosity=0)
    assert _stored(organization__slug="acme") == before
    acme = Organization.objects.get(slug="acme")
    assert acme.memberships.count() == 4 and acme.events.get().profile.attributes == {"plan": "gold"}
    assert InvocationAttempt.objects.get(invocation__organization=acme).invocation_id == invocation.pk


@pytest.mark.parametrize("format", ["xml", "yaml"])
def test_export_organization_in_other_formats_holds_no_secret(secrets_everywhere, format):
    export, _ = _export("acme", "--format", format)
    assert [label for label, value in _every_secret(secrets_everywhere).items() if value in export] == []
    assert "Send SMS" in export


def test_export_of_an_unknown_organization_is_a_clear_error(world):
    with pytest.raises(CommandError, match="No organization has the slug 'nope'"):
        _export("nope")


# Item 17: fetched access tokens are cached encrypted.

VALUES = {"account": "acc1", "phone": "+33600000000", "text": "hello"}


class TokenEndpoint:
    """A loopback token endpoint handing out `access-<n>-a1b2c3`, and an API that takes only the newest one."""

    def __init__(self, httpserver):
        self.issued: list[str] = []
        httpserver.expect_request("/oauth/token").respond_with_handler(self.token)
        httpserver.expect_request("/v1/acc1/messages").respond_with_handler(self.api)

    def token(self, request: Request) -> Response:
        self.issued.append(f"access-{len(self.issued) + 1}-a1b2c3")
        body = {"access_token": self.issued[-1], "expires_in": 3600, "data": {"jwt": self.issued[-1]}}
        return Response(json.dumps(body), content_type="application/json")

    def api(self, request: Request) -> Response:
        sent = request.headers.get("Authorization", "") or request.headers.get("X-Token", "")
        if not self.issued or sent.removeprefix("Bearer ") != self.issued[-1]:
            return Response("expired", status=401)
        return Response(json.dumps({"ok": True}), content_type="application/json")


@pytest.fixture
def token_action(world, allow_loopback, httpserver):
    world.acme.allow_http = True
    world.acme.save()
    endpoint = TokenEndpoint(httpserver)
    action = make_action(
        world.acme,
        url=httpserver.url_for("/v1/{{account}}/messages"),
        auth={"type": "oauth2_client_credentials", "token_url": httpserver.url_for("/oauth/token"),
              "client_id": "cid", "client_secret": "csecret-42"},
    )  # fmt: skip
    return action, endpoint


def _cache_rows() -> dict[str, bytes]:
    """What the cache holds, as stored: key -> the raw (pickled) value, from the database cache's
    table or from Redis, whichever the settings use."""
    location = django_settings.CACHES["default"]["LOCATION"]
    if django_settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        client = redis.Redis.from_url(location)
        return {key.decode(): client.get(key) for key in client.scan_iter("*conduit:token:*")}
    table = connection.ops.quote_name(location)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT cache_key, value FROM {table}")  # noqa: S608 -- the table name is a setting
        return {key: base64.b64decode(value) for key, value in cursor.fetchall()}


def _token_entries() -> dict[str, bytes]:
    return {key: value for key, value in _cache_rows().items() if ":conduit:token:" in key}


def test_a_fetched_token_is_cached_encrypted_and_reused(token_action):
    action, endpoint = token_action
    assert action_test(action=action, values=VALUES).outcome == "succeeded"
    entries = _token_entries()
    assert len(entries) == 1
    (stored,) = entries.values()
    assert b"access-1-a1b2c3" not in stored and b"csecret-42" not in stored
    assert decrypt_text(pickle.loads(stored)) == "access-1-a1b2c3"  # noqa: S301 -- our own test cache
    assert action_test(action=action, values=VALUES).outcome == "succeeded"
    assert endpoint.issued == ["access-1-a1b2c3"]  # the token endpoint was asked once


@pytest.mark.parametrize(
    "tampered",
    ["access-1-a1b2c3", "not a token at all", Fernet(Fernet.generate_key()).encrypt(b"forged").decode(), 42, ""],
)
def test_a_cache_entry_no_key_opens_is_a_miss_and_a_fresh_token_is_fetched(token_action, tampered, httpserver):
    action, endpoint = token_action
    assert action_test(action=action, values=VALUES).outcome == "succeeded"
    (raw_key,) = _token_entries()
    cache.set(raw_key.split(":", 2)[2], tampered, 600)  # the stored key carries the cache's ":1:" version prefix
    result = action_test(action=action, values=VALUES)
    assert result.outcome == "succeeded"
    assert endpoint.issued == ["access-1-a1b2c3", "access-2-a1b2c3"]
    sent = [request.headers["Authorization"] for request, _ in httpserver.log if request.path.startswith("/v1/")]
    assert sent == ["Bearer access-1-a1b2c3", "Bearer access-2-a1b2c3"]  # the tampered value never went out


def test_a_token_cached_before_a_key_rotation_is_fetched_again(token_action, settings):
    action, endpoint = token_action
    assert action_test(action=action, values=VALUES).outcome == "succeeded"
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), TEST_ENCRYPTION_KEY]
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]
    action.refresh_from_db()
    assert action_test(action=action, values=VALUES).outcome == "succeeded"
    assert endpoint.issued == ["access-1-a1b2c3", "access-2-a1b2c3"]
    assert all(b"access-2-a1b2c3" not in value for value in _token_entries().values())


def test_a_token_endpoint_token_is_cached_encrypted_too(world, allow_loopback, httpserver):
    world.acme.allow_http = True
    world.acme.save()
    endpoint = TokenEndpoint(httpserver)
    auth = {
        "type": "token_endpoint",
        "request": {"url": httpserver.url_for("/oauth/token"), "method": "POST", "body": {"user": "u"}},
        "token_path": "data.jwt", "cache_seconds": 600, "inject": {"as": "header", "name": "X-Token"},
    }  # fmt: skip
    action = make_action(world.acme, url=httpserver.url_for("/v1/{{account}}/messages"), auth=auth)
    assert [action_test(action=action, values=VALUES).outcome for _ in range(2)] == ["succeeded"] * 2
    assert endpoint.issued == ["access-1-a1b2c3"]
    assert [value for value in _token_entries().values() if b"access-1" in value] == []
