"""Journey checks (SPEC section 5): the shape on every save, the whole graph when publishing.

Problems are collected, never raised one at a time, so that a person sees all of them at once;
each names its step and field (`steps[sms].parameters.phone`).
"""

from typing import Any

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from actions.send_windows import send_window_problems
from config.common.identifiers import NAME
from config.common.numbers import grouped
from config.common.problems import merge_problems
from journeys.expressions import ExpressionError, compile_expression
from journeys.models import Journey

KEY = NAME  # a step key is a name like any other
MAX_STEPS = 200  # as Braze's Canvas; a document past it is refused before any check walks it
MAX_COORDINATE = 1_000_000  # on the canvas, far past any screen
MAX_EXIT_EVENTS = 20
MAX_ID = 2**63 - 1  # ids are 64-bit: a larger number is no object's id, and the database refuses it
STEP_FIELDS = {
    "action": {"key", "type", "action", "parameters", "next", "on_error", "on_timeout", "send_window", "on_capped"},
    "condition": {"key", "type", "branches", "else", "on_error"},  # on_error: an expression failed at run time
    "wait": {"key", "type", "duration_s", "until", "next", "on_error"},
    "split": {"key", "type", "branches"},
    "wait_event": {"key", "type", "event", "condition", "timeout_s", "next", "on_timeout"},
    "jump": {"key", "type", "journey"},
    "end": {"key", "type"},
}
LINKS = ("next", "on_error", "on_timeout", "else", "on_capped")  # on_capped: a frequency cap held the call back
WAITS = ("wait", "wait_event")  # steps a loop may go through: each pass waits
MAX_TIMEOUT_S = 366 * 86400  # a year: past any journey's lifetime
MAX_SPLIT_BRANCHES = 10


