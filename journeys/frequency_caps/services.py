"""Every write to frequency caps, for the API and the admin alike: one check, the same words at both doors."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from config.common.identifiers import CATEGORY, CATEGORY_HELP, CATEGORY_MAX_LENGTH
from config.common.numbers import grouped
from journeys.models import FrequencyCap
from tenants.models import Organization

__all__ = [
    "CAP_FIELDS", "MAX_PERIOD_DAYS", "frequency_cap_create", "frequency_cap_delete", "frequency_cap_update",
    "frequency_cap_validate",
]  # fmt: skip

CAP_FIELDS = ("category", "max_calls", "period_days")
MAX_PERIOD_DAYS = 90  # about a quarter, as a run lives at most 91 days
MAX_CALLS = 1_000_000


def _number(value: Any, low: int, high: int) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        return _("A whole number is required.")
    if not low <= value <= high:
        return _("a whole number from %(low)s to %(high)s") % {"low": low, "high": grouped(high)}
    return ""


def _taken() -> str:
    return _("this category already has a cap over this period; change that one instead")


def frequency_cap_validate(
    *, organization: Organization, data: dict[str, Any], instance: FrequencyCap | None = None
) -> dict[str, Any]:
    """The cleaned fields of a cap (those given, and on create all three), or ValidationError by field."""
    errors: dict[str, list[str]] = {}
    values = {name: data.get(name, getattr(instance, name, None)) for name in CAP_FIELDS}
    category = values["category"]
    if not isinstance(category, str) or len(category) > CATEGORY_MAX_LENGTH or not CATEGORY.match(category):
        errors["category"] = [_("must be a category: %(help)s") % {"help": CATEGORY_HELP}]
    for name, high in (("max_calls", MAX_CALLS), ("period_days", MAX_PERIOD_DAYS)):
        problem = _number(values[name], 1, high)
        if problem:
            errors[name] = [problem]
    if not errors:
        taken = FrequencyCap.objects.filter(
            organization=organization, category=category, period_days=values["period_days"]
        )
        if instance is not None:
            taken = taken.exclude(pk=instance.pk)
        if taken.exists():
            errors["category"] = [_taken()]
    if errors:
        raise ValidationError(errors)
    return values


def _save(cap: FrequencyCap) -> FrequencyCap:
    try:
        with transaction.atomic():
            cap.save()
    except IntegrityError:  # the same cap saved by another request meanwhile
        raise ValidationError({"category": [_taken()]}) from None
    return cap


def frequency_cap_create(*, organization: Organization, data: dict[str, Any]) -> FrequencyCap:
    values = frequency_cap_validate(organization=organization, data=data)
    return _save(FrequencyCap(organization=organization, **values))


def frequency_cap_update(*, frequency_cap: FrequencyCap, data: dict[str, Any]) -> FrequencyCap:
    values = frequency_cap_validate(organization=frequency_cap.organization, data=data, instance=frequency_cap)
    for name, value in values.items():
        setattr(frequency_cap, name, value)
    return _save(frequency_cap)


def frequency_cap_delete(*, frequency_cap: FrequencyCap) -> None:
    """The cap stops holding calls at once; the calls it counted stay counted for the category's other caps."""
    frequency_cap.delete()
