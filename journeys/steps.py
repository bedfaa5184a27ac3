"""The one interpreter of a journey step (SPEC sections 5 and 6), used by the engine and the test mode.

Given a step and the scope its expressions see, `decide` says what the step does: go on (and
where), wait until a time, call an action with these values, or end. `after_call` and
`after_error` say where a step goes once its call ended or an expression failed. Nothing here
writes: the engine turns decisions into rows, the test mode into the path it shows.
"""

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from actions.models import Action, Invocation
from actions.send_windows import profile_time_zone
from config.common.json_values import first_unstorable, has_unstorable_text, without_unstorable_text
from journeys.expressions import EvaluationError, evaluate
from journeys.models import Journey

NEXT, WAIT, CALL, END, JUMP = "next", "wait", "call", "end", "jump"
CAPPED = "capped"  # the outcome of a call a frequency cap held back


@dataclass
class Decision:
    """What one step decided. `kind` NEXT goes on to `next` ("" ends the run, failed if `failed`)."""

    kind: str
    outcome: str = ""  # "branches[0]", "else", "skipped", a call's outcome, "error"
    next: str = ""
    failed: bool = False
    error: str = ""
    wake_at: datetime | None = None  # a wait: when it is over
    action: Action | None = None  # a call: the action and its parameter values
    values: dict[str, Any] = field(default_factory=dict)
    entry: dict[str, Any] | None = None  # what later expressions see as steps.<key>, once known
    journey: int | None = None  # a jump: the journey the profile enters
    window: tuple[dict | None, str] = (None, "")  # a call: the step's send window override, the profile's time zone


# --- what a journey version needs at run time, compiled once --------------------------


@dataclass
class CompiledJourney:
    journey: Journey
    steps: dict[str, dict]
    actions: dict[int, Action]


_steps: dict[tuple[int, Any], dict[str, dict]] = {}
_steps_lock = threading.Lock()


def steps_of(journey: Journey) -> dict[str, dict]:
    """Steps by key; a published version's steps never change, so they are cached per (id, published_at)."""
    cached = _steps.get((journey.pk, journey.published_at))
    if cached is not None and journey.published_at is not None:
        return cached
    steps = {s["key"]: s for s in journey.steps if isinstance(s, dict) and isinstance(s.get("key"), str)}
    if journey.published_at is not None:
        with _steps_lock:
            if len(_steps) > 1000:
                _steps.clear()
            _steps[(journey.pk, journey.published_at)] = steps
    return steps


def compiled(journeys: list[Journey]) -> dict[int, CompiledJourney]:
    """Per journey id: its steps (cached) and its actions as they are now (one query: an action
    edited or archived since is seen at once, never a stale copy)."""
    steps = {journey.pk: steps_of(journey) for journey in journeys}
    ids = {s.get("action") for by_key in steps.values() for s in by_key.values() if s.get("type") == "action"}
    actions = {a.pk: a for a in Action.objects.select_related("organization").filter(pk__in=ids)}
    return {
        journey.pk: CompiledJourney(
            journey=journey,
            steps=steps[journey.pk],
            actions={pk: a for pk, a in actions.items() if a.organization_id == journey.organization_id},
        )  # fmt: skip
        for journey in journeys
    }


# --- what expressions see of a step ---------------------------------------------------


def call_entry(status: str, body: Any) -> dict[str, Any]:
    """What expressions see as steps.<key> once its call ended (SPEC section 3)."""
    succeeded = status == "succeeded"
    return {"status": status, "response": body if succeeded else None, "error_response": None if succeeded else body}


def outcome_entry(invocation: Invocation) -> dict[str, Any]:
    """steps.<key> for a stored invocation: its body read as JSON when it is JSON."""
    try:
        body = json.loads(invocation.response_body) if invocation.response_body else None
    except (ValueError, RecursionError):
        body = invocation.response_body
    if first_unstorable(body) is not None:  # 1e400, or nested past 64 levels: no JSON column takes it
        body = invocation.response_body  # its text, as for an answer that is not JSON
    body = without_unstorable_text(body)  # a provider's \u0000 or \ud800 cannot be stored
    return call_entry(invocation.outcome or invocation.status, body)


# --- where a step goes ------------------------------------------------------------------


def route(step: dict, outcome: str) -> str | None:
    """Where a step goes for an outcome: next on success, on_timeout then on_error otherwise."""
    if outcome == "succeeded":
        return step.get("next")
    if outcome == "timedout" and step.get("on_timeout"):
        return step["on_timeout"]
    return step.get("on_error")


def wake_time(value: Any) -> datetime:
    """The datetime an `until` expression gave; EvaluationError for anything else (a bad date too)."""
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is None:
            raise EvaluationError(f"until gave {value!r}, not a date and time")
        value = parsed
    if not isinstance(value, datetime):
        raise EvaluationError(f"until gave {type(value).__name__}, not a date and time")
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def _condition(step: dict, scope: dict[str, Any]) -> Decision:
    for number, branch in enumerate(step.get("branches") or []):
        if evaluate(branch["expression"], scope) is True:
            return Decision(NEXT, outcome=f"branches[{number}]", next=branch.get("next") or "")
    return Decision(NEXT, outcome="else", next=step.get("else") or "")