def is_id(value: Any) -> bool:
    """Whether `value` can be an object's id: a whole number the database's 64-bit ids can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def _where(step: Any, index: int) -> str:
    key = step.get("key") if isinstance(step, dict) else None
    return f"steps[{key}]" if isinstance(key, str) and key else f"steps[{index}]"


def _expression(problems: dict, where: str, source: Any, keys: set[str] | None) -> None:
    if source is not None and not isinstance(source, str):
        problems.setdefault(where, []).append(_("must be an expression, written as text"))
        return
    try:
        expression = compile_expression(source)
    except ExpressionError as exc:
        problems.setdefault(where, []).append(str(exc))
        return
    if keys is not None:
        for missing in sorted(expression.step_references - keys):
            problems.setdefault(where, []).append(
                _("refers to step %(step)s, which this journey does not have") % {"step": repr(missing)}
            )


def check_shape(steps: Any, start: Any) -> dict[str, list[str]]:
    """What every save must satisfy: well-formed steps and expressions that parse."""
    problems: dict[str, list[str]] = {}
    if not isinstance(steps, list):
        return {"steps": [_("must be a list of steps")]}
    if len(steps) > MAX_STEPS:
        return {
            "steps": [
                _("a journey has at most %(max)s steps (this one has %(count)s)")
                % {"max": MAX_STEPS, "count": len(steps)}
            ]
        }
    seen: set[str] = set()
    for index, step in enumerate(steps):
        where = _where(step, index)
        if not isinstance(step, dict):
            problems.setdefault(where, []).append(_("must be an object with key and type"))
            continue
        key, kind = step.get("key"), step.get("type")
        if not isinstance(key, str) or not KEY.match(key):
            problems.setdefault(f"{where}.key", []).append(_("must be letters, digits and _ (at most 64)"))
        elif key in seen:
            problems.setdefault(f"{where}.key", []).append(_("is used by another step"))
        else:
            seen.add(key)
        if not isinstance(kind, str) or kind not in STEP_FIELDS:
            problems.setdefault(f"{where}.type", []).append(
                _("must be one of %(types)s") % {"types": ", ".join(STEP_FIELDS)}
            )
            continue
        for unknown in sorted(set(step) - STEP_FIELDS[kind]):
            problems.setdefault(f"{where}.{unknown}", []).append(
                _("is not a field of a %(type)s step") % {"type": kind}
            )
        for link in LINKS:
            if link in step and step[link] is not None and not isinstance(step[link], str):
                problems.setdefault(f"{where}.{link}", []).append(_("must be a step key"))
        if kind == "action":
            chosen = step.get("action")
            if chosen is not None and not is_id(chosen):
                problems.setdefault(f"{where}.action", []).append(_("must be an action's id"))
            if not isinstance(step.get("parameters", {}), dict):
                problems.setdefault(f"{where}.parameters", []).append(_("must map parameter names to expressions"))
            else:
                for name, source in step.get("parameters", {}).items():
                    _expression(problems, f"{where}.parameters.{name}", source, None)
            merge_problems(problems, send_window_problems(step.get("send_window"), f"{where}.send_window"))
        elif kind == "condition":
            branches = step.get("branches", [])
            if not isinstance(branches, list):
                problems.setdefault(f"{where}.branches", []).append(_("must be a list of {expression, next}"))
                continue
            for number, branch in enumerate(branches):
                if not isinstance(branch, dict) or set(branch) - {"expression", "next"}:
                    problems.setdefault(f"{where}.branches[{number}]", []).append(_("must be {expression, next}"))
                    continue
                if branch.get("next") is not None and not isinstance(branch["next"], str):
                    problems.setdefault(f"{where}.branches[{number}].next", []).append(_("must be a step key"))
                if branch.get("expression") not in ("", None):  # a branch just drawn: publishing asks for it
                    _expression(problems, f"{where}.branches[{number}].expression", branch["expression"], None)
        elif kind == "split":
            _split_shape(problems, where, step.get("branches", []))
        elif kind == "wait_event":
            _wait_event_shape(problems, where, step)
        elif kind == "jump" and step.get("journey") is not None and not is_id(step["journey"]):
            problems.setdefault(f"{where}.journey", []).append(_("must be a journey's id"))
        elif kind == "wait":
            duration, until = step.get("duration_s"), step.get("until")
            if (duration is None) == (until is None):
                problems.setdefault(where, []).append(_("give duration_s or until, not both"))
            elif duration is not None and (not isinstance(duration, int) or isinstance(duration, bool) or duration < 0):
                problems.setdefault(f"{where}.duration_s", []).append(_("must be a whole number of seconds"))
            elif until is not None:
                _expression(problems, f"{where}.until", until, None)
    if start not in ("", None) and not isinstance(start, str):
        problems.setdefault("start", []).append(_("must be a step key"))
    return problems


def _wait_event_shape(problems: dict, where: str, step: dict) -> None:
    event, timeout = step.get("event"), step.get("timeout_s")
    if event is not None and (not isinstance(event, str) or len(event) > 200):
        problems.setdefault(f"{where}.event", []).append(_("must be an event name (at most 200 characters)"))
    if timeout is not None and (
        not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= MAX_TIMEOUT_S
    ):
        problems.setdefault(f"{where}.timeout_s", []).append(
            _("must be a whole number of seconds, 1 to %(max)s") % {"max": grouped(MAX_TIMEOUT_S)}
        )
    if step.get("condition") not in ("", None):
        _expression(problems, f"{where}.condition", step["condition"], None)


def _split_shape(problems: dict, where: str, branches: Any) -> None:
    if not isinstance(branches, list) or len(branches) > MAX_SPLIT_BRANCHES:
        problems.setdefault(f"{where}.branches", []).append(
            _("must be a list of at most %(max)s {percent, next}") % {"max": MAX_SPLIT_BRANCHES}
        )
        return
    for number, branch in enumerate(branches):
        if not isinstance(branch, dict) or set(branch) - {"percent", "next"}:
            problems.setdefault(f"{where}.branches[{number}]", []).append(_("must be {percent, next}"))
            continue
        percent = branch.get("percent")
        if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
            problems.setdefault(f"{where}.branches[{number}].percent", []).append(_("must be a whole number, 0 to 100"))
        if branch.get("next") is not None and not isinstance(branch["next"], str):
            problems.setdefault(f"{where}.branches[{number}].next", []).append(_("must be a step key"))


def _links(step: dict) -> list[tuple[str, str]]:
    """(field, target) of every outgoing link of a step."""
    links = [(field, step[field]) for field in LINKS if step.get(field)]
    for number, branch in enumerate(step.get("branches") or []):
        if isinstance(branch, dict) and branch.get("next"):
            links.append((f"branches[{number}].next", branch["next"]))
    return links


def check_publishable(
    *,
    steps: list[dict],
    start: str,
    entry_event: str,
    actions: dict[int, Any],
    live_journeys: set[int] = frozenset(),
    audience: dict | None = None,
) -> dict[str, list[str]]:
    """Everything that stops a journey from going live, all at once.

    `actions` maps the organization's action ids to actions; another organization's id is unknown here;
    `live_journeys` are the ids of its live journeys, which a jump may lead to.
    """
    problems = check_shape(steps, start)
    if problems:
        return problems
    if not entry_event and not audience:
        problems.setdefault("entry_event", []).append(_("name the event that starts the journey, or give an audience"))
    by_key = {step["key"]: step for step in steps}
    keys_of_steps = set(by_key)
    if not steps:
        return {**problems, "steps": [_("a journey needs at least one step")]}
    if start not in by_key:
        problems.setdefault("start", []).append(_("%(start)s is not a step of this journey") % {"start": repr(start)})
    for step in steps:
        where = f"steps[{step['key']}]"
        for field, target in _links(step):
            if target not in by_key:
                problems.setdefault(f"{where}.{field}", []).append(
                    _("leads to %(target)s, which does not exist") % {"target": repr(target)}
                )
        kind = step["type"]
        if kind in ("action", "wait", "wait_event") and not step.get("next"):
            problems.setdefault(f"{where}.next", []).append(_("say which step comes next"))
        if kind == "condition" and not step.get("else"):
            problems.setdefault(f"{where}.else", []).append(_("say where to go when no branch matches"))
        if kind == "condition" and not step.get("branches"):
            problems.setdefault(f"{where}.branches", []).append(_("a condition needs at least one branch"))
        if kind == "wait_event":
            if not step.get("event"):
                problems.setdefault(f"{where}.event", []).append(_("name the event to wait for"))
            if step.get("timeout_s") is None:
                problems.setdefault(f"{where}.timeout_s", []).append(_("say how long to wait for it"))
            if step.get("condition") not in ("", None):
                _expression(problems, f"{where}.condition", step["condition"], keys_of_steps)
        if kind == "jump" and step.get("journey") not in live_journeys:
            problems.setdefault(f"{where}.journey", []).append(_("choose a live journey of this organization"))
        if kind == "split":
            shares = [branch.get("percent", 0) for branch in step.get("branches") or []]
            if len(shares) < 2:
                problems.setdefault(f"{where}.branches", []).append(_("a split needs at least two branches"))
            elif sum(shares) != 100:
                problems.setdefault(f"{where}.branches", []).append(
                    _("the percentages add up to %(sum)s, not 100") % {"sum": sum(shares)}
                )
        for number, branch in enumerate(step.get("branches") or []):
            if not branch.get("next"):
                problems.setdefault(f"{where}.branches[{number}].next", []).append(
                    _("say which step this branch leads to")
                )
        keys = set(by_key)
        for name, source in (step.get("parameters") or {}).items():
            _expression(problems, f"{where}.parameters.{name}", source, keys)
        for number, branch in enumerate(step.get("branches") or [] if kind == "condition" else []):
            _expression(problems, f"{where}.branches[{number}].expression", branch.get("expression"), keys)
        if kind == "wait" and step.get("until") is not None:
            _expression(problems, f"{where}.until", step["until"], keys)
        if kind == "action":
            action = actions.get(step.get("action")) if isinstance(step.get("action"), int) else None
            if action is None:
                problems.setdefault(f"{where}.action", []).append(_("choose an action of this organization"))
                continue
            if action.status != "active":
                problems.setdefault(f"{where}.action", []).append(
                    _("the action %(name)s is not active") % {"name": repr(action.name)}
                )
            declared = {p["name"]: p for p in action.parameters}
            mapped = step.get("parameters") or {}
            for name in sorted(set(mapped) - set(declared)):
                problems.setdefault(f"{where}.parameters.{name}", []).append(
                    _("%(name)s has no such parameter") % {"name": repr(action.name)}
                )
            for name, parameter in declared.items():
                if parameter.get("required", True) and parameter.get("default") is None and name not in mapped:
                    problems.setdefault(f"{where}.parameters.{name}", []).append(
                        _("is required: map it to an expression")
                    )
    if start in by_key:
        reachable, pending = set(), [start]
        while pending:
            key = pending.pop()
            if key in reachable or key not in by_key:
                continue
            reachable.add(key)
            pending += [target for _, target in _links(by_key[key])]
        for key in by_key:
            if key not in reachable:
                problems.setdefault(f"steps[{key}]", []).append(_("cannot be reached from the start"))
    for cycle in _cycles_without_wait(by_key):
        problems.setdefault(f"steps[{cycle[0]}]", []).append(
            _("is on a loop with no wait: %(loop)s") % {"loop": " -> ".join([*cycle, cycle[0]])}
        )
    return problems


def _cycles_without_wait(by_key: dict[str, dict]) -> list[list[str]]:
    """Loops a run could go around without ever waiting (it would never stop)."""
    graph = {
        key: list(dict.fromkeys(t for _, t in _links(step) if t in by_key and by_key[t]["type"] not in WAITS))
        for key, step in by_key.items()
        if step["type"] not in WAITS
    }
    cycles: list[list[str]] = []
    state: dict[str, str] = {}
    for root in graph:
        if root in state:
            continue
        # Depth first without recursion: a chain of steps as long as the document allows is no
        # deeper for the interpreter than a single step.
        path, pending = [root], [iter(graph[root])]
        state[root] = "open"
        while pending:
            target = next(pending[-1], None)
            if target is None:
                state[path.pop()] = "done"
                pending.pop()
            elif state.get(target) == "open":
                cycles.append(path[path.index(target) :])
            elif target not in state:
                state[target] = "open"
                path.append(target)
                pending.append(iter(graph.get(target, [])))
    return cycles


def layout_errors(journey: Journey) -> dict[str, list[str]]:
    """Positions are numbers; those of steps the journey no longer has are dropped, not refused."""
    layout = journey.layout
    if not isinstance(layout, dict):
        return {"layout": [_('give {"<step key>": {"x": 120, "y": 40}, ...}')]}
    steps = journey.steps if isinstance(journey.steps, list) else []
    keys = {
        s["key"] for s in steps if isinstance(s, dict) and isinstance(s.get("key"), str)
    }  # a bad key: check_shape's
    errors: dict[str, list[str]] = {}
    for key, place in layout.items():
        if key not in keys:
            continue
        if not isinstance(place, dict) or set(place) != {"x", "y"}:
            errors[f"layout.{key}"] = [_('give {"x": <number>, "y": <number>}, nothing else')]
            continue
        for axis in ("x", "y"):
            value = place[axis]
            if isinstance(value, bool) or not isinstance(value, int | float) or not abs(value) <= MAX_COORDINATE:
                errors[f"layout.{key}.{axis}"] = [
                    _("a number from -%(max)s to %(max)s") % {"max": grouped(MAX_COORDINATE)}
                ]
    if not errors:
        journey.layout = {key: place for key, place in layout.items() if key in keys}
    return errors


def exit_events_problem(names: Any) -> str:
    if not isinstance(names, list) or len(names) > MAX_EXIT_EVENTS:
        return _("give a list of at most %(count)s event names") % {"count": MAX_EXIT_EVENTS}
    if not all(isinstance(n, str) and n.strip() and len(n) <= 200 for n in names):
        return _("each event name is text of 1 to 200 characters")
    if len(set(names)) != len(names):
        return _("each event name once")
    return ""


def live_journey_ids(journey: Journey) -> set[int]:
    """The organization's other live journeys: where a jump step may lead."""
    live = Journey.objects.filter(organization_id=journey.organization_id, status=Journey.Status.LIVE)
    return set(live.exclude(pk=journey.pk).values_list("pk", flat=True))


