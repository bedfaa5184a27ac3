import io
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


def without_nul(value: Any) -> Any:
    """The same data with NUL characters replaced, for storage in PostgreSQL."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


class StrictJSONParser(JSONParser):
    """JSON without NUL characters: PostgreSQL cannot store \\u0000 in text or JSON, and a
    request must get a 400 naming the problem rather than a 500 (API fuzzing found it)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        raw = stream.read() if stream is not None else b""
        data = super().parse(io.BytesIO(raw), media_type, parser_context)
        # JSON can only carry NUL escaped: look through the data only when the escape is there.
        if b"\\u0000" in raw and has_nul(data):
            raise ParseError("Text may not contain the NUL character (\\u0000).")
        return data
