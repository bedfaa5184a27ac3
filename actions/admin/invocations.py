"""The admin door to the invocation log: invocations and their replay.

Same services as the API (`actions.services.replays`). Everyone sees invocation statuses; request
and response bodies only roles with VIEW_INVOCATION_BODIES; replays need MANAGE_ACTIONS. Each
action's metrics page (metrics.py) hangs off this admin's URLs.
"""

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext

from actions.admin.invocation_filters import ACTION_PARAMETER, ActionListFilter, actions_of
from actions.admin.metrics import MetricsPagesMixin, metrics_url
from actions.models import Invocation
from actions.selectors import invocation_error_shown, invocation_request_shown
from actions.send_windows import window_wait_shown
from actions.services import replays
from config.common.exceptions import Conflict
from tenants.admin_scoping import OrgScopedAdminMixin, ReadOnlyAdminMixin
from tenants.roles import Capability


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _body_block(text: str) -> str:
    if not text:
        return format_html("<span class='conduit-quiet'>{}</span>", _("empty"))
    return format_html("<pre class='conduit-body'>{}</pre>", _pretty(text))


def _headers_block(headers: Any) -> str:
    pairs = headers.items() if isinstance(headers, dict) else headers or []
    if not pairs:
        return format_html("<span class='conduit-quiet'>{}</span>", pgettext("headers or body", "none"))
    return format_html_join("", "<code>{}: {}</code><br>", ((name, value) for name, value in pairs))


STATUS_FIELDS = [
    "id", "action_display", "origin", "origin_ref", "replay_of_display", "replays_display", "status",
    "outcome", "attempts", "latency_display", "response_status", "error", "created_at", "next_attempt_at",
    "send_window_display", "finished_at",
]  # fmt: skip
BODY_FIELDS = ["request_display", "response_headers_display", "response_body_display", "attempt_log_display"]


