"""The journey diagram, drawn on the server as SVG: steps as boxes in columns by distance from
the start, links as labelled arrows (next, error, timeout, each branch, else). No JavaScript,
no CDN: it renders offline and in tests.
"""

from collections import deque
from html import escape
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

BOX_W, BOX_H, COL_W, ROW_H, MARGIN = 170, 58, 300, 96, 20
EMPTY = '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="40"><text x="10" y="25">{}</text></svg>'
TYPE_COLOURS = {
    "action": "#e8f1fb", "condition": "#fdf3e1", "wait": "#eef7ec", "end": "#f1f1f1", "split": "#f4ecfb",
    "wait_event": "#e6f6f4", "jump": "#eef0f3",
}  # fmt: skip
LINK_COLOURS = {"on_error": "#b23", "on_timeout": "#b60", "on_capped": "#76b"}
LINK_LABELS = {
    "next": gettext_lazy("next"), "else": gettext_lazy("else"),
    "on_error": gettext_lazy("error"), "on_timeout": gettext_lazy("timeout"), "on_capped": gettext_lazy("capped"),
}  # fmt: skip
TYPE_NAMES = {
    "action": gettext_lazy("action"), "condition": gettext_lazy("condition"),
    "wait": gettext_lazy("wait"), "end": gettext_lazy("end"), "split": gettext_lazy("split"),
    "wait_event": gettext_lazy("wait for event"), "jump": gettext_lazy("jump"),
}  # fmt: skip


def type_name(kind: Any) -> str:
    """A step's type as people read it (the journey document's `action` in their language)."""
    return str(TYPE_NAMES.get(kind, kind)) if isinstance(kind, str) else str(kind)


def _arrows(step: dict) -> list[tuple[str, str, str]]:
    """(field, label, target) of each arrow leaving a step, in the order a person reads them."""
    found = []
    for number, branch in enumerate(step.get("branches") or []):
        if isinstance(branch, dict) and branch.get("next"):
            values = {"expression": str(branch.get("expression") or "")}
            label = _("if %(expression)s") % values if number == 0 else _("else if %(expression)s") % values
            if step.get("type") == "split":
                label = _("%(percent)s %%") % {"percent": branch.get("percent", 0)}
            found.append((f"branches[{number}]", label, branch["next"]))
    for field, label in LINK_LABELS.items():
        if step.get(field):
            found.append((field, str(label), step[field]))
    return found


def links(step: dict) -> list[tuple[str, str]]:
    """(label, target) of each arrow leaving a step, in the order a person reads them."""
    return [(label, target) for _field, label, target in _arrows(step)]


def step_summary(step: dict, names: dict[int, str], journey_names: dict[int, str] | None = None) -> str:
    """A step in a few words, for the builder's table of steps (`journey_names`: a jump's targets by id)."""
    if step["type"] == "action":
        return names.get(step.get("action"), _("no action chosen yet"))
    if step["type"] == "wait":
        if step.get("until") is not None:
            return _("until %(expression)s") % {"expression": step["until"]}
        return _("%(seconds)s s") % {"seconds": step.get("duration_s", 0)}
    if step["type"] == "condition":
        return _("%(count)s branch(es) and else") % {"count": len(step.get("branches") or [])}
    if step["type"] == "wait_event":
        return _("until %(event)s") % {"event": step.get("event") or "?"}
    if step["type"] == "jump":
        target = step.get("journey")
        if journey_names and target in journey_names:
            return _("to %(journey)s") % {"journey": journey_names[target]}
        return _("to journey %(id)s") % {"id": target or "?"}
    if step["type"] == "split":
        return " / ".join(f"{branch.get('percent', 0)} %" for branch in step.get("branches") or [])
    return ""


def _summary(step: dict, action_names: dict[int, str]) -> str:
    kind = step.get("type")
    if kind == "action":
        return _("action: %(name)s") % {"name": action_names.get(step.get("action"), _("(choose an action)"))}
    if kind == "wait":
        if step.get("until") is not None:
            return _("wait until an expression")
        return _("wait %(seconds)s s") % {"seconds": step.get("duration_s", 0)}
    return type_name(kind)


