"""Template filters of the journey builder's pages: a step's type in the reader's language."""

from django import template

from journeys.admin.diagram import type_name

register = template.Library()


@register.filter
def step_type(kind: str) -> str:
    """`action`, `condition`, `wait`, `end` as the page's language names them; anything else as it is."""
    return type_name(kind)
