"""Who work (a task, a conversation, a workflow's `assign` action) may be assigned to.

An account is one business with one login: the only user a caller may assign work to is
themselves (or nobody: null). Any other id, an unknown user's or another account's, is
404 `assignee_not_found`, so the answer tells nothing about which ids exist.
"""
from __future__ import annotations

from utils.errors import NotFound


def check_assignee(owner_id: str, assignee_id: str | None) -> None:
    """Allow None or the owner's own id; 404 assignee_not_found otherwise."""
    if assignee_id is None or assignee_id == owner_id:
        return
    raise NotFound("No such user to assign to: you can assign work to yourself only.",
                   code="assignee_not_found")


def check_definition_assignees(owner_id: str, definition: dict | None) -> None:
    """Check the assignee of every `assign` action of a workflow definition."""
    for action in (definition or {}).get("actions") or []:
        if isinstance(action, dict) and action.get("type") == "assign":
            check_assignee(owner_id, action.get("assignee_id"))