@admin.register(Invocation)
class InvocationAdmin(MetricsPagesMixin, ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """The invocation log, read-only. Request and response bodies only for admin and technical roles."""

    view_capability = Capability.VIEW_JOURNEYS
    change_capability = Capability.MANAGE_ACTIONS
    list_display = ["short_id", "action_link", "status", "outcome", "attempts", "latency", "created_at"]
    list_filter = ["status", "outcome", "origin", "created_at", ActionListFilter]
    list_select_related = ["action", "organization"]
    search_fields = ["=id", "=origin_ref"]
    search_help_text = gettext_lazy(
        "An invocation's id, or what it came from (a step run, or the replayed invocation)."
    )
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
        if not self._can(request, Capability.VIEW_DESTINATIONS):
            fields[fields.index("error")] = "error_outcome"
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
                    _("Request and response"),
                    {
                        "fields": BODY_FIELDS,
                        "description": _(
                            "The rendered request as sent, before authentication: "
                            "credentials are added at send time and never stored."
                        ),
                    },
                )
            )
        return fieldsets

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("action", "organization", "replay_of")

    # --- columns and fields
    @admin.display(description=gettext_lazy("invocation"), ordering="id")
    def short_id(self, obj: Invocation) -> str:
        return str(obj.pk)[:8]

    @admin.display(description=gettext_lazy("action"), ordering="action__name")
    def action_link(self, obj: Invocation) -> str:
        return format_html(
            '{} <a class="conduit-quiet" href="{}" title="{}">{}</a>',
            obj.action.name,
            metrics_url(obj.action),
            _("Metrics of this action"),
            _("metrics"),
        )

    @admin.display(description=gettext_lazy("latency"), ordering="latency_ms")
    def latency(self, obj: Invocation) -> str:
        return "" if obj.latency_ms is None else f"{obj.latency_ms} ms"

    @admin.display(description=gettext_lazy("action"))
    def action_display(self, obj: Invocation) -> str:
        return self.action_link(obj)

    @admin.display(description=gettext_lazy("latency"))
    def latency_display(self, obj: Invocation) -> str:
        return self.latency(obj) or "-"

    @admin.display(description=gettext_lazy("send window"))
    def send_window_display(self, obj: Invocation) -> str:
        zone = obj.time_zone or obj.organization.default_time_zone  # a call not made for a profile: the default
        return window_wait_shown(obj.window_wait_until, zone) or "-"

    @admin.display(description=gettext_lazy("replay of"))
    def replay_of_display(self, obj: Invocation) -> str:
        if obj.replay_of is None:
            return "-"
        return format_html('<a href="{}">{}</a>', _invocation_url(obj.replay_of), obj.replay_of.pk)

    @admin.display(description=gettext_lazy("replays"))
    def replays_display(self, obj: Invocation) -> str:
        replays = list(obj.replays.order_by("created_at"))
        if not replays:
            return "-"
        return format_html_join(
            "", '<a href="{}">{}</a> ({})<br>', ((_invocation_url(r), r.pk, r.status) for r in replays)
        )

    @admin.display(description=gettext_lazy("request"))
    def request_display(self, obj: Invocation) -> str:
        request = invocation_request_shown(obj)  # a secret value shows as {{secrets.NAME}}
        return format_html(
            "<code>{} {}</code><br>{}{}",
            request.get("method", ""),
            request.get("url", ""),
            _headers_block(request.get("headers")),
            _body_block(request.get("body") or ""),
        )

    @admin.display(description=gettext_lazy("response headers"))
    def response_headers_display(self, obj: Invocation) -> str:
        return _headers_block(obj.response_headers)

    @admin.display(description=gettext_lazy("error"))
    def error_outcome(self, obj: Invocation) -> str:
        return invocation_error_shown(obj, sees_destinations=False)

    @admin.display(description=gettext_lazy("response body"))
    def response_body_display(self, obj: Invocation) -> str:
        return _body_block(obj.response_body)

    @admin.display(description=gettext_lazy("attempt log"))
    def attempt_log_display(self, obj: Invocation) -> str:
        attempts = list(obj.attempt_log.all())
        if not attempts:
            return _("No attempt yet.")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td>"
            "<td><details><summary>{}</summary>{}{}</details></td></tr>",
            (
                (
                    a.number,
                    a.started_at.isoformat(timespec="seconds"),
                    a.outcome,
                    a.response_status or "-",
                    a.latency_ms,
                    a.error or "",
                    _("headers and body"),
                    _headers_block(a.response_headers),
                    _body_block(a.response_body),
                )
                for a in attempts
            ),
        )
        return format_html(
            "<table class='conduit-table'><thead><tr><th>#</th><th>{}</th><th>{}</th>"
            "<th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("Started"),
            _("Outcome"),
            _("Status"),
            _("Latency"),
            _("Error"),
            _("Response"),
            rows,
        )

    # --- replay
    @admin.action(description=gettext_lazy("Replay selected failed invocations"), permissions=["replay"])
    def replay_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        replayed, skipped = 0, 0
        for invocation in queryset:
            try:
                replays.invocation_replay(invocation=invocation)
            except Conflict:
                skipped += 1
            else:
                replayed += 1
        if replayed:
            message = ngettext(
                "%(count)s failed invocation(s) replayed.", "%(count)s failed invocation(s) replayed.", replayed
            )
            self.message_user(request, message % {"count": replayed}, messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)s invocation(s) skipped: only failed invocations are replayed.",
                    "%(count)s invocation(s) skipped: only failed invocations are replayed.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )

    # --- the changelist links to the metrics of the action it is filtered by
    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = dict(extra_context or {})
        chosen = request.GET.get(ACTION_PARAMETER, "")
        if chosen.isdigit():
            action = actions_of(request).filter(pk=chosen).first()
            if action is not None:
                extra_context.update(metrics_action=action, metrics_url=metrics_url(action))
        return super().changelist_view(request, extra_context)


def _invocation_url(invocation: Invocation) -> str:
    return reverse("admin:actions_invocation_change", args=[invocation.pk])
