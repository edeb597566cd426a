"""/api/tasks: work items for humans."""
from __future__ import annotations

from flask import Blueprint, g

from routes.schemas import TaskIn, TaskListOut, TaskListQuery, TaskOut, TaskPatchIn
from services import tasks as svc
from utils.auth import require_auth
from utils.openapi import endpoint
from utils.store import TaskFilters

bp = Blueprint("tasks", __name__, url_prefix="/api/tasks")
TAGS = ["tasks"]


@bp.get("")
@require_auth
@endpoint(query=TaskListQuery, response=TaskListOut, tags=TAGS)
def list_tasks(query: TaskListQuery):
    """Tasks, newest first, filtered by status, priority or conversation."""
    filters = TaskFilters(status=query.status, priority=query.priority,
                          conversation_id=query.conversation_id)
    return svc.list_tasks(g.user.id, filters, query.limit, query.cursor)


@bp.post("")
@require_auth
@endpoint(body=TaskIn, response=TaskOut, status=201, tags=TAGS, errors=(404,))
def create_task(body: TaskIn):
    """Create a task."""
    return svc.create_task(g.user.id, body.model_dump()), 201


@bp.get("/<task_id>")
@require_auth
@endpoint(response=TaskOut, tags=TAGS, errors=(404,))
def get_task(task_id: str):
    """One task."""
    return svc.get_task(g.user.id, task_id)


@bp.patch("/<task_id>")
@require_auth
@endpoint(body=TaskPatchIn, response=TaskOut, tags=TAGS, errors=(404,))
def patch_task(task_id: str, body: TaskPatchIn):
    """Change a task."""
    return svc.update_task(g.user.id, task_id, body.model_dump(exclude_unset=True))


@bp.delete("/<task_id>")
@require_auth
@endpoint(status=204, tags=TAGS, errors=(404,))
def delete_task(task_id: str):
    """Delete a task."""
    svc.delete_task(g.user.id, task_id)
    return "", 204
