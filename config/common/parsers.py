import io
from typing import Any

from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from config.common.json_values import MAX_DEPTH, UNSTORABLE_ESCAPE, first_unstorable, first_unstorable_text


class StrictJSONParser(JSONParser):
    """JSON that can be stored: no NUL characters (PostgreSQL cannot store \\u0000 in text or
    JSON), no lone surrogates (no character: nothing encodes them), numbers that are finite and at
    most MAX_DEPTH levels of nesting. Each gets a 400 naming
    the problem and where it is, rather than a 500 or an event accepted and then lost."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:  # the decoder itself gave up, thousands of levels down
            raise ParseError(_("JSON may be nested at most %(depth)s levels deep.") % {"depth": MAX_DEPTH}) from None
        if problem := first_unstorable(data):
            raise ParseError(problem)
        # JSON can only carry these escaped: look through the data only when an escape is there.
        if UNSTORABLE_ESCAPE.search(raw) and (problem := first_unstorable_text(data)):
            raise ParseError(problem)
        return data
