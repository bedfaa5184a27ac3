"""What the invocation log tells: per-action metrics, replays of failed calls, host limits (SPEC 2, 3).

Services and selectors only; the API (`api_runtime`) and the admin (`admin_runtime`) call these.
"""

import ipaddress
import math
import re
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from actions.models import Action, EndpointLimit, Invocation
from actions.runtime.invocations import invocation_replay
from config.common.exceptions import Conflict
from tenants.models import Organization

Status = Invocation.Status
FINISHED = [Status.SUCCEEDED, Status.FAILED, Status.RATE_LIMITED]

# --- windows ------------------------------------------------------------------------

MAX_WINDOW = timedelta(days=30)
WINDOW_PATTERN = re.compile(r"^\s*(\d{1,6})\s*([mhd])\s*$")
WINDOW_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
WINDOW_HELP = "A window such as 15m, 1h, 24h or 7d (minutes, hours or days; at most 30d)."
# Chart buckets: the smallest of these that keeps a window within 60 buckets.
BUCKET_SIZES_S = [5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
MAX_BUCKETS = 60


def parse_window(value: str | None) -> timedelta:
    """`<n>m`, `<n>h` or `<n>d`, from one minute to 30 days."""
    match = WINDOW_PATTERN.match(value or "")
    if not match:
        raise ValidationError({"window": [f"{value!r} is not a window. {WINDOW_HELP}"]})
    amount, unit = int(match.group(1)), match.group(2)
    window = timedelta(**{WINDOW_UNITS[unit]: amount})
    if amount < 1 or window > MAX_WINDOW:
        raise ValidationError({"window": [f"The window must be between 1m and 30d. {WINDOW_HELP}"]})
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
    return {
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


# --- replay -------------------------------------------------------------------------


@transaction.atomic
def failed_invocation_replay(*, invocation: Invocation) -> Invocation:
    """Replay one invocation, which must have failed (else Conflict: a 409 in the API)."""
    current = Invocation.objects.select_for_update().get(pk=invocation.pk)
    if current.status != Status.FAILED:
        raise Conflict(
            f"Only a failed invocation can be replayed; this one is {current.status}.",
            {"invocation": [f"The invocation is {current.status}, not failed."]},
        )
    if not current.request:
        raise Conflict(
            "This invocation was never sent (its parameters did not fit the action): there is nothing to replay.",
            {"invocation": ["The invocation has no rendered request."]},
        )
    return invocation_replay(invocation=current)


@transaction.atomic
def invocations_replay_failed(*, action: Action, since: datetime, until: datetime) -> list[Invocation]:
    """Replay every failed invocation of `action` created in [since, until) not replayed yet.

    Running it twice replays nothing the second time: the originals are locked, then checked again.
    """
    candidates = list(
        Invocation.objects.filter(
            organization_id=action.organization_id,
            action=action,
            status=Status.FAILED,
            created_at__gte=since,
            created_at__lt=until,
            replays__isnull=True,
        )
        .exclude(request={})
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
    if not candidates:
        return []
    originals = list(Invocation.objects.select_for_update().filter(pk__in=candidates).order_by("created_at", "pk"))
    # Read after the locks are held: a concurrent replay of the same range has committed by now.
    already = set(Invocation.objects.filter(replay_of_id__in=candidates).values_list("replay_of_id", flat=True))
    return [invocation_replay(invocation=original) for original in originals if original.pk not in already]


# --- endpoint limits ----------------------------------------------------------------

HOST_LABEL = re.compile(r"^(?!-)[a-z0-9\u00a1-\uffff-]{1,63}(?<!-)$")
BARE_HOST = "Give the bare host name, as in the action's URL (e.g. api.example.com): no scheme, path or port."
MAX_PERIOD_S = 86_400


def endpoint_host_clean(value: str) -> str:
    """The host lowercased, as the runtime keys host limits; ValidationError on `host` otherwise."""
    host = (value or "").strip().lower()
    if not host:
        raise ValidationError({"host": ["This field is required."]})
    try:
        return str(ipaddress.ip_address(host.strip("[]")))  # an IP literal, v4 or v6
    except ValueError:
        pass
    labels = host.split(".")
    if len(host) > 253 or any(c in host for c in ":/?#@ ") or not all(HOST_LABEL.match(lb) for lb in labels):
        raise ValidationError({"host": [BARE_HOST]})
    return host


def endpoint_limit_validate(
    *, organization: Organization, data: dict[str, Any], instance: EndpointLimit | None = None
) -> dict[str, Any]:
    """The one check of a host limit, for the API and the admin: the cleaned fields, or ValidationError."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    host = data.get("host", instance.host if instance else "")
    try:
        cleaned["host"] = endpoint_host_clean(host)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    for name, low, high in (("calls", 1, None), ("period_s", 1, MAX_PERIOD_S)):
        value = data.get(name, getattr(instance, name, None))
        if value is None or isinstance(value, bool) or not isinstance(value, int):
            errors[name] = ["A whole number is required."]
        elif value < low:
            errors[name] = [f"Ensure this value is greater than or equal to {low}."]
        elif high is not None and value > high:
            errors[name] = [f"Ensure this value is less than or equal to {high} (one day)."]
        else:
            cleaned[name] = value
    if "host" in cleaned:
        taken = EndpointLimit.objects.filter(organization=organization, host=cleaned["host"])
        if instance is not None:
            taken = taken.exclude(pk=instance.pk)
        if taken.exists():
            errors["host"] = [f"{cleaned['host']} already has a limit; change that one instead."]
    if errors:
        raise ValidationError(errors)
    return cleaned


def _save_limit(limit: EndpointLimit) -> EndpointLimit:
    try:
        with transaction.atomic():
            limit.save()
    except IntegrityError:  # the same host saved concurrently
        raise ValidationError({"host": [f"{limit.host} already has a limit; change that one instead."]}) from None
    return limit


def endpoint_limit_create(*, organization: Organization, data: dict[str, Any]) -> EndpointLimit:
    cleaned = endpoint_limit_validate(organization=organization, data=data)
    return _save_limit(EndpointLimit(organization=organization, **cleaned))


def endpoint_limit_update(*, endpoint_limit: EndpointLimit, data: dict[str, Any]) -> EndpointLimit:
    cleaned = endpoint_limit_validate(organization=endpoint_limit.organization, data=data, instance=endpoint_limit)
    for name, value in cleaned.items():
        setattr(endpoint_limit, name, value)
    return _save_limit(endpoint_limit)


def endpoint_limit_delete(*, endpoint_limit: EndpointLimit) -> None:
    endpoint_limit.delete()
