"""Tasks for humans (follow-ups, handoffs), owner-scoped, with live notifications.

Creating one is automation/core/tasks.py (the workflows and the hand-off open tasks too).
"""
from __future__ import annotations

from automation.core.assignees import check_assignee
from automation.core.tasks import check_conversation, create_task
from utils import events
from utils.errors import NotFound
from utils.store import TaskFilters, get_store

__all__ = ["create_task", "delete_task", "get_task", "list_tasks", "update_task"]


def list_tasks(owner_id: str, filters: TaskFilters, limit: int, cursor: str | None) -> dict:
    """The owner's tasks, newest first, filtered."""
    return get_store().list_tasks(owner_id, filters, limit, cursor).to_dict()


def get_task(owner_id: str, task_id: str) -> dict:
    """One of the owner's tasks, or 404."""
    task = get_store().get_task(owner_id, task_id)
    if task is None:
        raise NotFound("No such task.", code="task_not_found")
    return task


def update_task(owner_id: str, task_id: str, changes: dict) -> dict:
    """Change a task; emits task_updated."""
    check_conversation(owner_id, changes.get("conversation_id"))
    check_assignee(owner_id, changes.get("assignee_id"))
    task = get_store().update_task(owner_id, task_id, changes)
    if task is None:
        raise NotFound("No such task.", code="task_not_found")
    events.task_updated(owner_id, task)
    return task


def delete_task(owner_id: str, task_id: str) -> None:
    """Delete one of the owner's tasks, or 404."""
    if not get_store().delete_task(owner_id, task_id):
        raise NotFound("No such task.", code="task_not_found")