def split_draw(seed: str, key: str) -> int:
    """0 to 99, the same for a profile, journey and step every time: a replay takes the same branch."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big") % 100


def _split(step: dict, scope: dict[str, Any], seed: str) -> Decision:
    draw, ceiling = split_draw(f"{seed}:{scope['profile'].get('external_id', '')}", step["key"]), 0
    for number, branch in enumerate(step["branches"]):
        ceiling += branch["percent"]
        if draw < ceiling:
            return Decision(NEXT, outcome=f"branches[{number}]", next=branch.get("next") or "")
    raise EvaluationError("the split's percentages do not add up to 100")  # publishing refuses it first


def _wait(step: dict, scope: dict[str, Any], now: datetime, skip_waits: bool) -> Decision:
    if skip_waits:  # the test mode: a broken expression or date still shows now, not in a week
        if step.get("until") is not None:
            wake_time(evaluate(step["until"], scope))
        return Decision(NEXT, outcome="skipped", next=step.get("next") or "")
    if step.get("until") is not None:
        wake_at = wake_time(evaluate(step["until"], scope))
    else:
        wake_at = now + timedelta(seconds=step["duration_s"])
    return Decision(NEXT if wake_at <= now else WAIT, next=step.get("next") or "", wake_at=wake_at)


def _wait_event(step: dict, now: datetime, skip_waits: bool) -> Decision:
    """Until the profile sends step["event"] (the engine's event_waits resumes it), or the timeout."""
    if skip_waits:  # the test mode: as if the event came
        return Decision(NEXT, outcome="skipped", next=step.get("next") or "")
    return Decision(WAIT, next=step.get("next") or "", wake_at=now + timedelta(seconds=step["timeout_s"]))


def _action(step: dict, scope: dict[str, Any], actions: dict[int, Action]) -> Decision:
    action = actions.get(step.get("action"))
    if action is None:
        raise EvaluationError("the action of this step no longer exists")
    if action.status != Action.Status.ACTIVE:
        raise EvaluationError(f"the action {action.name!r} is {action.status}, not active")
    values = {name: evaluate(source, scope) for name, source in (step.get("parameters") or {}).items()}
    if has_unstorable_text(values):
        raise EvaluationError("a parameter value contains NUL or a lone surrogate, which no request can carry")
    organization = action.organization
    zone = profile_time_zone(
        scope["profile"], attribute=organization.time_zone_attribute, default=organization.default_time_zone
    )
    return Decision(CALL, action=action, values=values, window=(step.get("send_window") or None, zone))


# --- the interpreter ------------------------------------------------------------------


def decide(
    step: dict,
    scope: dict[str, Any],
    *,
    now: datetime,
    actions: dict[int, Action],
    skip_waits: bool = False,
    seed: str = "",
) -> Decision:
    """What `step` does for this scope; a failed expression follows on_error (`after_error`).

    `actions` maps ids to the organization's actions; `skip_waits` (the test mode) goes past every wait;
    `seed` (the journey) with the profile's id draws a split's branch.
    """
    try:
        if step["type"] == "end":
            return Decision(END)
        if step["type"] == "condition":
            return _condition(step, scope)
        if step["type"] == "wait":
            return _wait(step, scope, now, skip_waits)
        if step["type"] == "split":
            return _split(step, scope, seed)
        if step["type"] == "wait_event":
            return _wait_event(step, now, skip_waits)
        if step["type"] == "jump":
            return Decision(JUMP, outcome="jumped", journey=step["journey"])
        return _action(step, scope, actions)
    except EvaluationError as exc:
        return after_error(step, scope["steps"], str(exc))


def after_call(step: dict, entry: dict[str, Any], seen: dict[str, Any]) -> Decision:
    """Where an action step goes once its call ended; `seen` (steps.* of the scope) gets its entry."""
    seen[step["key"]] = entry
    status = entry["status"]
    return Decision(NEXT, outcome=status, next=route(step, status) or "", failed=status != "succeeded", entry=entry)


def after_cap(step: dict, seen: dict[str, Any]) -> Decision:
    """A call a frequency cap held back: on to on_capped, else to next (a cap is no failure); `seen` gets it."""
    entry = {"status": CAPPED, "response": None, "error_response": None}
    seen[step["key"]] = entry
    return Decision(NEXT, outcome=CAPPED, next=step.get("on_capped") or step.get("next") or "", entry=entry)


def after_error(step: dict, seen: dict[str, Any], message: str) -> Decision:
    """A step whose expression (or request) failed: on to on_error, or the run fails; `seen` gets its entry."""
    entry = {"status": "error", "response": None, "error_response": None}
    seen[step["key"]] = entry
    return Decision(NEXT, outcome="error", next=step.get("on_error") or "", failed=True, error=message, entry=entry)
