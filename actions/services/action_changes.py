"""Changes shown before they are made: what saving an action would change, and the journeys that use it.

The admin's confirmation page and `POST .../actions/{id}/preview/` both ask `action_change_preview`; a secret
is only ever said to have changed, never shown.
"""

import copy
from typing import Any

from actions.delivery.auth import AUTH_SPECS, AuthSpec, value_at
from actions.models import Action
from actions.selectors import IN_USE, action_usage
from actions.services.actions import EDITABLE_FIELDS, action_update_trial

__all__ = ["SECRET_CHANGE", "action_change_preview", "action_changes", "action_journeys"]

SECRET_CHANGE = {"changed": True}  # a secret's entry: that it changed, never a value
SECRET_COLUMNS = ["signing_secret", "client_key"]


def _leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict as {dotted path: value}, lists and scalars as leaves (auth settings such as inject.name)."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    found: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        found.update(_leaves(value, path) if isinstance(value, dict) and value else {path: value})
    return found


def _secret_paths(*actions: Action) -> list[str]:
    paths = {path for a in actions for path in AUTH_SPECS.get(a.auth_type, AuthSpec()).all_secrets}
    for action in actions:  # a stored secret its type no longer declares still counts
        paths.update(_leaves(action.auth_secrets or {}).keys())
    return sorted(p for p in paths if not any(p.startswith(f"{other}.") for other in paths if other != p))


def action_changes(*, before: Action, after: Action) -> dict[str, dict[str, Any]]:
    """Each field that differs as {"old", "new"}, auth settings by path ("auth.username"); secrets as changed."""
    changes: dict[str, dict[str, Any]] = {}

    def differ(name: str, old: Any, new: Any) -> None:
        if old != new:
            changes[name] = {"old": copy.deepcopy(old), "new": copy.deepcopy(new)}

    for name in EDITABLE_FIELDS:
        differ(name, getattr(before, name), getattr(after, name))
    differ("auth.type", before.auth_type, after.auth_type)
    old_config, new_config = _leaves(before.auth_config or {}), _leaves(after.auth_config or {})
    for path in sorted(old_config.keys() | new_config.keys()):
        differ(f"auth.{path}", old_config.get(path), new_config.get(path))
    for path in _secret_paths(before, after):
        if value_at(before.auth_secrets or {}, path) != value_at(after.auth_secrets or {}, path):
            changes[f"auth.{path}"] = dict(SECRET_CHANGE)
    for name in SECRET_COLUMNS:
        if getattr(before, name) != getattr(after, name):
            changes[name] = dict(SECRET_CHANGE)
    return changes


def action_journeys(*, action: Action) -> list[dict[str, Any]]:
    """The journeys that use the action, as "used in" lists them; `live` for those whose runs call it now."""
    return [{**used, "live": used["status"] in IN_USE} for used in action_usage(action=action)]


def action_change_preview(*, action: Action, data: dict[str, Any]) -> dict[str, Any]:
    """What saving `data` onto `action` would change and which journeys use it; nothing is saved.

    It raises what action_update would for the same `data` (ValidationError, Conflict), so a preview
    answers exactly as the save.
    """
    after = action_update_trial(action=action, data=data)
    return {"changes": action_changes(before=action, after=after), "journeys": action_journeys(action=action)}
