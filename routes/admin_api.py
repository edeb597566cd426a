"""/api/admin: the only way an admin reads another user's data (audited)."""
from __future__ import annotations

from flask import Blueprint, g

from routes.schemas import (ConversationListOut, ConversationListQuery, ListQuery, MessageListOut,
                            TaskListOut, TaskListQuery)
from services import conversations as conv_svc
from services import tasks as task_svc
from services.users import get_user
from utils.audit import audit
from utils.auth import require_admin
from utils.openapi import endpoint
from utils.store import ConversationFilters, TaskFilters

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin")
TAGS = ["admin"]


def _target(user_id: str, what: str) -> None:
    get_user(user_id)
    audit("admin_read", user_id=user_id, actor_id=g.user.id, what=what)


@bp.get("/users/<user_id>/conversations")
@require_admin
@endpoint(query=ConversationListQuery, response=ConversationListOut, tags=TAGS, errors=(404,))
def user_conversations(user_id: str, query: ConversationListQuery):
    """Admin: a user's conversations."""
    _target(user_id, "conversations")
    filters = ConversationFilters(status=query.status, platform=query.platform, label=query.label,
                                  assignee_id=query.assignee_id, q=query.q)
    return conv_svc.list_conversations(user_id, filters, query.limit, query.cursor)


@bp.get("/users/<user_id>/conversations/<conversation_id>/messages")
@require_admin
@endpoint(query=ListQuery, response=MessageListOut, tags=TAGS, errors=(404,))
def user_messages(user_id: str, conversation_id: str, query: ListQuery):
    """Admin: messages of a user's conversation."""
    _target(user_id, f"messages:{conversation_id}")
    return conv_svc.list_messages(user_id, conversation_id, query.limit, query.cursor)


@bp.get("/users/<user_id>/tasks")
@require_admin
@endpoint(query=TaskListQuery, response=TaskListOut, tags=TAGS, errors=(404,))
def user_tasks(user_id: str, query: TaskListQuery):
    """Admin: a user's tasks."""
    _target(user_id, "tasks")
    filters = TaskFilters(status=query.status, priority=query.priority,
                          conversation_id=query.conversation_id)
    return task_svc.list_tasks(user_id, filters, query.limit, query.cursor)
