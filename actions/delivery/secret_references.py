"""Secret values: `{{secrets.NAME}}` in an action's URL, query, headers or body.

A rendered request never holds a secret. Rendering puts a sealed reference in its place
(`~secret.NAME.<mac>~`, only characters that URL, form and JSON encoding leave alone), and
the value is put in right before the call, encoded for where it stands. The MAC, keyed by
the installation's SECRET_KEY and the organization, means that a parameter value (which may
come from an event) cannot forge a reference and make a secret go where it was not put.
Stored invocations, replays and every page show the reference as `{{secrets.NAME}}`.
"""

import contextlib
import contextvars
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from config.common.identifiers import IDENTIFIER
from config.common.json_values import map_strings

REFERENCE = re.compile(rf"\{{\{{\s*secrets\.({IDENTIFIER})\s*\}}\}}")
SEALED = re.compile(rf"~secret\.({IDENTIFIER})\.([0-9a-f]{{24}})~")
# Characters a secret may keep in a URL path (Slack's webhook path holds slashes).
PATH_SAFE = "/:@!$&'()*+,;="


class SecretMissing(ValueError):
    """A sealed reference names a secret the organization no longer has."""


def _mac(organization_id: int, name: str, key: str | None = None) -> str:
    value = f"{organization_id}:{name}"
    return salted_hmac("conduit.secret-reference", value, secret=key, algorithm="sha256").hexdigest()[:24]


def _is_ours(mac: str, organization_id: int, name: str) -> bool:
    """Sealed with SECRET_KEY, or a key in SECRET_KEY_FALLBACKS (calls still pending over a key change)."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return any(constant_time_compare(mac, _mac(organization_id, name, key)) for key in keys)


def seal(text: str, organization_id: int) -> str:
    """Template text with each {{secrets.NAME}} replaced by its sealed reference."""
    if "secrets." not in text:
        return text
    return REFERENCE.sub(lambda m: f"~secret.{m.group(1)}.{_mac(organization_id, m.group(1))}~", text)


def names_in(text: str) -> set[str]:
    return set(REFERENCE.findall(text))


def readable(value: Any, organization_id: int) -> Any:
    """A rendered request (or a part of it) as people see it: sealed references as {{secrets.NAME}}.

    Only references this organization sealed: a value that merely looks like one was sent as that
    text, and is shown as it was sent.
    """

    def shown(match: re.Match) -> str:
        name, mac = match.groups()
        return "{{secrets." + name + "}}" if _is_ours(mac, organization_id, name) else match.group(0)

    return map_strings(value, lambda text: SEALED.sub(shown, text) if "~secret." in text else text)


_batch: contextvars.ContextVar[dict | None] = contextvars.ContextVar("conduit_secret_values", default=None)


@contextlib.contextmanager
def batch_cache() -> Iterator[None]:
    """Within a batch of calls, each secret value is read (and decrypted) once, not once per call.

    A batch lasts seconds at most: a value changed meanwhile is used from the next batch on.
    """
    token = _batch.set({})
    try:
        yield
    finally:
        _batch.reset(token)


def _load(organization_id: int, names: set[str]) -> dict[str, str]:
    from actions.models import SecretValue

    cache = _batch.get()
    if cache is None:
        cache = {}  # outside a batch (a test call): read each time
    known = {name: cache[(organization_id, name)] for name in names if (organization_id, name) in cache}
    missing = names - set(known)
    if missing:
        rows = SecretValue.objects.filter(organization_id=organization_id, name__in=missing)
        for name, value in rows.values_list("name", "value"):
            known[name] = cache[(organization_id, name)] = value
    return known


def secrets_preload(organization_id: int, texts: list[str]) -> None:
    """Read the secret values these texts refer to into the batch's cache now, from the thread that
    holds the database: the calls in flight then fill them in without a query of their own."""
    names = _sealed_names([t for t in texts if "~secret." in t], organization_id)
    if names and _batch.get() is not None:
        _load(organization_id, names)


def _sealed_names(texts: list[str], organization_id: int) -> set[str]:
    names = set()
    for text in texts:
        for name, mac in SEALED.findall(text):
            if _is_ours(mac, organization_id, name):
                names.add(name)
    return names


def _substitute(text: str, organization_id: int, values: dict[str, str], encode) -> str:
    def put(match: re.Match) -> str:
        name, mac = match.groups()
        if not _is_ours(mac, organization_id, name):
            return match.group(0)  # not ours: a value that only looks like a reference stays as it is
        return encode(values[name])

    return SEALED.sub(put, text)


def in_json_string(value: str) -> str:
    """`value` as it looks inside a JSON string."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def unseal(
    *, organization_id: int, url: str, headers: list[tuple[str, str]], body: bytes | None, form: bool
) -> tuple[str, list[tuple[str, str]], bytes | None, dict[str, str]]:
    """Put the secrets' values in; return the request's parts and, to show in records, each value's label.

    Raises SecretMissing naming a secret that was deleted since the call was rendered.
    """
    body_text = body.decode() if body is not None and b"~secret." in body else None
    texts = [url, *(value for _, value in headers), *([body_text] if body_text else [])]
    names = _sealed_names([t for t in texts if "~secret." in t], organization_id)
    if not names:
        return url, headers, body, {}
    values = _load(organization_id, names)
    missing = sorted(names - set(values))
    if missing:
        raise SecretMissing(f"The secret value {missing[0]} does not exist in this organization any more.")
    for name, value in values.items():
        if ("\r" in value or "\n" in value) and any(f"~secret.{name}." in v for _, v in headers):
            raise SecretMissing(f"The secret value {name} holds a line break and cannot go in a header.")
    path, mark, query = url.partition("?")  # URLs hold no #fragment (refused at save)
    url = _substitute(path, organization_id, values, lambda v: quote(v, safe=PATH_SAFE))
    url += mark + _substitute(query, organization_id, values, quote_plus)
    headers = [(name, _substitute(value, organization_id, values, str)) for name, value in headers]
    if body_text is not None:
        # As the action's body_type rendered it: a form field, or inside a JSON string (without its quotes).
        body = _substitute(body_text, organization_id, values, quote_plus if form else in_json_string).encode()
    return url, headers, body, {value: "{{secrets." + name + "}}" for name, value in values.items() if len(value) >= 4}
