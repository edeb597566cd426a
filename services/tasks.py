"""Tasks for humans (follow-ups, handoffs), owner-scoped, with live notifications."""
from __future__ import annotations

from services.assignees import check_assignee
from utils.errors import NotFound
from utils.realtime import publish
from utils.store import TaskFilters, get_store


def _check_conversation(owner_id: str, conversation_id: str | None) -> None:
    if conversation_id and get_store().get_conversation(owner_id, conversation_id) is None:
        raise NotFound("No such conversation.", code="conversation_not_found")


def create_task(owner_id: str, data: dict) -> dict:
    """Create a task (optionally on one of the owner's conversations); emits task_created."""
    _check_conversation(owner_id, data.get("conversation_id"))
    check_assignee(owner_id, data.get("assignee_id"))
    task = get_store().create_task(owner_id, data)
    publish(owner_id, "task_created", task)
    return task


def list_tasks(owner_id: str, filters: TaskFilters, limit: int, cursor: str | None) -> dict:
    return get_store().list_tasks(owner_id, filters, limit, cursor).to_dict()


def get_task(owner_id: str, task_id: str) -> dict:
    task = get_store().get_task(owner_id, task_id)
    if task is None:
        raise NotFound("No such task.", code="task_not_found")
    return task


def update_task(owner_id: str, task_id: str, changes: dict) -> dict:
    """Change a task; emits task_updated."""
    _check_conversation(owner_id, changes.get("conversation_id"))
    check_assignee(owner_id, changes.get("assignee_id"))
    task = get_store().update_task(owner_id, task_id, changes)
    if task is None:
        raise NotFound("No such task.", code="task_not_found")
    publish(owner_id, "task_updated", task)
    return task


def delete_task(owner_id: str, task_id: str) -> None:
    if not get_store().delete_task(owner_id, task_id):
        raise NotFound("No such task.", code="task_not_found")
