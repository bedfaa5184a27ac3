"""Templates to a concrete request: parameters, placeholders and their types (SPEC section 2).

Save-time validation and call-time rendering share this module, so what is
accepted when saved is exactly what can be rendered later.
"""

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from django.utils.dateparse import parse_date, parse_datetime

from actions.delivery.secret_references import REFERENCE, Placing
from config.common.identifiers import NAME
from config.common.json_values import map_strings, walk_strings

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")  # any length: a long name is refused by name
# Anything that looks like a placeholder, to catch typos such as {{ first name }}.
ANY_BRACES = re.compile(r"\{\{(.*?)\}\}")
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
PARAMETER_TYPES = ("string", "integer", "decimal", "boolean", "datetime", "date", "list", "object")
PARAMETER_KEYS = {"name", "type", "required", "default", "description"}
# Set by the transport itself; a template may not forge them.
RESERVED_HEADERS = {
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
    "te", "trailer", "proxy-authorization", "proxy-connection",
}  # fmt: skip
METHODS = ("POST", "PUT", "PATCH", "GET", "DELETE")
BODY_TYPES = ("json", "form")
FORM = "application/x-www-form-urlencoded"


class RenderError(ValueError):
    """Parameter values that do not fit the action; `errors` maps parameter name to message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _shown(value: Any) -> str:
    try:
        return json.dumps(value, default=str)[:80]
    except (TypeError, ValueError):
        return repr(value)[:80]


# --- types --------------------------------------------------------------------------


def _finite(value: float | Decimal) -> bool:
    return math.isfinite(value) if isinstance(value, float) else value.is_finite()


def coerce(parameter: dict, value: Any) -> Any:
    """Check `value` against the parameter's declared type; return it in that type."""
    kind, name = parameter["type"], parameter["name"]

    def wrong() -> ValueError:
        return ValueError(f"parameter {name}: expected {kind}, got {_shown(value)}")

    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return str(value)
        raise wrong()
    if kind == "integer":
        if isinstance(value, bool):
            raise wrong()
        if isinstance(value, int):
            return value
        if isinstance(value, float | Decimal) and _finite(value) and value == int(value):
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            return int(value)
        raise wrong()
    if kind == "decimal":
        if isinstance(value, bool):
            raise wrong()
        if isinstance(value, int):
            return Decimal(value)
        if isinstance(value, float | Decimal) and _finite(value):
            return Decimal(str(value))
        if isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                raise wrong() from None
            if number.is_finite():
                return number
        raise wrong()
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise wrong()
    if kind == "datetime":
        parsed = value if isinstance(value, datetime) else None
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
        if parsed is None:
            raise wrong()
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if kind == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str):
            try:
                parsed_date = parse_date(value.strip())
            except ValueError:
                parsed_date = None
            if parsed_date is not None:
                return parsed_date
        raise wrong()
    if kind == "list":
        if isinstance(value, list | tuple):
            return list(value)
        raise wrong()
    if kind == "object":
        if isinstance(value, dict):
            return value
        raise wrong()
    raise ValueError(f"parameter {name}: unknown type {kind!r}")


def to_json_value(value: Any) -> Any:
    """A coerced value as it goes into a JSON body: numbers stay numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    return value


def to_text(value: Any) -> str:
    """A coerced value as it goes inside a longer string, a path, a query or a header."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(to_json_value(value), separators=(",", ":"), ensure_ascii=False)
    return str(value)


# --- validation at save time --------------------------------------------------------


def validate_parameters(parameters: Any) -> list[str]:
    """Problems with the parameter declarations, each naming the parameter."""
    if not isinstance(parameters, list):
        return ["must be a list of {name, type, required, default, description}"]
    problems, seen = [], set()
    for index, parameter in enumerate(parameters):
        where = f"parameter {index + 1}"
        if not isinstance(parameter, dict):
            problems.append(f"{where}: must be an object with name and type")
            continue
        name = parameter.get("name")
        if isinstance(name, str) and NAME.match(name):
            where = f"parameter {name}"
            if name in seen:
                problems.append(f"{where}: declared twice")
            seen.add(name)
        else:
            problems.append(f"{where}: name {_shown(name)} must be letters, digits and _")
        unknown = sorted(set(parameter) - PARAMETER_KEYS)
        if unknown:
            problems.append(f"{where}: unknown key {unknown[0]!r}")
        if parameter.get("type") not in PARAMETER_TYPES:
            problems.append(
                f"{where}: unknown type {_shown(parameter.get('type'))}; choose one of {', '.join(PARAMETER_TYPES)}"
            )
            continue
        if not isinstance(parameter.get("required", True), bool):
            problems.append(f"{where}: required must be true or false")
        if not isinstance(parameter.get("description", ""), str):
            problems.append(f"{where}: description must be text")
        if parameter.get("default") is not None and isinstance(name, str):
            try:
                coerce(parameter, parameter["default"])
            except ValueError as exc:
                problems.append(f"{exc} (the default)")
    return problems


