"""Template filters of the journey builder's pages: a step's type in the reader's language."""

from django import template

from journeys.admin.diagram import type_name
from journeys.admin.reports import outcome_label

register = template.Library()


@register.filter
def step_type(kind: str) -> str:
    """`action`, `condition`, `wait`, `end` as the page's language names them; anything else as it is."""
    return type_name(kind)


@register.filter
def outcome_words(outcome: str) -> str:
    """branches[0] as "branch 1", "else" as "otherwise"; other outcomes as they are."""
    return outcome_label(outcome)
