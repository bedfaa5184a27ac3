"""Time zones by IANA name, from the standard library's zoneinfo (the system's zone data, or the tzdata package)."""

import functools
import zoneinfo

MAX_NAME_LENGTH = 64  # the longest IANA name is about 30 characters; Invocation.time_zone holds 64


@functools.cache
def _known_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def time_zone_named(name: object) -> zoneinfo.ZoneInfo | None:
    """The zone of an IANA name such as "Europe/Paris", or None.

    Only names the zone data lists are looked up: a profile's attribute is anyone's input, and
    ZoneInfo would otherwise try a path made of it (and cache every zone it opened).
    """
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH or name not in _known_names():
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


def is_time_zone(name: object) -> bool:
    return time_zone_named(name) is not None
