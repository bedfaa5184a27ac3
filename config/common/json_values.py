"""The one walker of JSON values (dicts, lists, strings and scalars) that every module uses."""

import math
import re
from collections.abc import Callable, Iterator
from typing import Any

from django.utils.translation import gettext as _

MAX_DEPTH = 64  # arrays and objects inside each other: deeper JSON is refused where it comes in


def walk_strings(value: Any, path: str = "", *, keys: bool = False) -> Iterator[tuple[str, str]]:
    """Every string in `value` with its path (`body.items[0].name`); with `keys`, object keys too."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if keys and isinstance(key, str):
                yield path, key
            yield from walk_strings(item, f"{path}.{key}" if path else str(key), keys=keys)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_strings(item, f"{path}[{index}]", keys=keys)


def map_strings(value: Any, function: Callable[[str], Any], *, keys: bool = False) -> Any:
    """A copy of `value` with `function` applied to each string in it, at any depth (keys too when asked)."""
    if isinstance(value, str):
        return function(value)
    if isinstance(value, dict):
        return {
            (function(key) if keys and isinstance(key, str) else key): map_strings(item, function, keys=keys)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [map_strings(item, function, keys=keys) for item in value]
    return value


# NUL, which PostgreSQL stores in no text or JSON, and lone surrogates (JSON's "\ud800" escape), which
# are no character: UTF-8 cannot encode them, so no database, log or request can carry them.
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")  # how they can appear in JSON's bytes


def has_unstorable_text(value: Any) -> bool:
    """Whether NUL or a lone surrogate is anywhere in `value`, keys included."""
    return first_unstorable_text(value) is not None


def first_unstorable_text(value: Any) -> str | None:
    """Where NUL or a lone surrogate first is in `value` and why it is refused, or None."""
    for path, text in walk_strings(value, keys=True):
        if found := UNSTORABLE_TEXT.search(text):
            if found.group() == "\x00":
                message = _("%(path)s: text may not contain the NUL character (\\u0000).")
            else:
                message = _("%(path)s: text may not contain a lone surrogate (\\ud800 to \\udfff).")
            return message % {"path": path or _("the body")}
    return None


def without_unstorable_text(value: Any) -> Any:
    """The same data with NUL and lone surrogates replaced by U+FFFD, for storage."""
    return map_strings(value, lambda text: UNSTORABLE_TEXT.sub("\ufffd", text), keys=True)


def first_unstorable(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Why `value` cannot be taken (`data.total: ...`), or None: nested past `max_depth`, or a
    number that is not finite (1e400 parses as infinity, which no JSON column can store).

    Iterative: the recursive walkers above rely on this bound having been checked first.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return _("%(path)s: numbers must be finite (this one is out of range).") % {"path": path or _("the body")}
        if isinstance(item, dict | list):
            if depth > max_depth:
                return _("%(path)s: JSON may be nested at most %(depth)s levels deep.") % {
                    "path": path or _("the body"),
                    "depth": max_depth,
                }
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                child_path = f"{path}[{key}]" if isinstance(item, list) else (f"{path}.{key}" if path else str(key))
                stack.append((child, child_path, depth + 1))
    return None


def unstorable(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Why JSON read from a person or a system cannot be taken, or None: every check of the API's
    parser, for the doors that read JSON themselves (the admin's JSON boxes, an uploaded export)."""
    return first_unstorable(value, max_depth) or first_unstorable_text(value)
