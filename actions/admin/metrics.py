"""The metrics page of an action (numbers, an inline SVG chart, replay of a range), reached from the invocation log."""

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import dateformat, timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from actions.admin.invocation_filters import ACTION_PARAMETER, actions_of
from actions.models import Action
from actions.services import replays
from actions.services.metrics import action_metrics, parse_window
from config.common.numbers import decimal

METRICS_WINDOWS = ["1h", "24h", "7d"]
DEFAULT_WINDOW = "1h"
DATETIME_INPUT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends
METRICS_URL_NAME = "actions_invocation_metrics"
REPLAY_RANGE_URL_NAME = "actions_invocation_replay_range"


def metrics_url(action: Action, window: str | None = None) -> str:
    """The admin page of an action's metrics (`admin:actions_invocation_metrics`)."""
    url = reverse(f"admin:{METRICS_URL_NAME}", args=[action.pk])
    return f"{url}?{urlencode({'window': window})}" if window else url


class MetricsPagesMixin:
    """InvocationAdmin's metrics page of one action, and the replay of its failed invocations in a range."""

    # --- the metrics page
    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("metrics/<int:action_id>/", wrap(self.metrics_view), name=METRICS_URL_NAME),
            path("metrics/<int:action_id>/replay/", wrap(self.replay_range_view), name=REPLAY_RANGE_URL_NAME),
            *super().get_urls(),
        ]

    def _metrics_action(self, request: HttpRequest, action_id: int) -> Action:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(actions_of(request), pk=action_id)

    def metrics_view(self, request: HttpRequest, action_id: int) -> HttpResponse:
        action = self._metrics_action(request, action_id)
        window_text = request.GET.get("window", DEFAULT_WINDOW)
        window_error = None
        try:
            window = parse_window(window_text)
        except ValidationError as exc:
            window_error = exc.message_dict["window"][0]
            window_text, window = DEFAULT_WINDOW, parse_window(DEFAULT_WINDOW)
        metrics = action_metrics(action=action, window=window)
        changelist = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        base_filter = {ACTION_PARAMETER: action.pk}
        return TemplateResponse(
            request,
            "admin/actions/runtime/metrics.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "app_label": self.opts.app_label,
                "title": _("Metrics of %(name)s") % {"name": action.name},
                "media": self.media,
                "action": action,
                "metrics": metrics,
                "numbers": _numbers(metrics),
                "chart": metrics_chart(metrics),
                "window": window_text,
                "window_error": window_error,
                "custom_window": window_text not in METRICS_WINDOWS,
                "windows": [(w, f"?{urlencode({'window': w})}") for w in METRICS_WINDOWS],
                "invocations_url": f"{changelist}?{urlencode(base_filter)}",
                "failed_url": f"{changelist}?{urlencode({**base_filter, 'status__exact': 'failed'})}",
                "can_replay": self.has_replay_permission(request),
                "replay_url": reverse(f"admin:{REPLAY_RANGE_URL_NAME}", args=[action.pk]),
                "replay_since": _local_input(metrics["since"]),
                "replay_until": _local_input(metrics["until"]),
            },
        )

    def replay_range_view(self, request: HttpRequest, action_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        action = self._metrics_action(request, action_id)
        if not self.has_replay_permission(request):
            raise PermissionDenied
        form = ReplayRangeForm(request.POST)
        back = metrics_url(action, request.POST.get("window"))
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    self.message_user(request, error, messages.ERROR)
            return HttpResponseRedirect(back)
        replayed = replays.invocations_replay(
            action=action, since=form.cleaned_data["since"], until=form.cleaned_data["until"]
        )
        self.message_user(
            request,
            ngettext(
                "%(count)s failed invocation(s) of %(name)s replayed.",
                "%(count)s failed invocation(s) of %(name)s replayed.",
                len(replayed),
            )
            % {"count": len(replayed), "name": action.name}
            if replayed
            else _("No failed invocation left to replay in that range."),
            messages.SUCCESS if replayed else messages.INFO,
        )
        return HttpResponseRedirect(back)


def _local_input(moment: datetime) -> str:
    return timezone.localtime(moment).strftime(DATETIME_INPUT)


class ReplayRangeForm(forms.Form):
    since = forms.DateTimeField(input_formats=[DATETIME_INPUT, "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"])
    until = forms.DateTimeField(input_formats=[DATETIME_INPUT, "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"])

    def clean(self) -> dict:
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError(_("The end of the range must be later than its start."))
        return data


def _numbers(metrics: dict) -> list[tuple[str, Any]]:
    rate = metrics["success_rate"]

    def ms(value: int | None) -> str:
        return "-" if value is None else f"{value} ms"

    return [
        (_("Calls"), metrics["calls"]),
        (pgettext("metrics", "Succeeded"), metrics["succeeded"]),
        (_("Success rate"), "-" if rate is None else f"{decimal(rate * 100)} %"),
        (_("HTTP 4xx"), metrics["http_4xx"]),
        (_("HTTP 5xx"), metrics["http_5xx"]),
        (_("Timeouts"), metrics["timeouts"]),
        (_("Rate limited"), metrics["rate_limited"]),
        (_("Capped (frequency caps)"), metrics["capped"]),
        (_("Other errors"), metrics["errors"]),
        (_("Latency p50"), ms(metrics["latency_p50_ms"])),
        (_("Latency p95"), ms(metrics["latency_p95_ms"])),
        (_("Calls per second"), f"{metrics['calls_per_second']:.3f}"),
        (_("Pending"), metrics["pending"]),
        (_("Running"), metrics["running"]),
    ]


# --- the chart: inline SVG drawn here, no JavaScript ---------------------------------

CHART_WIDTH, CHART_HEIGHT = 760, 220
CHART_LEFT, CHART_RIGHT, CHART_TOP, CHART_BOTTOM = 48, 12, 12, 28


def _nice_ceiling(value: int) -> int:
    """The smallest round number (1, 1.5, 2, 3, 4, 5, 6 or 8 x 10^k) that is at least `value`."""
    if value <= 1:
        return 1
    magnitude = 1
    while True:
        for step in (1, 1.5, 2, 3, 4, 5, 6, 8):
            if step * magnitude >= value and float(step * magnitude).is_integer():
                return int(step * magnitude)
        magnitude *= 10


def metrics_chart(metrics: dict) -> dict:
    """Bars of calls per bucket with their failures overlaid, as coordinates for the SVG template."""
    series = metrics["series"]
    plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    baseline = CHART_TOP + plot_height
    top = _nice_ceiling(max((b["calls"] for b in series), default=0))
    slot = plot_width / max(len(series), 1)
    label_format = "H:i" if metrics["window_s"] <= 86_400 else "M j H:i"

    def height(count: int) -> float:
        return round(count / top * plot_height, 2)

    bars = []
    for i, bucket in enumerate(series):
        calls_height, failures_height = height(bucket["calls"]), height(bucket["failures"])
        start = dateformat.format(timezone.localtime(bucket["start"]), label_format)
        end = dateformat.format(timezone.localtime(bucket["end"]), label_format)
        bars.append(
            {
                "x": round(CHART_LEFT + i * slot + slot * 0.1, 2),
                "width": round(max(slot * 0.8, 1), 2),
                "calls_y": round(baseline - calls_height, 2),
                "calls_height": calls_height,
                "failures_y": round(baseline - failures_height, 2),
                "failures_height": failures_height,
                "title": _("%(start)s to %(end)s: %(calls)s, %(failures)s")
                % {
                    "start": start,
                    "end": end,
                    "calls": _calls(bucket["calls"]),
                    "failures": _failures(bucket["failures"]),
                },
            }
        )
    ticks = [{"y": round(baseline - height(value), 2), "label": value} for value in sorted({0, top // 2, top})]
    labels = []
    if series:
        for i in sorted({0, len(series) // 2}):
            moment = timezone.localtime(series[i]["start"])
            labels.append({"x": round(CHART_LEFT + i * slot, 2), "text": dateformat.format(moment, label_format)})
        labels.append(
            {
                "x": CHART_LEFT + plot_width,
                "text": dateformat.format(timezone.localtime(series[-1]["end"]), label_format),
                "anchor": "end",
            }
        )
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_LEFT,
        "right": CHART_LEFT + plot_width,
        "baseline": baseline,
        "label_y": baseline + 18,
        "bars": bars,
        "ticks": ticks,
        "labels": labels,
        "bucket": _duration(timedelta(seconds=metrics["bucket_s"])),
    }


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for size, unit in ((86_400, _days), (3600, _hours), (60, _minutes)):
        if seconds >= size and seconds % size == 0:
            return unit(seconds // size)
    return ngettext("%(count)s seconds", "%(count)s seconds", seconds) % {"count": seconds}


def _calls(count: int) -> str:
    return ngettext("%(count)s calls", "%(count)s calls", count) % {"count": count}


def _failures(count: int) -> str:
    return ngettext("%(count)s failures", "%(count)s failures", count) % {"count": count}


def _days(count: int) -> str:
    return ngettext("%(count)s day", "%(count)s days", count) % {"count": count}


def _hours(count: int) -> str:
    return ngettext("%(count)s hour", "%(count)s hours", count) % {"count": count}


def _minutes(count: int) -> str:
    return ngettext("%(count)s minute", "%(count)s minutes", count) % {"count": count}
