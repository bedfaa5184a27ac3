"""Query filters that refuse what the database cannot take (API fuzzing found each), for every API door."""

from datetime import UTC
from typing import Any

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number the database can hold (fuzzing found 500s for 2**65)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 time compared in UTC: PostgreSQL refuses offsets past 15:59 that Python accepts
    (fuzzing sent +23:35)."""

    def filter(self, qs: Any, value: Any) -> Any:
        return super().filter(qs, value.astimezone(UTC) if value else value)
