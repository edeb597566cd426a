"""Opening a task for a human: the one write that the workflows, the hand-off and the tasks
API share (the rest of the tasks API is services/tasks.py).
"""
from __future__ import annotations

from automation.core.assignees import check_assignee
from utils import events
from utils.errors import NotFound
from utils.store import get_store


def check_conversation(owner_id: str, conversation_id: str | None) -> None:
    """404 unless the conversation (when one is named) is the owner's."""
    if conversation_id and get_store().get_conversation(owner_id, conversation_id) is None:
        raise NotFound("No such conversation.", code="conversation_not_found")


def create_task(owner_id: str, data: dict, *, conversation: dict | None = None) -> dict:
    """Create a task (optionally on one of the owner's conversations); emits task_created.

    `conversation`: the task's conversation as the caller read it during this run (so the
    owner's): not read again to check it.
    """
    if conversation is None or conversation["id"] != data.get("conversation_id"):
        check_conversation(owner_id, data.get("conversation_id"))
    check_assignee(owner_id, data.get("assignee_id"))
    task = get_store().create_task(owner_id, data)
    events.task_created(owner_id, task)
    return task
