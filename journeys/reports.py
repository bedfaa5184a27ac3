"""A journey's report: per step entered, succeeded, failed, waiting, exited and capped (with percentages),
runs by status, runs whose step failed although the run went on, and runs started per hour."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from journeys.audience.rounds import audience_progress
from journeys.models import Journey, JourneyRun, StepRun

CHART_HOURS = 48  # the chart without a range: the last two days
MAX_CHART_HOURS = 31 * 24


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def journey_report(*, journey: Journey, since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    """The report of the runs started in [since, until) (every run without a range)."""
    runs_in_range = Q(journey=journey)
    if since:
        runs_in_range &= Q(started_at__gte=since)
    if until:
        runs_in_range &= Q(started_at__lt=until)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    step_runs = StepRun.objects.filter(journey=journey, run__in=JourneyRun.objects.filter(runs_in_range))
    for key, status, n in step_runs.values_list("step_key", "status").annotate(n=Count("pk")).order_by():
        counts[key]["entered"] += n
        counts[key][status] += n
    # Which way each condition and split sent its runs: "branches[0]", "else".
    taken: dict[str, dict[str, int]] = defaultdict(dict)
    branching = [s.get("key") for s in journey.steps if isinstance(s, dict) and s.get("type") in ("condition", "split")]
    outcomes = step_runs.filter(step_key__in=branching).exclude(outcome="").values_list("step_key", "outcome")
    for key, outcome, n in outcomes.annotate(n=Count("pk")).order_by():
        taken[key][outcome] = n
    exited: dict[str, int] = defaultdict(int)
    runs: dict[str, int] = defaultdict(int)
    ended = JourneyRun.objects.filter(runs_in_range).values_list("status", "current_step").annotate(n=Count("pk"))
    for status, key, n in ended.order_by():
        runs[status] += n
        if status not in JourneyRun.OPEN:
            exited[key] += n
    started = sum(runs.values())
    steps = []
    for step in journey.steps:
        if not isinstance(step, dict):
            continue
        found = counts[step.get("key")]
        entered = found["entered"]
        row = {
            "key": step.get("key"), "type": step.get("type"), "entered": entered,
            "succeeded": found[StepRun.Status.SUCCEEDED], "failed": found[StepRun.Status.FAILED],
            "waiting": found[StepRun.Status.WAITING] + found[StepRun.Status.RUNNING], "exited": exited[step.get("key")],
            "capped": found[StepRun.Status.CAPPED],  # calls a frequency cap held back (action steps)
        }  # fmt: skip
        # `entered` as a part of the runs started; the others as parts of those that entered the step.
        row["percent"] = {"entered": _percent(entered, started)} | {
            name: _percent(row[name], entered) for name in ("succeeded", "failed", "waiting", "exited", "capped")
        }
        if step.get("type") in ("condition", "split"):
            row["branches"] = _branches(step, taken[step.get("key")], entered)
        steps.append(row)
    # A run whose action failed and that went on through on_error ends completed: counted apart.
    failed_step = step_runs.filter(status=StepRun.Status.FAILED).exclude(run__status=JourneyRun.Status.FAILED)
    return {
        "journey": journey.pk,
        "since": since, "until": until,
        "runs": {s: runs[s] for s in JourneyRun.Status.values},
        "runs_with_a_failed_step": failed_step.values("run").distinct().count(),
        "steps": steps,
        "runs_per_hour": runs_per_hour(journey, since, until),
        "audience": audience_progress(journey),
    }  # fmt: skip


def _branches(step: dict, taken: dict[str, int], entered: int) -> list[dict[str, Any]]:
    """Each way out of a condition or a split: how many runs took it, as a part of those that entered."""
    ways = [f"branches[{n}]" for n in range(len(step.get("branches") or []))]
    ways += ["else"] if step.get("type") == "condition" else []
    ways += [outcome for outcome in taken if outcome not in ways]  # "error", or a branch since removed
    rows = []
    for outcome in ways:
        row = {"outcome": outcome, "runs": taken.get(outcome, 0), "percent": _percent(taken.get(outcome, 0), entered)}
        if outcome.startswith("branches[") and step.get("type") == "split":
            number = int(outcome[9:-1])
            row["share"] = step["branches"][number].get("percent") if number < len(step["branches"]) else None
        rows.append(row)
    return rows


def runs_per_hour(journey: Journey, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    """Runs started in each hour of the range (the last CHART_HOURS without one), hours without runs included."""
    end = (until or timezone.now()).replace(minute=0, second=0, microsecond=0)
    if until is None or until > end:
        end += timedelta(hours=1)
    start = (since or end - timedelta(hours=CHART_HOURS)).replace(minute=0, second=0, microsecond=0)
    start = max(start, end - timedelta(hours=MAX_CHART_HOURS))
    found = {
        hour: (n, failed)
        for hour, n, failed in JourneyRun.objects.filter(journey=journey, started_at__gte=start, started_at__lt=end)
        .annotate(hour=TruncHour("started_at", tzinfo=UTC))
        .values_list("hour")
        .annotate(n=Count("pk"), failed=Count("pk", filter=Q(status=JourneyRun.Status.FAILED)))
        .order_by()
    }
    hours, at = [], start
    while at < end:
        n, failed = found.get(at, (0, 0))
        hours.append({"hour": at, "started": n, "failed": failed})
        at += timedelta(hours=1)
    return hours
