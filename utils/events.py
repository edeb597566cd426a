"""The Socket.IO events Dana publishes, each payload built in one place.

Every function builds its event's payload and publishes it to the owner's room through
utils.realtime.publish (call them after the database commit). The events and their payloads
are part of the public contract (README, "Running at scale"): new_message,
message_status, conversation_updated, task_created, task_updated, integration_error, and
the dashboard `notification` of the workflows' notify action.
"""
from __future__ import annotations

from datetime import datetime

from utils.realtime import publish

NEW_MESSAGE = "new_message"
MESSAGE_STATUS = "message_status"
CONVERSATION_UPDATED = "conversation_updated"
TASK_CREATED = "task_created"
TASK_UPDATED = "task_updated"
INTEGRATION_ERROR = "integration_error"
NOTIFICATION = "notification"


def message_status_payload(message: dict) -> dict:
    """What `message_status` says about one stored message: its delivery state and metadata."""
    return {"conversation_id": message["conversation_id"], "message_id": message["id"],
            "status": message["status"], "error": message["error"],
            "platform_message_id": message.get("platform_message_id"),
            "metadata": message.get("metadata") or {}}


def new_message(owner_id: str, conversation_id: str, message: dict) -> None:
    """A message was stored in a conversation (inbound, outbound or a note)."""
    publish(owner_id, NEW_MESSAGE, {"conversation_id": conversation_id, "message": message})


def message_status(owner_id: str, message: dict) -> None:
    """A stored message changed: delivery status, error, reactions, unsend or edit."""
    publish(owner_id, MESSAGE_STATUS, message_status_payload(message))


def status_watermark(owner_id: str, conversation_id: str, status: str,
                     watermark: datetime) -> None:
    """Every outbound message of a conversation up to `watermark` reached `status`."""
    publish(owner_id, MESSAGE_STATUS, {"conversation_id": conversation_id, "status": status,
                                       "watermark": watermark.isoformat()})


def conversation_updated(owner_id: str, conversation: dict) -> None:
    """A conversation's state changed (status, assignee, labels, AI paused, counters)."""
    publish(owner_id, CONVERSATION_UPDATED, conversation)


def task_created(owner_id: str, task: dict) -> None:
    """A task for a human was opened."""
    publish(owner_id, TASK_CREATED, task)


def task_updated(owner_id: str, task: dict) -> None:
    """A task changed."""
    publish(owner_id, TASK_UPDATED, task)


def integration_error(owner_id: str, detail: dict) -> None:
    """A connected account or integration stopped working and needs the owner's attention."""
    publish(owner_id, INTEGRATION_ERROR, detail)


def notification(owner_id: str, payload: dict) -> None:
    """A workflow's `notify` action addressed to the dashboard."""
    publish(owner_id, NOTIFICATION, payload)
