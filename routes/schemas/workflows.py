"""/api/workflows: automation rules and their runs."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from automation.core.definitions import WorkflowDefinition
from routes.schemas.common import ListQuery, StrictModel


class WorkflowIn(StrictModel):
    """A new workflow: trigger, conditions and actions (validated), and its position."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    enabled: bool = True
    position: int = Field(default=100, ge=0, le=100000, description="lower runs first")
    definition: WorkflowDefinition


class WorkflowPatchIn(StrictModel):
    """Changes to a workflow."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    enabled: bool | None = None
    position: int | None = Field(default=None, ge=0, le=100000)
    definition: WorkflowDefinition | None = None


class WorkflowOut(BaseModel):
    """A workflow as stored."""

    id: str
    name: str
    description: str
    enabled: bool
    position: int
    definition: dict
    created_at: datetime
    updated_at: datetime


class WorkflowListOut(BaseModel):
    """The caller's workflows in the order they run."""

    items: list[WorkflowOut]
    next_cursor: str | None


class WorkflowRunOut(BaseModel):
    """One recorded run: what matched and what each action did."""

    id: str
    workflow_id: str | None
    trigger: str
    conversation_id: str | None
    message_id: str | None
    matched: bool
    conditions: list[dict]
    actions: list[dict]
    status: Literal["completed", "failed", "not_matched"]
    error: str | None
    duration_ms: int
    started_at: datetime


class WorkflowRunListOut(BaseModel):
    """A page of runs, newest first."""

    items: list[WorkflowRunOut]
    next_cursor: str | None


class WorkflowRunQuery(ListQuery):
    """Run filters: workflow, conversation, matched."""

    workflow_id: str | None = Field(default=None, max_length=36)
    conversation_id: str | None = Field(default=None, max_length=36)
    matched: bool | None = None
