"""Masking: a secret never shows in a recorded request, answer or error, in any form it is written in."""

import base64
import functools
import html
import json
import re
from urllib.parse import quote, quote_plus

from actions.delivery.secret_references import PATH_SAFE, in_json_string

MASK = "********"


@functools.lru_cache(maxsize=512)  # masking runs several times per call: the forms are made once per value
def _forms(secret: str) -> frozenset[str]:
    """A secret as given, and as the encodings providers echo it in write it: a query, a path, a JSON
    string (with `/` escaped as `\\/`, or every character as `\\u` escapes), HTML, base64."""
    raw = secret.encode()
    forms = {secret, quote_plus(secret), quote(secret, safe=""), quote(secret, safe=PATH_SAFE), html.escape(secret)}
    for quoted in list(forms - {secret}):
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted))  # %2f as well as %2F
    for json_form in (in_json_string(secret), json.dumps(secret)[1:-1]):
        forms |= {json_form, json_form.replace("/", "\\/")}
    escaped = "".join(f"\\u{code:04x}" for code in _utf16(secret))
    forms |= {escaped, escaped.upper().replace("\\U", "\\u")}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        forms |= {encoded.decode(), encoded.decode().rstrip("=")}
    return frozenset(form for form in forms if form)


def _utf16(text: str) -> list[int]:
    data = text.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def mask(text: str, secrets: list[str], named: dict[str, str] | None = None) -> str:
    """Replace each secret with ********, or with its label in `named` (value -> {{secrets.NAME}})."""
    labels = {form: label for value, label in (named or {}).items() for form in _forms(value)}
    labels.update({form: MASK for secret in secrets for form in _forms(secret) if form not in labels})
    for form in sorted(labels, key=len, reverse=True):
        text = text.replace(form, labels[form])
    return text
