"""An action's categories: the slugs frequency caps count its calls under (journeys.frequency_caps)."""

from typing import Any

from django.utils.translation import gettext as _

from config.common.identifiers import CATEGORY, CATEGORY_HELP, CATEGORY_MAX_LENGTH

__all__ = ["MAX_CATEGORIES", "categories_problems"]

MAX_CATEGORIES = 20


def categories_problems(value: Any) -> list[str]:
    """What is wrong with a list of categories (empty: nothing)."""
    if not isinstance(value, list) or len(value) > MAX_CATEGORIES:
        return [_("give a list of at most %(count)s categories") % {"count": MAX_CATEGORIES}]
    problems = []
    for item in value:
        if not isinstance(item, str) or len(item) > CATEGORY_MAX_LENGTH or not CATEGORY.match(item):
            problems.append(
                _("%(value)s is not a category: %(help)s") % {"value": repr(item)[:80], "help": CATEGORY_HELP}
            )
    if not problems and len(set(value)) != len(value):
        problems.append(_("give each category once"))
    return problems
