"""Problems by field, the shape every service returns or raises (`{"field": ["message", ...]}`)."""

from typing import Any


def add_problems(errors: dict[str, list[str]], field: str, problems: list[str] | str) -> None:
    """Append one message or several under `field`; nothing when there are none."""
    problems = [problems] if isinstance(problems, str) else problems
    if problems:
        errors.setdefault(field, []).extend(problems)


def merge_problems(errors: dict[str, list[str]], more: dict[str, Any]) -> dict[str, list[str]]:
    """Add every field's messages of `more` to `errors`; returns `errors`."""
    for field, problems in more.items():
        add_problems(errors, field, problems)
    return errors
