"""/api/tasks: tasks for humans."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from routes.schemas.common import ListQuery, StrictModel

TaskStatus = Literal["open", "in_progress", "done"]


TaskPriority = Literal["low", "normal", "high"]


class TaskIn(StrictModel):
    """A new task for a human, optionally on a conversation."""

    title: str = Field(min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10000)
    conversation_id: str | None = Field(default=None, max_length=36)
    status: TaskStatus = "open"
    priority: TaskPriority = "normal"
    due_at: datetime | None = None
    assignee_id: str | None = Field(default=None, max_length=36)


class TaskPatchIn(StrictModel):
    """Changes to a task."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10000)
    conversation_id: str | None = Field(default=None, max_length=36)
    status: TaskStatus | None = None
    priority: TaskPriority | None = None
    due_at: datetime | None = None
    assignee_id: str | None = Field(default=None, max_length=36)


class TaskOut(BaseModel):
    """A task for a human."""

    id: str
    title: str
    description: str | None
    conversation_id: str | None
    status: TaskStatus
    priority: TaskPriority
    due_at: datetime | None
    assignee_id: str | None
    created_at: datetime
    updated_at: datetime


class TaskListOut(BaseModel):
    """A page of tasks, newest first."""

    items: list[TaskOut]
    next_cursor: str | None


class TaskListQuery(ListQuery):
    """Task filters: status, priority, conversation."""

    status: TaskStatus | None = None
    priority: TaskPriority | None = None
    conversation_id: str | None = Field(default=None, max_length=36)
