"""An action drafted from a sample payload: the sample's fields, which become parameters, and a response schema."""

import copy
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

__all__ = ["body_from_sample", "infer_type", "sample_fields", "sample_from_schema", "schema_from_sample"]


def infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "decimal"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        try:
            if re.match(r"^\d{4}-\d{2}-\d{2}T", value) and parse_datetime(value):
                return "datetime"
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) and parse_date(value):
                return "date"
        except ValueError:
            pass
    return "string"


def sample_fields(sample: Any, prefix: str = "") -> list[dict[str, Any]]:
    """The leaves of a sample payload with inferred types; lists count as one field."""
    fields = []
    if isinstance(sample, dict):
        for key, value in sample.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                fields += [{**f, "keys": [key, *f["keys"]]} for f in sample_fields(value, path)]
            else:
                fields.append({"path": path, "keys": [key], "type": infer_type(value), "example": value})
    return fields


def body_from_sample(sample: Any, chosen: list[str]) -> tuple[Any, list[dict[str, Any]]]:
    """Turn the chosen fields of a sample into placeholders; the rest stay constants."""
    if not isinstance(sample, dict | list):
        raise ValidationError({"sample": [_("paste a JSON object or array")]})
    known = {f["path"]: f for f in sample_fields(sample)}
    unknown = [p for p in chosen if p not in known]
    if unknown:
        raise ValidationError({"parameters": [_("%(path)s: not a field of the sample") % {"path": p} for p in unknown]})
    body, parameters, names = copy.deepcopy(sample), [], set()
    for path in chosen:
        base = re.sub(r"\W", "_", str(known[path]["keys"][-1])) or "value"
        name, n = (base if re.match(r"^[A-Za-z_]", base) else f"p_{base}"), 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.add(name)
        *parents, last = known[path]["keys"]  # keys, not the dotted path: a key may hold a dot
        target = body
        for part in parents:
            target = target[part]
        example = target[last]
        target[last] = "{{" + name + "}}"
        parameters.append(
            {"name": name, "type": known[path]["type"], "required": True, "default": None,
             "description": (_("%(path)s, e.g. %(example)s") % {"path": path, "example": repr(example)})[:200]}
        )  # fmt: skip
    return body, parameters


def schema_from_sample(sample: Any) -> dict[str, Any]:
    """A JSON Schema describing a sample response."""
    kind = infer_type(sample)
    if isinstance(sample, dict):
        return {"type": "object", "properties": {k: schema_from_sample(v) for k, v in sample.items()}}
    if isinstance(sample, list):
        return {"type": "array", "items": schema_from_sample(sample[0])} if sample else {"type": "array"}
    if sample is None:
        return {"type": "null"}
    mapping = {"boolean": "boolean", "integer": "integer", "decimal": "number"}
    if kind in mapping:
        return {"type": mapping[kind]}
    if kind == "datetime":
        return {"type": "string", "format": "date-time"}
    if kind == "date":
        return {"type": "string", "format": "date"}
    return {"type": "string"}


SAMPLE_DEPTH = 32  # as deep as a response schema may nest (template_bounds)
_SAMPLE_STRINGS = {"date-time": "2026-01-01T09:00:00Z", "date": "2026-01-01", "email": "ada@example.com",
                   "uri": "https://example.com/", "uuid": "00000000-0000-4000-8000-000000000000"}  # fmt: skip
_SAMPLE_VALUES = {"string": "text", "integer": 1, "number": 1.0, "boolean": True, "null": None}


def sample_from_schema(schema: Any, depth: int = 0) -> Any:
    """An answer as a response schema describes it, for dry runs: the schema's own const, default,
    example or first enum value where it gives one, else a value of its type."""
    if not isinstance(schema, dict) or depth > SAMPLE_DEPTH:
        return None
    for word in ("const", "default", "example"):
        if word in schema:
            return schema[word]
    for word in ("examples", "enum"):
        if isinstance(schema.get(word), list) and schema[word]:
            return schema[word][0]
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the first that is not null
        kind = next((k for k in kind if k != "null"), "null")
    properties, items = schema.get("properties"), schema.get("items")
    if kind == "object" or (kind is None and isinstance(properties, dict)):
        return (
            {str(k): sample_from_schema(v, depth + 1) for k, v in properties.items()}
            if isinstance(properties, dict)
            else {}
        )
    if kind == "array":
        return [sample_from_schema(items, depth + 1)] if isinstance(items, dict) else []
    if kind == "string":
        return _SAMPLE_STRINGS.get(schema.get("format"), "text")
    return _SAMPLE_VALUES.get(kind)
