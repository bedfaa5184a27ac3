"""Secret values: `{{secrets.NAME}}` in an action's URL, query, headers or body.

A rendered request never holds a secret value. It records where each of the action's own
`{{secrets.NAME}}` stands (part, offset, encoding) and shows `{{secrets.NAME}}` there; the value
goes in at those places right before the call. Rendered text is never searched for references:
text from events, profiles or providers cannot become a secret, whatever it holds and whatever
SECRET_KEY is (no key is involved).
"""

import contextlib
import contextvars
import json
import re
import secrets as random
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

from config.common.identifiers import IDENTIFIER

REFERENCE = re.compile(rf"\{{\{{\s*secrets\.({IDENTIFIER})\s*\}}\}}")
# Before this module placed secrets by position, rendering left `~secret.NAME.<mac>~` in the text.
LEGACY_SEALED = re.compile(rf"~secret\.{IDENTIFIER}\.[0-9a-f]{{24}}~")
# Characters a secret may keep in a URL path (Slack's webhook path holds slashes).
PATH_SAFE = "/:@!$&'()*+,;="
ENCODINGS = {
    "path": lambda value: quote(value, safe=PATH_SAFE),
    "query": quote_plus,
    "header": str,
    "form": quote_plus,
    "json": lambda value: in_json_string(value),
}


class SecretMissing(ValueError):
    """A secret value the request needs cannot be put in: deleted since, or unfit for its place."""


def shown(name: str) -> str:
    return "{{secrets." + name + "}}"


def names_in(text: str) -> set[str]:
    return set(REFERENCE.findall(text))


def in_json_string(value: str) -> str:
    """`value` as it looks inside a JSON string."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


class Placing:
    """One rendering's markers for the template's references, and where they ended up.

    The marker holds a random nonce made for this rendering only, after the parameter values were
    fixed: no value can hold it. It survives URL, form and JSON encoding unchanged (`~`, `.`,
    letters, digits and `_` only), so it is found exactly where the template put the reference.
    """

    def __init__(self) -> None:
        self.nonce = random.token_hex(16)
        self._marker = re.compile(rf"~{self.nonce}\.({IDENTIFIER})~")

    def mark(self, text: str) -> str:
        """Template text with each {{secrets.NAME}} replaced by this rendering's marker."""
        if "secrets." not in text:
            return text
        return REFERENCE.sub(lambda m: f"~{self.nonce}.{m.group(1)}~", text)

    def place(self, text: str, part: str, encode: Any, index: int | None = None) -> tuple[str, list[dict]]:
        """Rendered text with its markers shown as {{secrets.NAME}}, and each one's place.

        `encode`: the encoding's name, or a function of the marker's offset giving it (a URL's path or query).
        """
        if self.nonce not in text:
            return text, []
        out, places, last = [], [], 0
        length = 0
        for match in self._marker.finditer(text):
            out.append(text[last : match.start()])
            length += match.start() - last
            name = match.group(1)
            encoding = encode(match.start()) if callable(encode) else encode
            place = {"part": part, "at": length, "name": name, "encode": encoding}
            if index is not None:
                place["index"] = index
            places.append(place)
            out.append(shown(name))
            length += len(shown(name))
            last = match.end()
        out.append(text[last:])
        return "".join(out), places


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


def secrets_preload(organization_id: int, names: set[str]) -> None:
    """Read these secret values into the batch's cache now, from the thread that holds the database:
    the calls in flight then fill them in without a query of their own."""
    if names and _batch.get() is not None:
        _load(organization_id, names)


def _fill(text: str, places: list[dict], values: dict[str, str]) -> str:
    for place in sorted(places, key=lambda p: p["at"], reverse=True):  # from the end: earlier offsets hold
        at, name = place["at"], place["name"]
        if text[at : at + len(shown(name))] != shown(name):
            raise SecretMissing("The stored request does not match where its secret values stand; it was not sent.")
        text = text[:at] + ENCODINGS[place["encode"]](values[name]) + text[at + len(shown(name)) :]
    return text


def unseal(
    *, organization_id: int, url: str, headers: list[tuple[str, str]], body: bytes | None, places: list[dict]
) -> tuple[str, list[tuple[str, str]], bytes | None, dict[str, str]]:
    """Put the secrets' values in at their places; return the request's parts and, to show in records,
    each value's label.

    Raises SecretMissing naming a secret that was deleted since the call was rendered.
    """
    if not places:
        return url, headers, body, {}
    values = _load(organization_id, {place["name"] for place in places})
    missing = sorted({place["name"] for place in places} - set(values))
    if missing:
        raise SecretMissing(f"The secret value {missing[0]} does not exist in this organization any more.")
    for place in places:
        if place["part"] == "header" and ("\r" in values[place["name"]] or "\n" in values[place["name"]]):
            raise SecretMissing(f"The secret value {place['name']} holds a line break and cannot go in a header.")
    url = _fill(url, [p for p in places if p["part"] == "url"], values)
    headers = [
        (name, _fill(value, [p for p in places if p["part"] == "header" and p.get("index") == index], values))
        for index, (name, value) in enumerate(headers)
    ]
    in_body = [p for p in places if p["part"] == "body"]
    if in_body and body is not None:
        body = _fill(body.decode(), in_body, values).encode()
    return url, headers, body, {value: shown(name) for name, value in values.items() if len(value) >= 4}
