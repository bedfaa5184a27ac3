"""What the invocation log tells: per-action metrics, replays of failed calls, host limits (SPEC 2, 3), and
the calls open now per host and worker (SPEC 10).

Services and selectors only; the API (`api_runtime`) and the admin (`admin_runtime`) call these.
"""

import math
import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from actions.models import Action, Invocation
from actions.runtime.signals import metrics_requested
from actions.selectors import calls_in_flight
from tenants.models import Organization

__all__ = ["WINDOW_HELP", "action_metrics", "in_flight_metrics", "parse_window"]

Status = Invocation.Status
FINISHED = [Status.SUCCEEDED, Status.FAILED, Status.RATE_LIMITED]

# --- windows ------------------------------------------------------------------------

MAX_WINDOW = timedelta(days=30)
WINDOW_PATTERN = re.compile(r"^\s*(\d{1,6})\s*([mhd])\s*$")
WINDOW_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
WINDOW_HELP = gettext_lazy("A window such as 15m, 1h, 24h or 7d (minutes, hours or days; at most 30d).")
# Chart buckets: the smallest of these that keeps a window within 60 buckets.
BUCKET_SIZES_S = [5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
MAX_BUCKETS = 60


def parse_window(value: str | None) -> timedelta:
    """`<n>m`, `<n>h` or `<n>d`, from one minute to 30 days."""
    match = WINDOW_PATTERN.match(value or "")
    if not match:
        problem = _("%(value)s is not a window. %(help)s") % {"value": repr(value), "help": WINDOW_HELP}
        raise ValidationError({"window": [problem]})
    amount, unit = int(match.group(1)), match.group(2)
    window = timedelta(**{WINDOW_UNITS[unit]: amount})
    if amount < 1 or window > MAX_WINDOW:
        problem = _("The window must be between 1m and 30d. %(help)s") % {"help": WINDOW_HELP}
        raise ValidationError({"window": [problem]})
    return window


def _bucket_size(window: timedelta) -> timedelta:
    seconds = window.total_seconds()
    for size in BUCKET_SIZES_S:
        if seconds / size <= MAX_BUCKETS:
            return timedelta(seconds=size)
    return timedelta(seconds=BUCKET_SIZES_S[-1])


# --- metrics ------------------------------------------------------------------------


def _nearest_rank(finished: QuerySet, count: int, percent: int) -> int | None:
    """The nearest-rank percentile of the latencies, read by offset so no row leaves the database."""
    if not count:
        return None
    rank = max(math.ceil(percent / 100 * count), 1)
    return (
        finished.filter(latency_ms__isnull=False).order_by("latency_ms").values_list("latency_ms", flat=True)[rank - 1]
    )


def action_metrics(*, action: Action, window: timedelta, now: datetime | None = None) -> dict[str, Any]:
    """Calls, outcomes, success rate, p50/p95 latency, throughput and a series for the chart.

    Over the invocations of `action` created in the window that ends `now`. Three queries: the
    counts (totals and every bucket) in one aggregate, then one each for p50 and p95.
    """
    until = now or timezone.now()
    since = until - window
    invocations = Invocation.objects.filter(
        organization_id=action.organization_id, action=action, created_at__gte=since, created_at__lte=until
    )
    finished = Q(status__in=FINISHED)
    failed = Q(status=Status.FAILED)
    http_4xx = failed & Q(outcome__startswith="http_4")
    http_5xx = failed & Q(outcome__startswith="http_5")
    timeouts = failed & Q(outcome="timedout")
    aggregates = {
        "calls": Count("pk", filter=finished),
        "succeeded": Count("pk", filter=Q(status=Status.SUCCEEDED)),
        "failed": Count("pk", filter=failed),
        "http_4xx": Count("pk", filter=http_4xx),
        "http_5xx": Count("pk", filter=http_5xx),
        "timeouts": Count("pk", filter=timeouts),
        "rate_limited": Count("pk", filter=Q(status=Status.RATE_LIMITED)),
        "pending": Count("pk", filter=Q(status=Status.PENDING)),
        "running": Count("pk", filter=Q(status=Status.RUNNING)),
        "with_latency": Count("latency_ms", filter=finished),
    }
    size = _bucket_size(window)
    buckets = math.ceil(window / size)
    starts = [since + i * size for i in range(buckets)]
    for i, start in enumerate(starts):
        in_bucket = Q(created_at__gte=start)
        if i < buckets - 1:  # the last bucket ends with the window
            in_bucket &= Q(created_at__lt=starts[i + 1])
        aggregates[f"bucket_{i}_calls"] = Count("pk", filter=finished & in_bucket)
        aggregates[f"bucket_{i}_succeeded"] = Count("pk", filter=Q(status=Status.SUCCEEDED) & in_bucket)
    counts = invocations.aggregate(**aggregates)

    calls, succeeded = counts["calls"], counts["succeeded"]
    latencies = invocations.filter(finished)
    series = []
    for i, start in enumerate(starts):
        bucket_calls = counts[f"bucket_{i}_calls"]
        series.append(
            {
                "start": start,
                "end": min(start + size, until),
                "calls": bucket_calls,
                "failures": bucket_calls - counts[f"bucket_{i}_succeeded"],
            }
        )
    more = {"capped": 0}
    for _receiver, counted in metrics_requested.send(sender=Action, action=action, since=since, until=until):
        more.update(counted)
    return {
        **more,
        "since": since,
        "until": until,
        "window_s": int(window.total_seconds()),
        "calls": calls,
        "succeeded": succeeded,
        "http_4xx": counts["http_4xx"],
        "http_5xx": counts["http_5xx"],
        "timeouts": counts["timeouts"],
        "rate_limited": counts["rate_limited"],
        # Every other failure: error, refused, circuit_open (and a 3xx, never followed).
        "errors": counts["failed"] - counts["http_4xx"] - counts["http_5xx"] - counts["timeouts"],
        "success_rate": succeeded / calls if calls else None,
        "latency_p50_ms": _nearest_rank(latencies, counts["with_latency"], 50),
        "latency_p95_ms": _nearest_rank(latencies, counts["with_latency"], 95),
        "calls_per_second": calls / window.total_seconds(),
        "pending": counts["pending"],
        "running": counts["running"],
        "bucket_s": int(size.total_seconds()),
        "series": series,
    }


# --- calls in flight ----------------------------------------------------------------


def in_flight_metrics(*, organization: Organization) -> dict[str, Any]:
    """The organization's calls open now: per host (with its cap and each worker's share) and per worker
    process, with how many calls one worker keeps open at most (for every organization together)."""
    hosts: dict[str, dict[str, Any]] = {}
    workers: dict[str, int] = {}
    for row in calls_in_flight(organization=organization):
        host = hosts.setdefault(
            row["host"], {"host": row["host"], "calls": 0, "max_concurrent": row["max_concurrent"], "workers": []}
        )
        host["calls"] += row["calls"]
        host["workers"].append({"worker": row["worker"], "calls": row["calls"]})
        workers[row["worker"]] = workers.get(row["worker"], 0) + row["calls"]
    return {
        "calls": sum(workers.values()),
        "hosts": list(hosts.values()),
        "workers": [{"worker": name, "calls": calls} for name, calls in sorted(workers.items())],
        "max_in_flight": settings.CONDUIT_MAX_IN_FLIGHT,
    }
