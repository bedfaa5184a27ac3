"""The admin door to the invocation log: invocations, replay, per-action metrics, host limits, circuits.

Same services as the API (`actions.services.metrics`). Everyone sees invocation statuses; request
and response bodies only roles with VIEW_INVOCATION_BODIES; replays and host limits need
MANAGE_ACTIONS.
"""

import json
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import dateformat, timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from actions.models import Action, CircuitBreaker, EndpointLimit, Invocation
from actions.selectors import invocation_request_shown
from actions.services import endpoint_limits, replays
from actions.services import metrics as observability
from config.common.exceptions import Conflict
from tenants.admin_scoping import OrgScopedAdminMixin, ReadOnlyAdminMixin, adopt_saved_row
from tenants.middleware import active_organization
from tenants.roles import Capability

ACTION_PARAMETER = "action__id__exact"
METRICS_WINDOWS = ["1h", "24h", "7d"]
DEFAULT_WINDOW = "1h"
DATETIME_INPUT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


def _actions_of(request: HttpRequest) -> QuerySet[Action]:
    """The actions the admin user may pick: the active organization's (all of them for superusers)."""
    actions = Action.objects.select_related("organization")
    if request.user.is_superuser:
        return actions
    return actions.filter(organization=active_organization(request))


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _body_block(text: str) -> str:
    if not text:
        return format_html("<span class='conduit-quiet'>{}</span>", "empty")
    return format_html("<pre class='conduit-body'>{}</pre>", _pretty(text))


def _headers_block(headers: Any) -> str:
    pairs = headers.items() if isinstance(headers, dict) else headers or []
    if not pairs:
        return format_html("<span class='conduit-quiet'>{}</span>", "none")
    return format_html_join("", "<code>{}: {}</code><br>", ((name, value) for name, value in pairs))


# --- invocations --------------------------------------------------------------------


class ActionListFilter(admin.SimpleListFilter):
    """The action filter, with the active organization's actions only."""

    title = "action"
    parameter_name = ACTION_PARAMETER

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[Any, str]]:
        actions = _actions_of(request).order_by("name", "pk")
        if request.user.is_superuser:
            return [(a.pk, f"{a.name} ({a.organization.slug})") for a in actions]
        return [(a.pk, a.name) for a in actions]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(action_id=self.value()) if self.value() else queryset


STATUS_FIELDS = [
    "id", "action_display", "origin", "origin_ref", "replay_of_display", "replays_display", "status",
    "outcome", "attempts", "latency_display", "response_status", "error", "created_at", "next_attempt_at",
    "finished_at",
]  # fmt: skip
BODY_FIELDS = ["request_display", "response_headers_display", "response_body_display", "attempt_log_display"]


