"""The send window's inputs, for the action form and a journey's action step alike: days as checkboxes,
start and end times, dates to skip one per line. They make the same `send_window` the API takes."""

from typing import Any

from django import forms
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext_lazy as _

SEND_WINDOW_FIELDS = ["send_window_days", "send_window_start", "send_window_end", "send_window_skip_dates"]
# Where a problem the service names (`send_window.start`) is shown.
SEND_WINDOW_PROBLEM_FIELDS = {
    "send_window": "send_window_start",
    "send_window.days": "send_window_days",
    "send_window.start": "send_window_start",
    "send_window.end": "send_window_end",
    "send_window.skip_dates": "send_window_skip_dates",
}
TIME_ATTRS = {"type": "time", "class": "vTimeField"}
TIME_FORMATS = ["%H:%M", "%H:%M:%S"]  # a browser's time input may add seconds; the window keeps minutes


def send_window_fields(*, override: bool = False) -> dict[str, forms.Field]:
    """Fresh inputs; with `override`, for a journey step whose empty window means the action's."""
    start_help = (
        _("In the profile's time zone, e.g. 09:00. Leave start and end empty to use the action's send window.")
        if override
        else _("In the profile's time zone, e.g. 09:00. Leave start and end empty for any time.")
    )
    return {
        "send_window_days": forms.TypedMultipleChoiceField(
            label=_("Send window: days"), required=False, coerce=int, choices=sorted(WEEKDAYS.items()), initial=[],
            widget=forms.CheckboxSelectMultiple, help_text=_("None ticked: every day."),
        ),
        "send_window_start": forms.TimeField(
            label=_("Send window: from"), required=False, input_formats=TIME_FORMATS,
            widget=forms.TimeInput(format="%H:%M", attrs=TIME_ATTRS),
            help_text=start_help,
        ),
        "send_window_end": forms.TimeField(
            label=_("Send window: until"), required=False, input_formats=TIME_FORMATS,
            widget=forms.TimeInput(format="%H:%M", attrs=TIME_ATTRS),
            help_text=_("e.g. 20:00; at or before the start, the window ends the next day (22:00 to 06:00)."),
        ),
        "send_window_skip_dates": forms.CharField(
            label=_("Send window: dates to skip"), required=False,
            widget=forms.Textarea(attrs={"rows": 3, "cols": 20, "spellcheck": "false"}),
            help_text=_("Holidays, one per line as YYYY-MM-DD, e.g. 2026-12-25: the window does not open then."),
        ),
    }  # fmt: skip


def send_window_initial(window: Any) -> dict[str, Any]:
    """The inputs' values for a stored window (none for no window)."""
    if not isinstance(window, dict):
        return {}
    days = window.get("days")
    return {
        "send_window_days": days if isinstance(days, list) and len(days) < 7 else [],
        "send_window_start": window.get("start"),
        "send_window_end": window.get("end"),
        "send_window_skip_dates": "\n".join(str(d) for d in window.get("skip_dates") or []),
    }


def send_window_from(cleaned: dict[str, Any]) -> dict[str, Any] | None:
    """The window the inputs describe, as the service takes it; None when nothing is filled in."""
    skip_dates = [line.strip() for line in (cleaned.get("send_window_skip_dates") or "").replace(",", "\n").split()]
    days = cleaned.get("send_window_days") or []
    start, end = cleaned.get("send_window_start"), cleaned.get("send_window_end")
    if start is None and end is None and not days and not skip_dates:
        return None
    window: dict[str, Any] = {}
    if days:
        window["days"] = sorted(days)
    for key, value in (("start", start), ("end", end)):
        if value is not None:
            window[key] = value.strftime("%H:%M")
    if skip_dates:
        window["skip_dates"] = skip_dates
    return window


class SendWindowFields(forms.Form):
    """The inputs declared on a form class, as the action admin's fieldsets need them."""

    locals().update(send_window_fields())
