"""Issue 16: every write operation of the API, each value of a valid body replaced in turn by a hostile
form, sent as raw bytes. No answer is a 5xx; a 400 names the field (or, when the JSON itself cannot
be read, says why); a refused request stores nothing; what is accepted reads back.

`HOSTILE_FUZZ_LEAVES` bounds how many values of each body are tried (default 12, enough for every
body here); the forms are all tried. The whole file runs in about a minute on 2 cores.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.forms.models import model_to_dict
from rest_framework.test import APIClient

from actions.models import Action, EmailSettings, EndpointLimit, Invocation, SecretValue
from actions.services.email_settings import email_settings_save
from actions.services.endpoint_limits import endpoint_limit_create
from actions.services.secret_values import secret_value_save
from journeys.models import Event, Journey, Profile
from journeys.services import journey_create
from tenants.models import ApiKey, Invitation, Membership
from tests.actions.helpers import SMS_ACTION, make_action
from tests.conftest import token_client

LEAVES = int(os.environ.get("HOSTILE_FUZZ_LEAVES", "12"))
ORG = "/api/v1/orgs/acme"


def nested(depth: int, opening: str = "[", closing: str = "]") -> str:
    return opening * depth + "1" + closing * depth


# Each form as the raw JSON text that takes the value's place.
HOSTILE: dict[str, bytes] = {
    name: text if isinstance(text, bytes) else text.encode()
    for name, text in {
        "arrays-100": nested(100),
        "arrays-1000": nested(1000),
        "arrays-10000": nested(10_000),  # past what Python's decoder itself can take
        "objects-1000": nested(1000, '{"a":', "}"),
        "2**70": str(2**70),
        "10**400": "1" + "0" * 400,
        "-10**400": "-1" + "0" * 400,
        "1e400": "1e400",
        "-1e400": "-1e400",
        "NaN": "NaN",
        "Infinity": "Infinity",
        "-Infinity": "-Infinity",
        "crlf": json.dumps("a\r\nX-Injected: 1"),
        "nul": '"a\\u0000b"',
        "lone-surrogate": '"\\ud800"',
        "invalid-utf8": b'"\xff\xfe\xc0\xaf"',
        "100k": json.dumps("x" * 100_000),
        "rtl-zero-width": json.dumps("\u202etxt.exe\u202c\u200b\ufeff"),
        "percent-and-dots": json.dumps("../%2e%2e/%00"),
        "object": "{}",
        "list": "[]",
        "null": "null",
        "true": "true",
        "empty": '""',
        "cel-parentheses-3000": json.dumps("(" * 3000 + "1" + ")" * 3000),
        "cel-sum-20000": json.dumps("+".join(["1"] * 20_000)),
        "cel-nested-map": json.dumps("[1,2,3].map(a, [1,2,3].map(b, [1,2,3].map(c, [1,2,3].map(d, d))))"),
        "template-500-deep": json.dumps("{{" * 500 + "x" + "}}" * 500),
    }.items()
}


@dataclass
class Rows:
    action: Action
    journey: Journey
    limit: EndpointLimit
    secret: SecretValue
    member: Membership


@dataclass
class Operation:
    method: str
    path: str  # under the organization's API; {action}, {journey}, ... are the rows' ids
    body: Callable[[Rows], Any]
    read: str  # a list to read back after an accepted write
    anonymous: bool = False


ACTION_BODY = {**SMS_ACTION, "name": "Fuzz SMS", "method": "POST", "timeout_ms": 3000, "max_retries": 1}


def journey_body(rows: Rows) -> dict:
    return {
        "name": "Fuzz journey", "entry_event": "cart", "reentry": "after_exit", "start": "check",
        "steps": [
            {"key": "check", "type": "condition",
             "branches": [{"expression": "event.data.total > 100.0", "next": "sms"}], "else": "done"},
            {"key": "sms", "type": "action", "action": rows.action.pk, "next": "done",
             "parameters": {"account": '"a1"', "phone": "profile.phone", "text": '"Hi " + profile.name'}},
            {"key": "done", "type": "end"},
        ],
    }  # fmt: skip


EVENT = {"name": "cart", "profile_id": "c1", "profile": {"phone": "+33600000000"}, "data": {"total": 150}}

OPERATIONS = {
    "token": Operation("POST", "/api/v1/auth/token/", lambda r: {"username": "x", "password": "y"}, "", True),
    "events": Operation("POST", "events/", lambda r: {"id": "e", **EVENT}, ""),
    "events-list": Operation("POST", "events/", lambda r: [{"id": "e", **EVENT}], ""),
    "profile-put": Operation("PUT", "profiles/c9/", lambda r: {"attributes": {"phone": "+33", "n": 1}}, "profiles/c9/"),
    "action-create": Operation("POST", "actions/", lambda r: ACTION_BODY, "actions/"),
    "action-patch": Operation("PATCH", "actions/{action}/", lambda r: {"body": {"t": "{{text}}"}}, "actions/"),
    "action-test": Operation(
        "POST", "actions/{action}/test/",
        lambda r: {"parameters": {"account": "a", "phone": "+3", "text": "Hi"}}, "invocations/",
    ),  # fmt: skip
    "action-infer": Operation("POST", "actions/infer/", lambda r: {"sample": {"to": "+33", "n": 1}}, "actions/"),
    "action-template": Operation(
        "POST", "action-templates/",
        lambda r: {"template": "webhook", "name": "Hook", "credentials": {"url": "https://hooks.example.com/in"}},
        "actions/",
    ),  # fmt: skip
    "journey-create": Operation("POST", "journeys/", journey_body, "journeys/"),
    "journey-patch": Operation("PATCH", "journeys/{journey}/", journey_body, "journeys/"),
    "journey-test": Operation(
        "POST", "journeys/{journey}/test/",
        lambda r: {"profile": {"phone": "+33", "name": "Ada"}, "event": {"data": {"total": 150}}}, "journeys/",
    ),  # fmt: skip
    "secret-create": Operation("POST", "secret-values/", lambda r: {"name": "API_TOKEN", "value": "s3cr3t"}, ""),
    "secret-patch": Operation("PATCH", "secret-values/{secret}/", lambda r: {"value": "n3w-s3cr3t"}, ""),
    "email-settings": Operation(
        "PUT", "email-settings/",
        lambda r: {"host": "smtp.example.com", "port": 587, "security": "starttls", "username": "u",
                   "password": "p", "default_from": "shop@example.com", "timeout_s": 10},
        "email-settings/",
    ),  # fmt: skip
    "limit-create": Operation(
        "POST", "endpoint-limits/",
        lambda r: {"host": "api.example.com", "calls": 10, "period_s": 1, "max_concurrent": 5}, "endpoint-limits/",
    ),  # fmt: skip
    "limit-patch": Operation("PATCH", "endpoint-limits/{limit}/", lambda r: {"calls": 20}, "endpoint-limits/"),
    "api-key": Operation("POST", "api-keys/", lambda r: {"name": "shop", "scopes": ["events:write"]}, "api-keys/"),
    "invitation": Operation(
        "POST", "invitations/", lambda r: {"email": "new@example.com", "role": "viewer"}, "invitations/"
    ),
    "member-patch": Operation("PATCH", "members/{member}/", lambda r: {"role": "marketer"}, "members/"),
    "replay": Operation(
        "POST", "invocations/replay/",
        lambda r: {"action": r.action.pk, "since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"},
        "invocations/",
    ),
}  # fmt: skip

STORED = [Action, SecretValue, EmailSettings, EndpointLimit, Invocation, Journey, Event, Profile, ApiKey, Invitation,
          Membership]  # fmt: skip


def stored() -> dict[str, list[dict]]:
    """Everything a write could change, as plain values (ciphertext included)."""
    return {model.__name__: [model_to_dict(row) for row in model.objects.order_by("pk")] for model in STORED}


def leaves(body: Any, path: tuple = ()) -> list[tuple]:
    """The path of every value in `body` that is not an object or a list (and of empty ones)."""
    if isinstance(body, dict) and body:
        return [p for key, value in body.items() for p in leaves(value, (*path, key))]
    if isinstance(body, list) and body:
        return [p for i, value in enumerate(body) for p in leaves(value, (*path, i))]
    return [path]


MARK = "\u0000hostile\u0000"


def with_hostile(body: Any, path: tuple, raw: bytes) -> bytes:
    """`body` as JSON bytes with the value at `path` replaced by `raw` (which may not be valid JSON)."""
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    if path:
        target[path[-1]] = MARK
        return json.dumps(copy).encode().replace(json.dumps(MARK).encode(), raw)
    return raw


def names_a_field(answer: dict, path: tuple) -> bool:
    """A 400 names the field: in `errors`, or in `detail` (an event's `data.total: ...`); a body that
    cannot be read as JSON at all says why instead."""
    fields = [str(p) for p in path if not isinstance(p, int)]
    where = json.dumps(answer.get("errors", {})) + " " + str(answer.get("detail", ""))
    unreadable = any(word in where for word in ("JSON", "nested at most", "UTF-8", "utf-8", "parse"))
    # An event over its size limit is named whole (`events[0]`); a login says only that it failed.
    whole = any(word in where for word in ('"events[', "Unable to log in"))
    return unreadable or whole or any(name in where for name in fields) or (not fields and bool(answer))


def try_once(client: APIClient, operation: Operation, url: str, sent: bytes, path: tuple) -> list[str]:
    """What is wrong with the answer to one hostile request."""
    before = stored()
    answer = client.generic(operation.method, url, sent, content_type="application/json")
    status = answer.status_code
    if status >= 500:
        return [f"{status} {answer.content[:200]!r}"]
    if status == 400:
        problems = [] if names_a_field(answer.json(), path) else [f"names no field: {answer.content[:300]!r}"]
        return problems + (["400, but what was stored changed"] if stored() != before else [])
    if status < 300 and operation.read:
        read = client.get(f"{ORG}/{operation.read}")
        return [] if read.status_code == 200 else [f"{status}, then reading {operation.read}: {read.status_code}"]
    if status == 202 and stored() == before:
        return ["202 accepted, but nothing was stored"]
    return []


@pytest.fixture
def rows(world) -> Rows:
    action = make_action(world.acme, url="https://10.0.0.1/v1/accounts/{{account}}/messages", max_retries=0)
    journey = journey_create(organization=world.acme, data=journey_body(Rows(action, None, None, None, None)))
    limit = endpoint_limit_create(organization=world.acme, data={"host": "sms.example.com", "calls": 5, "period_s": 1})
    secret = secret_value_save(organization=world.acme, data={"name": "SMS_TOKEN", "value": "t0ken-value"})
    email_settings_save(organization=world.acme, data={"host": "smtp.example.com", "default_from": "a@example.com"})
    return Rows(action, journey, limit, secret, world.members["viewer"])


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_hostile_values_get_a_clear_answer_and_store_nothing_when_refused(world, rows, operation):
    client = APIClient() if operation.anonymous else token_client(world.user("admin"))
    client.raise_request_exception = False  # a 500 is a finding to report, not an exception
    ids = {"action": rows.action.pk, "journey": rows.journey.pk, "limit": rows.limit.pk, "secret": rows.secret.pk,
           "member": rows.member.pk}  # fmt: skip
    url = operation.path.format(**ids) if operation.anonymous else f"{ORG}/{operation.path.format(**ids)}"
    body = operation.body(rows)
    unique = count()
    findings = []
    for path in [*leaves(body)[:LEAVES], ()]:
        for form, raw in HOSTILE.items():
            sent = with_hostile(body, path, raw)
            sent = sent.replace(b'"id": "e"', f'"id": "e{next(unique)}"'.encode())  # a new event each time
            where = f"{'.'.join(map(str, path)) or 'the body'} = {form}"
            cache.clear()  # the login throttle would answer the rest of the tries with a 429
            with transaction.atomic():  # each try starts from the same rows: what one stores is undone
                findings.extend(f"{where}: {problem}" for problem in try_once(client, operation, url, sent, path))
                transaction.set_rollback(True)
    if isinstance(body, dict):  # a field the operation does not have is named, not ignored
        with transaction.atomic():
            answer = client.generic(operation.method, url, json.dumps({**body, "zz_unknown": 1}).encode(),
                                    content_type="application/json")  # fmt: skip
            if answer.status_code != 400 or "zz_unknown" not in answer.content.decode():
                findings.append(f"an unknown field: {answer.status_code} {answer.content[:200]!r}")
            transaction.set_rollback(True)
    assert not findings, f"{len(findings)} answers:\n" + "\n".join(findings[:400])