def normalize_parameters(parameters: list[dict]) -> list[dict]:
    return [
        {
            "name": p["name"],
            "type": p["type"],
            "required": p.get("required", True),
            "default": p.get("default"),
            "description": p.get("description", ""),
        }
        for p in parameters
    ]


def placeholder_problems(text: str, declared: set[str], where: str, secrets: set[str] | None = None) -> list[str]:
    """`secrets`: the organization's secret value names, or None where {{secrets.NAME}} may not stand."""
    problems = []
    for match in ANY_BRACES.finditer(text):
        inner = match.group(0)
        found = PLACEHOLDER.fullmatch(inner)
        secret = REFERENCE.fullmatch(inner)
        if secret is not None and secrets is None:
            problems.append(
                f"{where}: {inner}: secret values may stand only in an HTTP action's URL path, query, headers or body"
            )
        elif secret is not None and secret.group(1) not in secrets:
            problems.append(
                f"{where}: {inner} names no secret value of this organization; add it under Secret values first"
            )
        elif secret is not None:
            continue
        elif found is None:
            problems.append(f"{where}: {inner} is not a valid placeholder (use {{{{name}}}})")
        elif found.group(1) not in declared:
            problems.append(f"{where}: placeholder {inner} names no declared parameter")
    return problems


def validate_url(url: Any, *, allow_http: bool, declared: set[str], secrets: set[str] | None = None) -> list[str]:
    if not isinstance(url, str) or not url.strip():
        return ["an absolute URL is required"]
    problems = placeholder_problems(url, declared, "url", secrets)
    # Placeholders may only stand in the path: fill them to check the rest.
    probe = PLACEHOLDER.sub("x", REFERENCE.sub("x", url))
    try:
        parts = urlsplit(probe)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        return [*problems, f"not a valid URL ({exc})"]
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        if parts.scheme == "http":
            problems.append("must use https:// (plain http:// is not allowed for this organization)")
        else:
            problems.append("must be an absolute https:// URL")
    if not parts.hostname:
        problems.append("must name a host")
    if parts.username is not None or parts.password is not None:
        problems.append("must not hold credentials; use the auth settings instead")
    if parts.fragment:
        problems.append("must not have a #fragment")
    if PLACEHOLDER.search(urlsplit(url).netloc or "") or REFERENCE.search(urlsplit(url).netloc or ""):
        problems.append("placeholders may stand only in the path, not in the host")
    return problems


def validate_pairs(pairs: Any, *, kind: str, declared: set[str], secrets: set[str] | None = None) -> list[str]:
    """Query parameters or headers: a list of {name, value}."""
    if pairs in (None, ""):
        return []
    if not isinstance(pairs, list):
        return ["must be a list of {name, value}"]
    problems = []
    for index, pair in enumerate(pairs):
        where = f"{kind} {index + 1}"
        if not isinstance(pair, dict) or set(pair) != {"name", "value"}:
            problems.append(f"{where}: must be an object with exactly name and value")
            continue
        name, value = pair["name"], pair["value"]
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: name must be non-empty text")
            continue
        if not isinstance(value, str):
            problems.append(f"{where} ({name}): value must be text")
            continue
        if kind == "header":
            if not HEADER_NAME.match(name):
                problems.append(f"header {name!r}: not a valid header name (no spaces or separators)")
            elif name.lower() in RESERVED_HEADERS:
                problems.append(f"header {name}: set by Conduit itself, it cannot be templated")
            if "\r" in value or "\n" in value:
                problems.append(f"header {name}: value must be on one line")
        problems += placeholder_problems(value, declared, f"{kind} {name}", secrets)
    return problems


