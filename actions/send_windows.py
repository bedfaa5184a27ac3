"""Send windows (quiet hours): the days and hours in which a call may be made, in the profile's time zone.

A window is `{"days": [0, ..., 6] (Monday 0), "start": "09:00", "end": "20:00", "skip_dates": ["2026-12-25"]}`.
It opens on each listed day at `start` and closes at `end`; an `end` at or before `start` closes the next
day (22:00 to 06:00 is one night; equal times are a whole day). A skipped date is a day the window does
not open. Local times come from zoneinfo: a start in the spring gap opens when the clock jumps past it,
an hour the autumn change repeats opens at its first occurrence and closes at its second.
"""

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from config.common.time_zones import time_zone_named

WINDOW_KEYS = ("days", "start", "end", "skip_dates")
ALL_DAYS = [0, 1, 2, 3, 4, 5, 6]
MAX_SKIP_DATES = 1000
CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def send_window_problems(window: Any, field: str = "send_window") -> dict[str, list[str]]:
    """Every problem with a window, keyed by its part (`send_window.start`); null is no window (any time)."""
    if window is None:
        return {}
    if not isinstance(window, dict):
        return {field: [_('must be an object such as {"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "20:00"}, '
                          "or null for any time")]}  # fmt: skip
    problems: dict[str, list[str]] = {}
    for key in sorted(set(window) - set(WINDOW_KEYS)):
        problems.setdefault(field, []).append(_("unknown key %(key)s") % {"key": str(key)[:40]})
    for key in ("start", "end"):
        value = window.get(key)
        if value is None:
            problems[f"{field}.{key}"] = [_("required, a time of day such as 09:00")]
        elif not isinstance(value, str) or not CLOCK.match(value):
            problems[f"{field}.{key}"] = [_("must be a time of day as HH:MM, from 00:00 to 23:59")]
    days = window.get("days", ALL_DAYS)
    if (
        not isinstance(days, list)
        or not days
        or any(type(day) is not int or not 0 <= day <= 6 for day in days)
        or len(set(days)) != len(days)
    ):
        problems[f"{field}.days"] = [_("must be a list of different days from 0 (Monday) to 6 (Sunday)")]
    skip_dates = window.get("skip_dates", [])
    if not isinstance(skip_dates, list) or len(skip_dates) > MAX_SKIP_DATES:
        problems[f"{field}.skip_dates"] = [
            _("must be a list of at most %(count)s dates as YYYY-MM-DD") % {"count": MAX_SKIP_DATES}
        ]
    else:
        for value in skip_dates:
            if _date(value) is None:
                problems.setdefault(f"{field}.skip_dates", []).append(
                    _("%(value)s is not a date as YYYY-MM-DD") % {"value": str(value)[:40]}
                )
    return problems


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or not DATE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _instant(day: date, clock: time, zone: ZoneInfo, *, latest: bool) -> datetime:
    """The instant (UTC) the wall clock shows `clock` on `day`: in a spring gap, the jump past it;
    in an autumn repeat, the first occurrence, or the second with `latest`."""
    wall = datetime.combine(day, clock)
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:  # the time exists (once, or twice in autumn)
        return max(first, second) if latest else min(first, second)
    # A gap: fold 1 reads it with the offset after the change, fold 0 before; the jump lies between.
    low, high = min(first, second), max(first, second)
    before = low.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        low, high = (middle, high) if middle.astimezone(zone).utcoffset() == before else (low, middle)
    return high.replace(microsecond=0)


def next_opening(window: dict[str, Any] | None, zone: ZoneInfo, now: datetime) -> datetime:
    """When a call due at `now` may be made: `now` inside the window (or without one), else the next opening (UTC).

    A window that fails `send_window_problems` counts as none: a call is never held by a shape nobody could save.
    """
    if not window or send_window_problems(window):
        return now
    days = set(window.get("days", ALL_DAYS))
    skipped = {_date(value) for value in window.get("skip_dates", [])}
    start, end = _clock(window["start"]), _clock(window["end"])
    overnight = end <= start
    today = now.astimezone(zone).date()
    # From yesterday (a night window may still be open); every 7 days one listed day opens unless skipped.
    for offset in range(-1, 7 * (len(skipped) + 2)):
        day = today + timedelta(days=offset)
        if day.weekday() not in days or day in skipped:
            continue
        opens = _instant(day, start, zone, latest=False)
        closes = _instant(day + timedelta(days=1) if overnight else day, end, zone, latest=True)
        if closes <= opens or now >= closes:  # a window inside a spring gap never opens
            continue
        return max(opens, now)
    return now


def profile_time_zone(attributes: dict[str, Any], *, attribute: str, default: str) -> str:
    """The IANA name a profile's calls are timed in: its attribute when valid, else the organization's default."""
    own = attributes.get(attribute) if attribute and isinstance(attributes, dict) else None
    if time_zone_named(own) is not None:
        return own
    return default if time_zone_named(default) is not None else "UTC"


def zone_of(name: str, default: str) -> ZoneInfo:
    """The zone a call is timed in: its own, else the organization's default, else UTC."""
    return time_zone_named(name) or time_zone_named(default) or ZoneInfo("UTC")


def window_wait_shown(until: datetime | None, zone_name: str = "") -> str:
    """What a run or an invocation page says of a call held outside its window, e.g. in the profile's zone."""
    if until is None:
        return ""
    zone = time_zone_named(zone_name) or ZoneInfo("UTC")
    local = until.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return _("waiting for the send window until %(time)s (%(zone)s)") % {"time": local, "zone": zone.key}
