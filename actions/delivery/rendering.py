"""Templates to a concrete request: parameters, placeholders and their types (SPEC section 2).

Save-time validation and call-time rendering share this module, so what is
accepted when saved is exactly what can be rendered later.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from django.utils.translation import gettext as _

from actions.delivery.parameter_types import ValueMismatch, coerce, shown_value, to_json_value, to_text
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


# --- validation at save time --------------------------------------------------------


def validate_parameters(parameters: Any) -> list[str]:
    """Problems with the parameter declarations, each naming the parameter."""
    if not isinstance(parameters, list):
        return [_("must be a list of {name, type, required, default, description}")]
    problems, seen = [], set()
    for index, parameter in enumerate(parameters):
        where = _("parameter %(name)s") % {"name": index + 1}
        if not isinstance(parameter, dict):
            problems.append(_("%(where)s: must be an object with name and type") % {"where": where})
            continue
        name = parameter.get("name")
        if isinstance(name, str) and NAME.match(name):
            where = _("parameter %(name)s") % {"name": name}
            if name in seen:
                problems.append(_("%(where)s: declared twice") % {"where": where})
            seen.add(name)
        else:
            problems.append(
                _("%(where)s: name %(name)s must be letters, digits and _")
                % {"where": where, "name": shown_value(name)}
            )
        unknown = sorted(set(parameter) - PARAMETER_KEYS)
        if unknown:
            problems.append(_("%(where)s: unknown key %(key)s") % {"where": where, "key": repr(unknown[0])})
        if parameter.get("type") not in PARAMETER_TYPES:
            shown = {"where": where, "type": shown_value(parameter.get("type")), "kinds": ", ".join(PARAMETER_TYPES)}
            problems.append(_("%(where)s: unknown type %(type)s; choose one of %(kinds)s") % shown)
            continue
        if not isinstance(parameter.get("required", True), bool):
            problems.append(_("%(where)s: required must be true or false") % {"where": where})
        if not isinstance(parameter.get("description", ""), str):
            problems.append(_("%(where)s: description must be text") % {"where": where})
        if parameter.get("default") is not None and isinstance(name, str):
            try:
                coerce(parameter, parameter["default"])
            except ValueMismatch as exc:  # said here in the reader's language; calls store coerce's English
                shown = {"name": exc.name, "type": exc.kind, "value": exc.shown}
                problems.append(_("parameter %(name)s: expected %(type)s, got %(value)s (the default)") % shown)
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
        shown = {"where": where, "inner": inner}
        if secret is not None and secrets is None:
            problems.append(
                _(
                    "%(where)s: %(inner)s: secret values may stand only in an HTTP action's URL path, query, "
                    "headers or body"
                )
                % shown
            )
        elif secret is not None and secret.group(1) not in secrets:
            problems.append(
                _("%(where)s: %(inner)s names no secret value of this organization; add it under Secret values first")
                % shown
            )
        elif secret is not None:
            continue
        elif found is None:
            problems.append(_("%(where)s: %(inner)s is not a valid placeholder (use {{name}})") % shown)
        elif found.group(1) not in declared:
            problems.append(_("%(where)s: placeholder %(inner)s names no declared parameter") % shown)
    return problems


def validate_url(url: Any, *, allow_http: bool, declared: set[str], secrets: set[str] | None = None) -> list[str]:
    if not isinstance(url, str) or not url.strip():
        return [_("an absolute URL is required")]
    problems = placeholder_problems(url, declared, "url", secrets)
    # Placeholders may only stand in the path: fill them to check the rest.
    probe = PLACEHOLDER.sub("x", REFERENCE.sub("x", url))
    try:
        parts = urlsplit(probe)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        return [*problems, _("not a valid URL (%(error)s)") % {"error": exc}]
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        if parts.scheme == "http":
            problems.append(_("must use https:// (plain http:// is not allowed for this organization)"))
        else:
            problems.append(_("must be an absolute https:// URL"))
    if not parts.hostname:
        problems.append(_("must name a host"))
    if parts.username is not None or parts.password is not None:
        problems.append(_("must not hold credentials; use the auth settings instead"))
    if parts.fragment:
        problems.append(_("must not have a #fragment"))
    if PLACEHOLDER.search(urlsplit(url).netloc or "") or REFERENCE.search(urlsplit(url).netloc or ""):
        problems.append(_("placeholders may stand only in the path, not in the host"))
    return problems


def validate_pairs(pairs: Any, *, kind: str, declared: set[str], secrets: set[str] | None = None) -> list[str]:
    """Query parameters or headers: a list of {name, value}."""
    if pairs in (None, ""):
        return []
    if not isinstance(pairs, list):
        return [_("must be a list of {name, value}")]
    problems = []
    for index, pair in enumerate(pairs):
        where = _pair_label(kind, index + 1)
        if not isinstance(pair, dict) or set(pair) != {"name", "value"}:
            problems.append(_("%(where)s: must be an object with exactly name and value") % {"where": where})
            continue
        name, value = pair["name"], pair["value"]
        if not isinstance(name, str) or not name:
            problems.append(_("%(where)s: name must be non-empty text") % {"where": where})
            continue
        if not isinstance(value, str):
            problems.append(_("%(where)s (%(name)s): value must be text") % {"where": where, "name": name})
            continue
        if kind == "header":
            if not HEADER_NAME.match(name):
                problems.append(
                    _("header %(name)s: not a valid header name (no spaces or separators)") % {"name": repr(name)}
                )
            elif name.lower() in RESERVED_HEADERS:
                problems.append(_("header %(name)s: set by Conduit itself, it cannot be templated") % {"name": name})
            if "\r" in value or "\n" in value:
                problems.append(_("header %(name)s: value must be on one line") % {"name": name})
        problems += placeholder_problems(value, declared, _pair_label(kind, name), secrets)
    return problems


def _pair_label(kind: str, which: Any) -> str:
    """`query 2`, `header Authorization`: where a problem of a query parameter or a header stands."""
    if kind == "header":
        return _("header %(name)s") % {"name": which}
    return _("query %(name)s") % {"name": which}


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
            return [_('a form body must be a JSON object of field names to values, e.g. {"To": "{{phone}}"}')]
        bad = [
            key for key, value in body.items()
            if not (_is_form_value(value) or (isinstance(value, list) and all(map(_is_form_value, value))))
        ]  # fmt: skip
        if bad:
            return [
                _("%(field)s: a form field holds text, a number, true/false or a list of them")
                % {"field": f"body.{bad[0]}"}
            ]
    if not isinstance(body, dict | list):
        return [_("must be a JSON object or array")]
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


def _refuse_dot_segments(template: str, rendered: str) -> None:
    """A parameter may not make a path segment `.` or `..`: clients and servers resolve those, and
    the call would go to another path of the host with the action's credentials.

    Placeholders hold no `/` once encoded, so the template's segments and the rendered ones match
    one to one.
    """
    template_path, rendered_path = (urlsplit(text.partition("?")[0]).path for text in (template, rendered))
    for written, segment in zip(template_path.split("/"), rendered_path.split("/"), strict=False):
        if segment.lower().replace("%2e", ".") in (".", "..") and PLACEHOLDER.search(written):
            names = ", ".join(PLACEHOLDER.findall(written))
            raise RenderError(
                {name: f"parameter {name}: a path segment cannot be . or .." for name in names.split(", ")}
            )


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
    _refuse_dot_segments(url, rendered_url)
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
