"""Audience journeys: every profile of a segment enters, once or each day or week, at the journey's rate.

A round is a row (AudienceRound). Each second the beat's task starts the rounds that are due and
enters the profiles each open round is due by then: rate_per_s times the seconds since it started.
The round's row is locked while a worker enters its profiles, and its cursor (`scanned_to`, a
profile id) and counts are written in the transaction that creates the runs: two workers never
enter the same profile, and a crash resumes where it was.
"""

import logging
import math
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.dateparse import parse_datetime

from journeys.audience.segments import SegmentCountError, segment_count, segment_expression
from journeys.engine import wake_runs
from journeys.entries import exclusive_key
from journeys.expressions import EvaluationError, charged_to
from journeys.models import AudienceRound, Journey, JourneyRun, Profile, Segment

logger = logging.getLogger(__name__)
SCAN_CHUNK = 2000
# A tick that comes late (a busy machine, or no worker on the `audiences` queue alone) enters what was due
# meanwhile, so the rate holds over a minute; further behind than this, the round goes on at its rate instead.
CATCH_UP_S = 30
PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}


def scheduled_time(journey: Journey, now: datetime) -> datetime | None:
    """The latest time the journey's audience was due to enter by `now` (None: not yet)."""
    audience = journey.audience or {}
    first = parse_datetime(audience["start_at"]) if audience.get("start_at") else journey.published_at
    if first is None or first > now:
        return None
    period = PERIODS.get(audience.get("repeat", "none"))
    return first if period is None else first + period * ((now - first) // period)


def audiences_start(*, now: datetime) -> int:
    """Make the round each live audience journey is due, once per scheduled time; returns how many."""
    made = 0
    for journey in Journey.objects.filter(status=Journey.Status.LIVE, audience__isnull=False):
        due = scheduled_time(journey, now)
        if due is None or AudienceRound.objects.filter(journey=journey, scheduled_for=due).exists():
            continue
        segment = Segment.objects.filter(pk=journey.audience.get("segment"), organization=journey.organization).first()
        if segment is None:
            logger.warning("Journey %s: its segment no longer exists; no round started.", journey.pk)
            continue
        try:
            total = segment_count(segment=segment)
        except (SegmentCountError, ValidationError) as exc:
            logger.warning("Journey %s: its segment could not be counted (%s); no round started.", journey.pk, exc)
            continue
        _round, created = AudienceRound.objects.get_or_create(
            journey=journey, scheduled_for=due,
            defaults={"organization_id": journey.organization_id, "total": total, "started_at": now},
        )  # fmt: skip
        made += created
    return made


def audiences_enter(*, now: datetime) -> int:
    """Enter the profiles each open round is due by `now`; returns how many runs started."""
    started = 0
    open_rounds = AudienceRound.objects.filter(finished_at=None, journey__status=Journey.Status.LIVE)
    for round_id in open_rounds.values_list("pk", flat=True):
        more = True
        while more:  # one second's worth a transaction: a late tick's catch-up is not one long write
            with transaction.atomic():
                found = (
                    AudienceRound.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("journey")
                    .filter(pk=round_id, finished_at=None)
                    .first()
                )
                if found is None:  # another worker holds it (it is entering those profiles now), or it ended
                    break
                entered, more = _enter_due(found, now)
            started += entered
    return started


def _enter_due(round_: AudienceRound, now: datetime) -> tuple[int, bool]:
    """Enter up to one second's worth of what is due by `now`: (runs started, whether more is due)."""
    journey = round_.journey
    rate = journey.audience["rate_per_s"]
    due = math.floor(rate * (now - round_.started_at).total_seconds()) - round_.entered
    if due > CATCH_UP_S * rate:  # workers were down: go on at the rate, no burst of minutes of entries
        due = rate
        round_.started_at = now - timedelta(seconds=(round_.entered + due) / rate)
    more = due > rate
    due = min(due, rate)
    segment = Segment.objects.filter(pk=journey.audience.get("segment"), organization=journey.organization).first()
    if segment is None:
        logger.warning("Journey %s: its segment was deleted; the round ends.", journey.pk)
        round_.finished_at = now
        round_.save()
        return 0, False
    runs = _matching_runs(round_, segment, due, now) if due > 0 else []
    JourneyRun.objects.bulk_create(runs, ignore_conflicts=True)  # one a concurrent event started is skipped
    round_.entered += len(runs)
    round_.save()
    if runs:
        count = len(runs)
        transaction.on_commit(lambda: wake_runs(count))
    return len(runs), more and round_.finished_at is None


def _matching_runs(round_: AudienceRound, segment: Segment, wanted: int, now: datetime) -> list[JourneyRun]:
    """Up to `wanted` new runs, for the next matching profiles after the round's cursor, which moves on."""
    journey = round_.journey
    expression = segment_expression(segment.expression)
    runs: list[JourneyRun] = []
    with charged_to(journey.organization_id):
        while len(runs) < wanted:
            rows = list(
                Profile.objects.filter(organization_id=journey.organization_id, pk__gt=round_.scanned_to)
                .order_by("pk")
                .values_list("pk", "attributes")[:SCAN_CHUNK]
            )
            if not rows:
                round_.finished_at = now
                break
            matched = [(pk, key) for pk, attributes in rows if _matches(expression, attributes, now)
                       for key in [exclusive_key(journey, pk)]]  # fmt: skip
            taken = {k for k in JourneyRun.objects.filter(exclusive_key__in=[k for _, k in matched if k])
                     .values_list("exclusive_key", flat=True)}  # fmt: skip
            for pk, key in matched:
                if len(runs) == wanted:
                    break
                round_.scanned_to = pk
                if key is not None and key in taken:
                    round_.skipped += 1
                    continue
                runs.append(JourneyRun(
                    organization_id=journey.organization_id, journey=journey, profile_id=pk,
                    current_step=journey.start, due_at=now, started_at=now, exclusive_key=key,
                ))  # fmt: skip
            else:
                round_.scanned_to = rows[-1][0]  # every row of the chunk was looked at
    return runs


def _matches(expression: Any, attributes: Any, now: datetime) -> bool:
    try:
        return expression.evaluate(profile=attributes if isinstance(attributes, dict) else {}, event={}, steps={},
                                   now=now) is True  # fmt: skip
    except EvaluationError:
        return False  # a profile the expression cannot read (a field it lacks) is not in the segment


def audience_progress(journey: Journey, now: datetime | None = None) -> dict[str, Any] | None:
    """The latest round: total, entered, skipped, and the seconds left at the journey's rate."""
    round_ = journey.audience_rounds.first()
    if round_ is None or not journey.audience:
        return None
    left = max(round_.total - round_.entered - round_.skipped, 0) if round_.finished_at is None else 0
    return {
        "scheduled_for": round_.scheduled_for, "started_at": round_.started_at, "finished_at": round_.finished_at,
        "total": round_.total, "entered": round_.entered, "skipped": round_.skipped,
        "eta_s": math.ceil(left / journey.audience["rate_per_s"]) if left else 0,
    }  # fmt: skip
