"""Parameter types (SPEC section 2): a value checked against its declared type, and how it is written."""

import json
import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime


def shown_value(value: Any) -> str:
    """A value as an error message quotes it: JSON, at most 80 characters."""
    try:
        return json.dumps(value, default=str)[:80]
    except (TypeError, ValueError):
        return repr(value)[:80]


class ValueMismatch(ValueError):
    """A value that does not fit its parameter's declared type. The message is English: calls store it."""

    def __init__(self, name: str, kind: str, shown: str) -> None:
        super().__init__(f"parameter {name}: expected {kind}, got {shown}")
        self.name, self.kind, self.shown = name, kind, shown


def _finite(value: float | Decimal) -> bool:
    return math.isfinite(value) if isinstance(value, float) else value.is_finite()


def coerce(parameter: dict, value: Any) -> Any:
    """Check `value` against the parameter's declared type; return it in that type."""
    kind, name = parameter["type"], parameter["name"]

    def wrong() -> ValueError:
        return ValueMismatch(name, kind, shown_value(value))

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
