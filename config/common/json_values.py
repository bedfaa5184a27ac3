"""The one walker of JSON values (dicts, lists, strings and scalars) that every module uses."""

import math
from collections.abc import Callable, Iterator
from typing import Any

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


def has_nul(value: Any) -> bool:
    """Whether a NUL character is anywhere in `value`, keys included: PostgreSQL stores none."""
    return any("\x00" in text for _, text in walk_strings(value, keys=True))


def without_nul(value: Any) -> Any:
    """The same data with NUL characters replaced, for storage in PostgreSQL."""
    return map_strings(value, lambda text: text.replace("\x00", "\ufffd"), keys=True)


def first_unstorable(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Why `value` cannot be taken (`data.total: ...`), or None: nested past `max_depth`, or a
    number that is not finite (1e400 parses as infinity, which no JSON column can store).

    Iterative: the recursive walkers above rely on this bound having been checked first.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return f"{path or 'the body'}: numbers must be finite (this one is out of range)."
        if isinstance(item, dict | list):
            if depth > max_depth:
                return f"{path or 'the body'}: JSON may be nested at most {max_depth} levels deep."
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                child_path = f"{path}[{key}]" if isinstance(item, list) else (f"{path}.{key}" if path else str(key))
                stack.append((child, child_path, depth + 1))
    return None
