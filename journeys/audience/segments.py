"""Segments: an audience as a CEL expression over `profile`, checked at save and counted when asked.

Counting reads every profile of the organization: the expression is compiled once and the rows are
streamed (only their attributes) in chunks, so memory stays flat however many profiles there are.
"""

from collections.abc import Iterator
from contextlib import closing
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from config.common.exceptions import Conflict
from journeys.expressions import EvaluationError, Expression, ExpressionError, charged_to, compile_expression
from journeys.models import Journey, Profile, Segment
from tenants.models import Organization

SEGMENT_FIELDS = ("name", "description", "expression")
# A segment is about who a profile is, not what just happened: there is no event and no step to read.
NOT_IN_SCOPE = ("event", "steps")
CHUNK_SIZE = 2000
SAMPLE_SIZE = 20


class SegmentCountError(RuntimeError):
    """The organization's expression budget ran out while counting: the count would be wrong."""


def segment_expression(source: Any) -> Expression:
    """The compiled expression, or a ValidationError on `expression` saying why it cannot select profiles."""
    try:
        expression = compile_expression(source)
    except ExpressionError as exc:
        raise ValidationError({"expression": [str(exc)]}) from None
    read = sorted(set(expression.program.variables()) & set(NOT_IN_SCOPE))
    if read:
        raise ValidationError(
            {"expression": [_("a segment reads only profile (and now), not %(names)s") % {"names": ", ".join(read)}]}
        )
    return expression


def segment_validate(*, organization: Organization, data: dict[str, Any], instance: Segment | None = None) -> dict:
    """Every problem of a segment's fields at once, by field, as the API and the admin show them."""
    values = {name: data[name] for name in SEGMENT_FIELDS if name in data}
    errors: dict[str, list[str]] = {}
    name = values.get("name", instance.name if instance else "")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = [_("a segment needs a name")]
    else:
        taken = Segment.objects.filter(organization=organization, name=name)
        if instance is not None:
            taken = taken.exclude(pk=instance.pk)
        if taken.exists():
            errors["name"] = [_("another segment of this organization has this name")]
    if "expression" in values or instance is None:
        try:
            segment_expression(values.get("expression", ""))
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    return values


def _save(segment: Segment) -> Segment:
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError:  # another request took the name between the check and the save
        raise ValidationError({"name": [_("another segment of this organization has this name")]}) from None
    return segment


def segment_create(*, organization: Organization, data: dict[str, Any]) -> Segment:
    """A new segment of the organization, its expression compiled first."""
    values = segment_validate(organization=organization, data=data)
    return _save(Segment(organization=organization, **values))


def segment_update(*, segment: Segment, data: dict[str, Any]) -> Segment:
    """Change the fields given; the expression is checked again when it changes."""
    values = segment_validate(organization=segment.organization, data=data, instance=segment)
    for name, value in values.items():
        setattr(segment, name, value)
    return _save(segment)


def segment_delete(*, segment: Segment) -> None:
    """Delete the segment; its profiles stay. A segment a journey enters (not archived) is kept: 409."""
    users = Journey.objects.filter(organization_id=segment.organization_id, audience__segment=segment.pk).exclude(
        status=Journey.Status.CLOSED
    )
    names = sorted({str(journey) for journey in users})
    if names:
        raise Conflict(
            _("This segment is the audience of %(journeys)s: archive those journeys first.")
            % {"journeys": ", ".join(names)}
        )
    segment.delete()


def _matches(segment: Segment, fields: tuple[str, ...], *, ordered: bool = False) -> Iterator[tuple]:
    """Each profile row (`fields`, attributes last) the segment's expression is true for.

    A profile the expression fails on (a field it lacks) does not match. Expressions with loops
    spend the organization's budget (expressions.charged_to); running out stops the count.
    """
    expression = segment_expression(segment.expression)
    now = timezone.now()
    rows = (
        Profile.objects.filter(organization_id=segment.organization_id)
        .order_by(*(["external_id"] if ordered else []))
        .values_list(*fields, "attributes")
        .iterator(chunk_size=CHUNK_SIZE)
    )
    with charged_to(segment.organization_id):
        for row in rows:
            attributes = row[-1] if isinstance(row[-1], dict) else {}
            try:
                matched = expression.evaluate(profile=attributes, event={}, steps={}, now=now) is True
            except EvaluationError as exc:
                if str(exc).startswith("over budget"):
                    raise SegmentCountError(str(exc)) from None
                continue
            if matched:
                yield row


def segment_count(*, segment: Segment) -> int:
    """How many profiles of the organization the segment's expression is true for, now."""
    return sum(1 for _row in _matches(segment, ()))


def segment_sample(*, segment: Segment, size: int = SAMPLE_SIZE) -> list[dict[str, Any]]:
    """Up to `size` matching profiles, by external id order, as {"external_id", "attributes"}."""
    sample: list[dict[str, Any]] = []
    with closing(_matches(segment, ("external_id",), ordered=True)) as rows:  # stops reading at `size`
        for external_id, attributes in rows:
            sample.append({"external_id": external_id, "attributes": attributes})
            if len(sample) >= size:
                break
    return sample
