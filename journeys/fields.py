"""The fields a journey's expressions can read, for the field picker: the profile attributes and
the entry event's fields seen in the organization, each action step's status values and response
fields (from its action's response schema), `now`; and warnings for fields nothing has had.

Seen fields come from the latest profiles and events only (SAMPLE rows): their names, never their
values, so the picker shows no customer's data.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from actions.models import Action
from actions.services.samples import infer_type
from journeys.expressions import ExpressionError, fields_read
from journeys.models import Event, Journey, Profile

SAMPLE = 1000
MAX_FIELDS = 200  # per source
MAX_DEPTH = 3
STATUSES = ["succeeded", "http_<code>", "timedout", "refused", "error", "rate_limited", "circuit_open", "capped"]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _path(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if _NAME.fullmatch(key) else f"{prefix}[{key!r}]".replace("'", '"')


def _walk(value: Any, prefix: str, found: dict[str, str], depth: int = 1) -> None:
    """The dotted paths of a JSON object's fields, with the type of their first value seen."""
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if len(found) >= MAX_FIELDS:
            return
        path = _path(prefix, str(key))
        found.setdefault(path, infer_type(item))
        if depth < MAX_DEPTH:
            _walk(item, path, found, depth + 1)


def _schema_fields(schema: Any, prefix: str, found: dict[str, str], depth: int = 1) -> None:
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return
    for key, sub in properties.items():
        if len(found) >= MAX_FIELDS:
            return
        path = _path(prefix, str(key))
        kind = sub.get("type") if isinstance(sub, dict) else None
        found.setdefault(path, kind if isinstance(kind, str) else "any")
        if depth < MAX_DEPTH:
            _schema_fields(sub, path, found, depth + 1)


@dataclass
class Seen:
    """What the latest profiles and entry events had: each field's path and type, and the top-level names."""

    profile: dict[str, str] = field(default_factory=dict)
    event: dict[str, str] = field(default_factory=dict)
    profile_names: set[str] = field(default_factory=set)
    event_names: set[str] = field(default_factory=set)


def seen_fields(journey: Journey, event_name: str | None = None) -> Seen:
    """Read once per page or request: the picker and the warnings both use it. `event`: the entry event's
    fields, or those of `event_name` (what a wait_event step's condition reads as `event`)."""
    seen = Seen()
    profiles = Profile.objects.filter(organization=journey.organization).order_by("-pk")
    for attributes in profiles.values_list("attributes", flat=True)[:SAMPLE]:
        _walk(attributes, "profile", seen.profile)
        seen.profile_names |= set(map(str, attributes)) if isinstance(attributes, dict) else set()
    for data in _event_data(journey, journey.entry_event if event_name is None else event_name):
        _walk(data, "event.data", seen.event)
        seen.event_names |= set(map(str, data)) if isinstance(data, dict) else set()
    return seen


def _event_data(journey: Journey, name: Any) -> list[Any]:
    if not isinstance(name, str) or not name:
        return []
    events = Event.objects.filter(organization=journey.organization, name=name).order_by("-pk")
    return list(events.values_list("data", flat=True)[:SAMPLE])


def expression_fields(journey: Journey, seen: Seen) -> list[dict[str, Any]]:
    """Every field the picker offers, in the order a person looks for them."""
    fields: list[dict[str, Any]] = [
        {"path": "profile.external_id", "type": "string", "source": "profile", "help": _("the customer's id")}
    ]
    fields += [{"path": p, "type": t, "source": "profile"} for p, t in sorted(seen.profile.items())]
    fields.append({"path": "event.name", "type": "string", "source": "event"})
    fields += [{"path": p, "type": t, "source": "event"} for p, t in sorted(seen.event.items())]
    steps = [s for s in journey.steps if isinstance(s, dict) and s.get("type") == "action"]
    actions = Action.objects.filter(organization=journey.organization, pk__in=[s.get("action") for s in steps])
    schemas = dict(actions.values_list("pk", "response_schema"))
    for step in steps:
        key = step.get("key")
        fields.append({"path": f"steps.{key}.status", "type": "string", "source": "step", "values": STATUSES})
        response: dict[str, str] = {}
        _schema_fields(schemas.get(step.get("action")), f"steps.{key}.response", response)
        fields += [{"path": p, "type": t, "source": "step"} for p, t in response.items()]
    awaited: dict[Any, list[Any]] = {}  # by event name: steps waiting for the same event read it once
    for step in journey.steps:  # the event a wait_event step waited for, as later steps read it
        if isinstance(step, dict) and step.get("type") == "wait_event":
            name = step.get("event") if isinstance(step.get("event"), str) else None
            if name not in awaited:
                awaited[name] = _event_data(journey, name)
            found: dict[str, str] = {}
            for data in awaited[name]:
                _walk(data, f"steps.{step.get('key')}.event.data", found)
            fields += [{"path": p, "type": t, "source": "step"} for p, t in sorted(found.items())]
    fields.append({"path": "now", "type": "datetime", "source": "now"})
    return fields


def _expressions(journey: Journey) -> list[tuple[str, str]]:
    """(where, source) of every expression in the journey's steps, named as problems name fields."""
    found = []
    for step in journey.steps:
        if not isinstance(step, dict):
            continue
        where = f"steps[{step.get('key')}]"
        for name, source in (step.get("parameters") or {}).items():
            found.append((f"{where}.parameters.{name}", source))
        for number, branch in enumerate(step.get("branches") or []):
            if isinstance(branch, dict):
                found.append((f"{where}.branches[{number}].expression", branch.get("expression")))
        found.append((f"{where}.until", step.get("until")))
    return [(where, source) for where, source in found if isinstance(source, str)]


def field_warnings(journey: Journey, seen: Seen) -> dict[str, list[str]]:
    """Fields an expression reads that no profile (or no entry event) has had, by where they are read.

    Nothing is said while nothing has been seen at all: a new organization has no profiles yet."""
    profile, event = seen.profile_names, seen.event_names
    warnings: dict[str, list[str]] = {}
    for where, source in _expressions(journey):
        try:
            read = fields_read(source)
        except ExpressionError:
            continue
        for root, name in sorted(read):
            if root == "profile" and profile and name not in profile and name != "external_id":
                if name in ("id", "customer_id", "user_id"):
                    said = _("No profile has had a field “%(name)s” yet (the customer's id is profile.external_id).")
                else:
                    said = _("No profile has had a field “%(name)s” yet.")
                warnings.setdefault(where, []).append(said % {"name": name})
            elif root == "event.data" and event and name not in event:
                said = _("No “%(event)s” event has had a field “%(name)s” yet.")
                warnings.setdefault(where, []).append(said % {"event": journey.entry_event, "name": name})
    return warnings


def step_fields(journey: Journey, key: str) -> tuple[list[dict[str, Any]], list[tuple[str, list[str]]]]:
    """A step form's picker and warnings. Its own answer is not known where it runs: not offered."""
    step = next((s for s in journey.steps if isinstance(s, dict) and s.get("key") == key), {})
    seen = seen_fields(journey, step.get("event") if step.get("type") == "wait_event" else None)
    fields = [f for f in expression_fields(journey, seen) if not f["path"].startswith(f"steps.{key}.")]
    warnings = sorted((where, found) for where, found in field_warnings(journey, seen).items()
                      if where.startswith(f"steps[{key}]"))  # fmt: skip
    return fields, warnings
