"""Restoring an action to an earlier version kept by the audit trail (the History page's button)."""

import copy
from typing import Any

from django.db import transaction

from actions.models import Action
from actions.services.actions import EDITABLE_FIELDS, action_update

__all__ = ["action_restore"]


@transaction.atomic
def action_restore(*, action: Action, snapshot: dict[str, Any]) -> Action:
    """Put back the configuration a record kept, through `action_update` and all its rules (a live journey's
    parameters included). The trail never keeps secrets: the action's current ones stay, so an earlier auth
    type that needs other secrets is refused until they are entered."""
    data = {name: copy.deepcopy(snapshot[name]) for name in EDITABLE_FIELDS if name in snapshot}
    kind, config = snapshot.get("auth_type"), snapshot.get("auth_config")
    if kind is not None and (kind, config) != (action.auth_type, action.auth_config):
        data["auth"] = {"type": kind, **copy.deepcopy(config or {})}
    return action_update(action=action, data=data)
