"""Bounds on the size of an action's templates, checked at save before anything walks them."""

import json
from typing import Any

from django.utils.translation import gettext as _

from config.common.json_values import first_unstorable
from config.common.numbers import grouped

# Bounds on what an action's templates may hold: far beyond any provider's payload, and small
# enough that rendering one call never costs more than a few milliseconds or runs out of stack.
TEMPLATE_BOUNDS = {  # field: (most levels of nesting, most bytes as JSON)
    "url": (1, 8 * 1024),
    "query": (3, 32 * 1024),
    "headers": (3, 32 * 1024),
    "body": (32, 64 * 1024),
    "parameters": (8, 64 * 1024),
    "email": (3, 512 * 1024),
    "response_schema": (32, 64 * 1024),
    "auth_config": (4, 16 * 1024),
}


def template_bounds(field_name: str, value: Any) -> list[str]:
    """Problems with the size of one template field, checked before anything walks it."""
    depth, size = TEMPLATE_BOUNDS[field_name]
    if value is None:
        return []
    if isinstance(value, dict | list):
        why = first_unstorable(value, max_depth=depth)
        if why is not None:
            return [why.split(": ", 1)[1].replace("JSON may", "may")]
    try:
        length = len(json.dumps(value, ensure_ascii=False).encode())
    except (TypeError, ValueError):
        return [_("must be JSON")]
    if length > size:
        return [_("is %(length)s bytes; at most %(size)s bytes") % {"length": grouped(length), "size": grouped(size)}]
    return []
