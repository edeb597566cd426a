"""/api/admin: the only way an admin reads another user's data (audited)."""
from __future__ import annotations

from flask import Blueprint, g

from routes.schemas import (
    ConversationListOut,
    ConversationListQuery,
    ListQuery,
    MessageListOut,
    TaskListOut,
    TaskListQuery,
    WebhookEventDetailOut,
    WebhookEventListOut,
    WebhookEventListQuery,
    WebhookEventOut,
)
from services import conversations as conv_svc
from services import tasks as task_svc
from services import webhook_events as events_svc
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


@bp.get("/webhook-events")
@require_admin
@endpoint(query=WebhookEventListQuery, response=WebhookEventListOut, tags=TAGS)
def list_webhook_events(query: WebhookEventListQuery):
    """Admin: stored webhook deliveries, newest first (e.g. ?status=failed)."""
    return events_svc.list_events(query.status, query.platform, query.limit, query.cursor)


@bp.get("/webhook-events/<int:event_id>")
@require_admin
@endpoint(response=WebhookEventDetailOut, tags=TAGS, errors=(404,))
def get_webhook_event(event_id: int):
    """Admin: one stored delivery, with its raw body and last error."""
    event = events_svc.get_event(event_id)
    audit("admin_read", actor_id=g.user.id, what=f"webhook_event:{event_id}")
    return {**event.to_dict(), "raw_body": event.raw_body}


@bp.post("/webhook-events/<int:event_id>/retry")
@require_admin
@endpoint(response=WebhookEventOut, tags=TAGS, errors=(404, 409))
def retry_webhook_event(event_id: int):
    """Admin: run a stored delivery again now (safe: nothing is stored or sent twice)."""
    return events_svc.admin_replay(g.user.id, event_id)