@admin.register(Invocation)
class InvocationAdmin(ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """The invocation log, read-only. Request and response bodies only for admin and technical roles."""

    view_capability = Capability.VIEW_JOURNEYS
    change_capability = Capability.MANAGE_ACTIONS
    list_display = ["short_id", "action_link", "status", "outcome", "attempts", "latency", "created_at"]
    list_filter = ["status", "outcome", "origin", "created_at", ActionListFilter]
    list_select_related = ["action", "organization"]
    search_fields = ["=id", "=origin_ref"]
    search_help_text = "An invocation's id, or what it came from (a step run, or the replayed invocation)."
    ordering = ["-created_at"]
    actions = ["replay_failed"]
    change_list_template = "admin/actions/runtime/invocation_change_list.html"

    class Media:
        css = {"all": ["actions/admin.css", "actions/runtime/runtime.css"]}

    # --- read-only for everyone: invocations are written by the runtime only
    def has_replay_permission(self, request: HttpRequest) -> bool:
        return self._can(request, Capability.MANAGE_ACTIONS)

    def sees_bodies(self, request: HttpRequest) -> bool:
        return self._can(request, Capability.VIEW_INVOCATION_BODIES)

    # --- the detail page: statuses for everyone, bodies for some, built per request
    def get_fields(self, request: HttpRequest, obj: Invocation | None = None) -> list[str]:
        fields = list(STATUS_FIELDS)
        if request.user.is_superuser:
            fields.insert(1, "organization")
        return fields + (BODY_FIELDS if self.sees_bodies(request) else [])

    def get_readonly_fields(self, request: HttpRequest, obj: Invocation | None = None) -> list[str]:
        return self.get_fields(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Invocation | None = None) -> list:
        fields = self.get_fields(request, obj)
        fieldsets = [(None, {"fields": [f for f in fields if f not in BODY_FIELDS]})]
        if self.sees_bodies(request):
            fieldsets.append(
                (
                    "Request and response",
                    {
                        "fields": BODY_FIELDS,
                        "description": "The rendered request as sent, before authentication: "
                        "credentials are added at send time and never stored.",
                    },
                )
            )
        return fieldsets

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("action", "organization", "replay_of")

    # --- columns and fields
    @admin.display(description="invocation", ordering="id")
    def short_id(self, obj: Invocation) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="action", ordering="action__name")
    def action_link(self, obj: Invocation) -> str:
        return format_html(
            '{} <a class="conduit-quiet" href="{}" title="Metrics of this action">metrics</a>',
            obj.action.name,
            metrics_url(obj.action),
        )

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, obj: Invocation) -> str:
        return "" if obj.latency_ms is None else f"{obj.latency_ms} ms"

    @admin.display(description="action")
    def action_display(self, obj: Invocation) -> str:
        return self.action_link(obj)

    @admin.display(description="latency")
    def latency_display(self, obj: Invocation) -> str:
        return self.latency(obj) or "-"

    @admin.display(description="replay of")
    def replay_of_display(self, obj: Invocation) -> str:
        if obj.replay_of is None:
            return "-"
        return format_html('<a href="{}">{}</a>', _invocation_url(obj.replay_of), obj.replay_of.pk)

    @admin.display(description="replays")
    def replays_display(self, obj: Invocation) -> str:
        replays = list(obj.replays.order_by("created_at"))
        if not replays:
            return "-"
        return format_html_join(
            "", '<a href="{}">{}</a> ({})<br>', ((_invocation_url(r), r.pk, r.status) for r in replays)
        )

    @admin.display(description="request")
    def request_display(self, obj: Invocation) -> str:
        request = invocation_request_shown(obj)  # a secret value shows as {{secrets.NAME}}
        return format_html(
            "<code>{} {}</code><br>{}{}",
            request.get("method", ""),
            request.get("url", ""),
            _headers_block(request.get("headers")),
            _body_block(request.get("body") or ""),
        )

    @admin.display(description="response headers")
    def response_headers_display(self, obj: Invocation) -> str:
        return _headers_block(obj.response_headers)

    @admin.display(description="response body")
    def response_body_display(self, obj: Invocation) -> str:
        return _body_block(obj.response_body)

    @admin.display(description="attempt log")
    def attempt_log_display(self, obj: Invocation) -> str:
        attempts = list(obj.attempt_log.all())
        if not attempts:
            return "No attempt yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td>"
            "<td><details><summary>headers and body</summary>{}{}</details></td></tr>",
            (
                (
                    a.number,
                    a.started_at.isoformat(timespec="seconds"),
                    a.outcome,
                    a.response_status or "-",
                    a.latency_ms,
                    a.error or "",
                    _headers_block(a.response_headers),
                    _body_block(a.response_body),
                )
                for a in attempts
            ),
        )
        return format_html(
            "<table class='conduit-table'><thead><tr><th>#</th><th>Started</th><th>Outcome</th>"
            "<th>Status</th><th>Latency</th><th>Error</th><th>Response</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    # --- replay
    @admin.action(description="Replay selected failed invocations", permissions=["replay"])
    def replay_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        replayed, skipped = 0, 0
        for invocation in queryset:
            try:
                replays.failed_invocation_replay(invocation=invocation)
            except Conflict:
                skipped += 1
            else:
                replayed += 1
        if replayed:
            self.message_user(request, f"{replayed} failed invocation(s) replayed.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} invocation(s) skipped: only failed invocations are replayed.",
                messages.WARNING,
            )

    # --- the changelist links to the metrics of the action it is filtered by
    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = dict(extra_context or {})
        chosen = request.GET.get(ACTION_PARAMETER, "")
        if chosen.isdigit():
            action = _actions_of(request).filter(pk=chosen).first()
            if action is not None:
                extra_context.update(metrics_action=action, metrics_url=metrics_url(action))
        return super().changelist_view(request, extra_context)

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
        return get_object_or_404(_actions_of(request), pk=action_id)

    def metrics_view(self, request: HttpRequest, action_id: int) -> HttpResponse:
        action = self._metrics_action(request, action_id)
        window_text = request.GET.get("window", DEFAULT_WINDOW)
        window_error = None
        try:
            window = observability.parse_window(window_text)
        except ValidationError as exc:
            window_error = exc.message_dict["window"][0]
            window_text, window = DEFAULT_WINDOW, observability.parse_window(DEFAULT_WINDOW)
        metrics = observability.action_metrics(action=action, window=window)
        changelist = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        base_filter = {ACTION_PARAMETER: action.pk}
        return TemplateResponse(
            request,
            "admin/actions/runtime/metrics.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "app_label": self.opts.app_label,
                "title": f"Metrics of {action.name}",
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
        replayed = replays.invocations_replay_failed(
            action=action, since=form.cleaned_data["since"], until=form.cleaned_data["until"]
        )
        self.message_user(
            request,
            f"{len(replayed)} failed invocation(s) of {action.name} replayed."
            if replayed
            else "No failed invocation left to replay in that range.",
            messages.SUCCESS if replayed else messages.INFO,
        )
        return HttpResponseRedirect(back)


METRICS_URL_NAME = "actions_invocation_metrics"
REPLAY_RANGE_URL_NAME = "actions_invocation_replay_range"


def metrics_url(action: Action, window: str | None = None) -> str:
    """The admin page of an action's metrics (`admin:actions_invocation_metrics`)."""
    url = reverse(f"admin:{METRICS_URL_NAME}", args=[action.pk])
    return f"{url}?{urlencode({'window': window})}" if window else url


def _invocation_url(invocation: Invocation) -> str:
    return reverse("admin:actions_invocation_change", args=[invocation.pk])


def _local_input(moment: datetime) -> str:
    return timezone.localtime(moment).strftime(DATETIME_INPUT)


class ReplayRangeForm(forms.Form):
    since = forms.DateTimeField(input_formats=[DATETIME_INPUT, "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"])
    until = forms.DateTimeField(input_formats=[DATETIME_INPUT, "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"])

    def clean(self) -> dict:
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("The end of the range must be later than its start.")
        return data


def _numbers(metrics: dict) -> list[tuple[str, Any]]:
    rate = metrics["success_rate"]

    def ms(value: int | None) -> str:
        return "-" if value is None else f"{value} ms"

    return [
        ("Calls", metrics["calls"]),
        ("Succeeded", metrics["succeeded"]),
        ("Success rate", "-" if rate is None else f"{rate * 100:.1f} %"),
        ("HTTP 4xx", metrics["http_4xx"]),
        ("HTTP 5xx", metrics["http_5xx"]),
        ("Timeouts", metrics["timeouts"]),
        ("Rate limited", metrics["rate_limited"]),
        ("Other errors", metrics["errors"]),
        ("Latency p50", ms(metrics["latency_p50_ms"])),
        ("Latency p95", ms(metrics["latency_p95_ms"])),
        ("Calls per second", f"{metrics['calls_per_second']:.3f}"),
        ("Pending", metrics["pending"]),
        ("Running", metrics["running"]),
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
                "title": f"{start} to {end}: {bucket['calls']} calls, {bucket['failures']} failures",
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
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{seconds} seconds"


# --- host limits and circuits -------------------------------------------------------


class EndpointLimitForm(forms.ModelForm):
    """Checked by `endpoint_limits.endpoint_limit_validate`, the same function as the API's."""

    class Meta:
        model = EndpointLimit
        fields = ["organization", "host", "calls", "period_s"]
        labels = {"period_s": "Period (seconds)"}
        help_texts = {"period_s": "1 to 86400 seconds.", "calls": "Calls allowed per period, at least 1."}

    request: HttpRequest

    def _organization(self):
        if self.request.user.is_superuser:
            return self.cleaned_data.get("organization")
        return active_organization(self.request)

    def clean(self) -> dict:
        data = super().clean()
        organization = self._organization()
        if organization is None:
            return data
        values = {name: data[name] for name in ("host", "calls", "period_s") if name in data}
        try:
            cleaned = endpoint_limits.endpoint_limit_validate(
                organization=organization, data=values, instance=self.instance if self.instance.pk else None
            )
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                if name not in self.errors:  # a field that failed already keeps its first error
                    self.add_error(name if name in self.fields else None, errors)
        else:
            data.update(cleaned)
        return data


@admin.register(EndpointLimit)
class EndpointLimitAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    """Host limits: all calls of the organization to one host share them (300,000 per 60 s by default)."""

    view_capability = Capability.MANAGE_ACTIONS
    change_capability = Capability.MANAGE_ACTIONS
    form = EndpointLimitForm
    list_display = ["host", "calls", "period_s"]
    search_fields = ["host"]

    def save_model(self, request: HttpRequest, obj: EndpointLimit, form: EndpointLimitForm, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in ("host", "calls", "period_s")}
        if change:
            saved = endpoint_limits.endpoint_limit_update(endpoint_limit=obj, data=data)
        else:
            saved = endpoint_limits.endpoint_limit_create(organization=form._organization(), data=data)
        adopt_saved_row(obj, saved)

    def delete_model(self, request: HttpRequest, obj: EndpointLimit) -> None:
        endpoint_limits.endpoint_limit_delete(endpoint_limit=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for limit in queryset:
            endpoint_limits.endpoint_limit_delete(endpoint_limit=limit)


@admin.register(CircuitBreaker)
class CircuitBreakerAdmin(ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """The circuit to each host, as the runtime keeps it: read-only."""

    view_capability = Capability.VIEW_JOURNEYS
    change_capability = Capability.MANAGE_ACTIONS
    list_display = ["host", "state", "calls", "failures", "opened_at", "updated_at"]
    list_filter = ["state"]
    search_fields = ["host"]
    actions = None

    def get_fields(self, request: HttpRequest, obj: CircuitBreaker | None = None) -> list[str]:
        fields = ["host", "state", "window_started_at", "calls", "failures", "opened_at", "updated_at"]
        return (["organization"] if request.user.is_superuser else []) + fields

    def get_readonly_fields(self, request: HttpRequest, obj: CircuitBreaker | None = None) -> list[str]:
        return self.get_fields(request, obj)
