"""The Socket.IO server object and publish(); services import this, never socket_server.py.

Async mode is pinned to threading (with simple-websocket for WebSocket transport). With
REDIS_URL set, Redis is the message queue so any process (web or worker) can emit.
"""
from __future__ import annotations

import logging

from flask import Flask
from flask_socketio import SocketIO

log = logging.getLogger("dana.realtime")

socketio = SocketIO()


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


ADMIN_ROOM = "admins"


def init_realtime(app: Flask) -> None:
    """Bind Socket.IO to the app with the settings' CORS origins and message queue."""
    settings = app.config["DANA_SETTINGS"]
    socketio.init_app(
        app,
        async_mode="threading",
        # None = same origin only; never '*'.
        cors_allowed_origins=settings.CORS_ORIGINS or None,
        cors_credentials=True,
        message_queue=settings.REDIS_URL,
        logger=False,
        engineio_logger=False,
    )


def publish(user_id: str, event: str, data: dict) -> None:
    """Send an event to one user's room. Call it only after the database commit."""
    try:
        socketio.emit(event, data, to=user_room(user_id))
    except Exception:  # a notification must never break the business operation
        log.exception("could not publish %s to user %s", event, user_id)
