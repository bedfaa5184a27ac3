"""The report page's pieces: the date range, the runs listed (each with its failed step), and the
chart of runs per hour, drawn on the server as SVG in the admin's own colours."""

from datetime import datetime, time, timedelta
from html import escape
from typing import Any

from django import forms
from django.db.models import Prefetch
from django.utils import dateformat, formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from journeys.models import Journey, JourneyRun, StepRun
from journeys.selectors import step_error_shown

RUNS_LISTED = 50
CHART_H, BAR_W = 80, 9


class ReportRangeForm(forms.Form):
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label=gettext_lazy("From"))
    until = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label=gettext_lazy("To (included)")
    )
    step = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", _("Give a day on or after the first one."))
        return data

    def window(self) -> tuple[datetime | None, datetime | None]:
        """[since, until) in the current time zone: whole days, the last one included."""
        if not self.is_valid():
            return None, None
        since, until = self.cleaned_data.get("since"), self.cleaned_data.get("until")
        zone = timezone.get_current_timezone()
        return (
            datetime.combine(since, time.min, zone) if since else None,
            datetime.combine(until + timedelta(days=1), time.min, zone) if until else None,
        )


def outcome_label(outcome: str) -> str:
    """A step's outcome in words: branches[0] is the first branch."""
    if outcome.startswith("branches[") and outcome.endswith("]") and outcome[9:-1].isdigit():
        return _("branch %(number)s") % {"number": int(outcome[9:-1]) + 1}
    if outcome == "else":
        return _("otherwise")
    return outcome


def listed_runs(journey: Journey, since: datetime | None, until: datetime | None, step: str) -> list[JourneyRun]:
    """The latest RUNS_LISTED runs started in [since, until), with their steps; only those that went
    through `step` when one is given (a click on a step)."""
    runs = JourneyRun.objects.filter(journey=journey, organization=journey.organization)
    if since:
        runs = runs.filter(started_at__gte=since)
    if until:
        runs = runs.filter(started_at__lt=until)
    if step:
        runs = runs.filter(step_runs__step_key=step).distinct()
    steps = StepRun.objects.select_related("invocation").order_by("sequence")
    return list(
        runs.select_related("profile").prefetch_related(Prefetch("step_runs", queryset=steps))
        .order_by("-started_at")[:RUNS_LISTED]
    )  # fmt: skip


def status_counts(runs: dict[str, int]) -> list[tuple[str, int]]:
    """A report's runs by status, each status in words: [("completed", 3), ...]."""
    return [(str(JourneyRun.Status(status).label).lower(), n) for status, n in runs.items()]


def run_rows(runs: list[JourneyRun], *, sees_destinations: bool) -> list[dict[str, Any]]:
    """Each run with its steps in order and its first failed step with its error as this person may
    see it (a run may fail a step and still complete, through the step's error branch)."""
    rows = []
    for run in runs:
        steps = list(run.step_runs.all())
        failed = next((s for s in steps if s.status == StepRun.Status.FAILED), None)
        shown = None
        if failed:
            shown = (
                failed,
                outcome_label(failed.outcome),
                step_error_shown(failed, sees_destinations=sees_destinations),
            )
        rows.append({"run": run, "steps": [(s, outcome_label(s.outcome)) for s in steps], "failed": shown})
    return rows


def runs_chart_svg(hours: list[dict[str, Any]]) -> str:
    """Bars of runs started per hour, failed ones darker; a title on each bar tells its figures."""
    most = max((h["started"] for h in hours), default=0) or 1
    width = max(len(hours) * BAR_W, 100)
    label = escape(_("Runs started per hour"))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="journey-chart" width="{width}" height="{CHART_H + 16}" '
        f'role="img" aria-label="{label}">'
    ]
    for index, hour in enumerate(hours):
        x = index * BAR_W
        tall = round(CHART_H * hour["started"] / most)
        failed = round(CHART_H * hour["failed"] / most)
        when = formats.date_format(timezone.localtime(hour["hour"]), "SHORT_DATETIME_FORMAT")  # the reader's locale
        said = _("%(when)s: %(started)s started, %(failed)s failed")
        title = escape(said % {"when": when, "started": hour["started"], "failed": hour["failed"]})
        parts.append(
            f'<g><title>{title}</title><rect class="started" x="{x}" y="{CHART_H - tall}" width="{BAR_W - 2}" '
            f'height="{tall}"/><rect class="failed" x="{x}" y="{CHART_H - failed}" width="{BAR_W - 2}" '
            f'height="{failed}"/></g>'
        )
    if hours:
        first, last = (dateformat.format(timezone.localtime(h["hour"]), "d M H:00") for h in (hours[0], hours[-1]))
        parts.append(f'<text x="0" y="{CHART_H + 13}">{escape(first)}</text>')
        parts.append(f'<text x="{width}" y="{CHART_H + 13}" text-anchor="end">{escape(last)}</text>')
    parts.append("</svg>")
    return "".join(parts)