def _is_form_value(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def validate_body(
    body: Any, *, declared: set[str], body_type: str = "json", secrets: set[str] | None = None
) -> list[str]:
    if body is None:
        return []
    if body_type not in BODY_TYPES:
        return []  # body_type names its own problem
    if body_type == "form":
        if not isinstance(body, dict):
            return ['a form body must be a JSON object of field names to values, e.g. {"To": "{{phone}}"}']
        bad = [
            key for key, value in body.items()
            if not (_is_form_value(value) or (isinstance(value, list) and all(map(_is_form_value, value))))
        ]  # fmt: skip
        if bad:
            return [f"body.{bad[0]}: a form field holds text, a number, true/false or a list of them"]
    if not isinstance(body, dict | list):
        return ["must be a JSON object or array"]
    problems = []
    for path, text in walk_strings(body, "body"):
        problems += placeholder_problems(text, declared, path, secrets)
    return problems


def used_placeholders(*, url: str, query: list, headers: list, body: Any) -> set[str]:
    texts = [url, *(p["value"] for p in query or []), *(h["value"] for h in headers or [])]
    texts += [text for _, text in walk_strings(body, "body")]
    return {name for text in texts for name in PLACEHOLDER.findall(text)}


# --- rendering ----------------------------------------------------------------------


@dataclass
class RenderedRequest:
    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    # Where the action's own {{secrets.NAME}} stand: the values go there, and only there, at send time.
    secrets: list[dict] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def resolve_values(parameters: list[dict], values: dict[str, Any]) -> dict[str, Any]:
    """Coerce given values, apply defaults, refuse missing required and undeclared ones."""
    if not isinstance(values, dict):
        raise RenderError({"parameters": "parameter values must be an object"})
    declared = {p["name"]: p for p in parameters}
    errors = {name: f"parameter {name}: not declared by this action" for name in values if name not in declared}
    resolved: dict[str, Any] = {}
    for name, parameter in declared.items():
        value = values.get(name)
        if value is None:
            value = parameter.get("default")
        if value is None:
            if parameter.get("required", True):
                errors[name] = f"parameter {name}: required, but no value was given"
            resolved[name] = None
            continue
        try:
            resolved[name] = coerce(parameter, value)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise RenderError(errors)
    return resolved


def _interpolate(text: str, values: dict[str, Any], encode=lambda s: s) -> str:
    return PLACEHOLDER.sub(lambda m: encode(to_text(values[m.group(1)])), text)


def _render_body(value: Any, values: dict[str, Any]) -> Any:
    def render_text(text: str) -> Any:
        whole = PLACEHOLDER.fullmatch(text.strip())
        if whole:  # exactly one placeholder: the value keeps its JSON type
            return to_json_value(values[whole.group(1)])
        return _interpolate(text, values)

    return map_strings(value, render_text)


def encode_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def encode_form(value: dict) -> bytes:
    """A rendered form body: lists repeat their field, null leaves it out, true/false as words."""
    pairs = []
    for key, item in value.items():
        for one in item if isinstance(item, list) else [item]:
            if one is not None:
                pairs.append((key, to_text(one)))
    return urlencode(pairs).encode()


def render_request(
    *, method: str, url: str, query: list, headers: list, body: Any,
    parameters: list[dict], values: dict[str, Any], body_type: str = "json", organization_id: int | None = None,
) -> RenderedRequest:  # fmt: skip
    """The concrete request for these parameter values. Raises RenderError.

    With `organization_id`, each {{secrets.NAME}} of the templates is placed (RenderedRequest.secrets),
    to be filled in at send time.
    """
    resolved = resolve_values(parameters, values)
    placing = Placing() if organization_id is not None else None
    if placing is not None:
        url, query, headers, body = map_strings([url, query or [], headers or [], body], placing.mark)
    rendered_url = _interpolate(url, resolved, encode=lambda s: quote(s, safe=""))
    pairs = [(p["name"], _interpolate(p["value"], resolved)) for p in query or []]
    if pairs:
        rendered_url += ("&" if urlsplit(rendered_url).query else "?") + urlencode(pairs)
    rendered_headers = []
    for header in headers or []:
        value = _interpolate(header["value"], resolved)
        if "\r" in value or "\n" in value:
            raise RenderError({header["name"]: f"header {header['name']}: a value put a line break in it"})
        rendered_headers.append((header["name"], value))
    payload = None
    if body is not None and method != "GET":
        rendered_body = _render_body(body, resolved)
        form = body_type == "form" and isinstance(rendered_body, dict)
        payload = encode_form(rendered_body) if form else encode_json(rendered_body)
        if not any(name.lower() == "content-type" for name, _ in rendered_headers):
            rendered_headers.append(("Content-Type", FORM if form else "application/json"))
    rendered = RenderedRequest(method=method, url=rendered_url, headers=rendered_headers, body=payload)
    return _placed(rendered, placing, form=body_type == "form") if placing is not None else rendered


def _placed(rendered: RenderedRequest, placing: Placing, *, form: bool) -> RenderedRequest:
    """The request with its secret markers shown as {{secrets.NAME}} and their places recorded."""
    query_at = rendered.url.find("?")
    url, places = placing.place(rendered.url, "url", lambda at: "path" if query_at < 0 or at < query_at else "query")
    headers = []
    for index, (name, value) in enumerate(rendered.headers):
        value, found = placing.place(value, "header", "header", index=index)
        headers.append((name, value))
        places += found
    body = rendered.body
    if body is not None:
        text, found = placing.place(body.decode(), "body", "form" if form else "json")
        body, places = text.encode(), places + found
    return RenderedRequest(rendered.method, url, headers, body, places)