AUDIENCE_FIELDS = {"segment", "rate_per_s", "start_at", "repeat"}
AUDIENCE_REPEATS = ("none", "daily", "weekly")
MAX_AUDIENCE_RATE = 20_000  # profiles a second, as Adobe's Read audience at most


def audience_problems(audience: Any) -> dict[str, list[str]]:
    """An audience entry's shape: {"segment": id, "rate_per_s": n, "start_at": datetime or null, "repeat": ...}."""
    if audience is None:
        return {}
    if not isinstance(audience, dict):
        return {"audience": [_('give {"segment": <id>, "rate_per_s": 100, "start_at": null, "repeat": "none"}')]}
    problems: dict[str, list[str]] = {}
    for unknown in sorted(set(audience) - AUDIENCE_FIELDS, key=str):
        problems[f"audience.{unknown}"] = [_("is not a field of an audience")]
    if not is_id(audience.get("segment")):
        problems["audience.segment"] = [_("must be a segment's id")]
    rate = audience.get("rate_per_s")
    if not isinstance(rate, int) or isinstance(rate, bool) or not 1 <= rate <= MAX_AUDIENCE_RATE:
        problems["audience.rate_per_s"] = [
            _("profiles a second: a whole number, 1 to %(max)s") % {"max": grouped(MAX_AUDIENCE_RATE)}
        ]
    start_at = audience.get("start_at")
    if start_at is not None:
        try:
            parsed = parse_datetime(start_at) if isinstance(start_at, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            problems["audience.start_at"] = [_("a date and time with its offset, e.g. 2026-12-24T09:00:00+01:00")]
    if audience.get("repeat", "none") not in AUDIENCE_REPEATS:
        problems["audience.repeat"] = [_("must be one of %(values)s") % {"values": ", ".join(AUDIENCE_REPEATS)}]
    return problems