def _layout(steps: list[dict], start: str) -> dict[str, tuple[int, int]]:
    """(column, row) per key: breadth-first from the start; steps it cannot reach go last."""
    by_key = {s["key"]: s for s in steps if isinstance(s, dict) and isinstance(s.get("key"), str)}
    depth: dict[str, int] = {}
    queue = deque([start] if start in by_key else [])
    if queue:
        depth[start] = 0
    while queue:
        key = queue.popleft()
        for _label, target in links(by_key[key]):
            if target in by_key and target not in depth:
                depth[target] = depth[key] + 1
                queue.append(target)
    last = max(depth.values(), default=-1) + 1
    for key in by_key:
        depth.setdefault(key, last)
    rows: dict[int, int] = {}
    positions = {}
    for key in by_key:
        column = depth[key]
        positions[key] = (column, rows.get(column, 0))
        rows[column] = rows.get(column, 0) + 1
    return positions


def journey_svg(
    steps: Any, start: str, action_names: dict[int, str] | None = None, counts: dict[str, dict] | None = None
) -> str:
    """The SVG markup (every text escaped). `counts` adds a report line per step."""
    steps = (
        [s for s in steps if isinstance(s, dict) and isinstance(s.get("key"), str)] if isinstance(steps, list) else []
    )
    if not steps:
        return EMPTY.format(escape(_("No steps yet.")))
    positions = _layout(steps, start)
    columns = max(c for c, _ in positions.values()) + 1
    rows = max(r for _, r in positions.values()) + 1
    width, height = MARGIN * 2 + (columns - 1) * COL_W + BOX_W, MARGIN * 2 + (rows - 1) * ROW_H + BOX_H + 30

    def corner(key: str) -> tuple[int, int]:
        column, row = positions[key]
        return MARGIN + column * COL_W, MARGIN + row * ROW_H

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'class="journey-diagram" font-family="sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    for step in steps:
        x, y = corner(step["key"])
        for number, (field, label, target) in enumerate(_arrows(step)):
            if target not in positions:
                continue
            tx, ty = corner(target)
            x1, y1 = x + BOX_W, y + BOX_H / 2 + (number - 1) * 8
            x2, y2 = tx, ty + BOX_H / 2
            if tx > x:
                path = f"M {x1} {y1} C {x1 + 40} {y1}, {x2 - 40} {y2}, {x2} {y2}"
                lx, ly = (x1 + x2) / 2, (y1 + y2) / 2 - 4
            else:  # back or sideways: around below the boxes
                low = max(y, ty) + BOX_H + 18 + number * 6
                sx, ex = x + BOX_W / 2, tx + BOX_W / 2
                path = f"M {sx} {y + BOX_H} C {sx} {low}, {ex} {low}, {ex} {ty + BOX_H}"
                lx, ly = (x + tx + BOX_W) / 2, low - 2
            colour = LINK_COLOURS.get(field, "#555")
            parts.append(
                f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.4" marker-end="url(#arrow)" '
                f'data-from="{escape(step["key"])}" data-to="{escape(target)}" data-label="{escape(label)}"/>'
            )
            shown = label if len(label) <= 22 else label[:21] + "…"
            parts.append(
                f'<text x="{lx:.0f}" y="{ly:.0f}" text-anchor="middle" fill="{colour}" class="link-label">'
                f"<title>{escape(label)}</title>{escape(shown)}</text>"
            )
    for step in steps:
        x, y = corner(step["key"])
        fill = TYPE_COLOURS.get(step.get("type"), "#fff")
        stroke, weight = ("#205493", 2) if step["key"] == start else ("#888", 1)
        parts.append(
            f'<g class="step" data-key="{escape(step["key"])}"><rect x="{x}" y="{y}" width="{BOX_W}" '
            f'height="{BOX_H}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="{weight}"/>'
        )
        parts.append(f'<text x="{x + 8}" y="{y + 18}" font-weight="bold">{escape(step["key"])}</text>')
        summary = _summary(step, action_names or {})
        summary = summary if len(summary) <= 26 else summary[:25] + "…"
        parts.append(f'<text x="{x + 8}" y="{y + 34}" fill="#333">{escape(summary)}</text>')
        if counts is not None:
            c = counts.get(step["key"], {})
            line = _("in %(entered)s · ok %(succeeded)s · fail %(failed)s · wait %(waiting)s · out %(exited)s") % {
                name: c.get(name, 0) for name in ("entered", "succeeded", "failed", "waiting", "exited")
            }
            parts.append(f'<text x="{x + 8}" y="{y + 50}" fill="#205493" font-size="10">{escape(line)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
