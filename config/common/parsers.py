import io
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from config.common.json_values import has_nul


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
