"""The Socket.IO server object and publish(); events are built in utils/events.py, and no
module imports socket_server.py.

Async mode is pinned to threading (with simple-websocket for the WebSocket transport): it runs
under `python main.py` (Werkzeug) and under gunicorn's gthread worker alike, without eventlet
or gevent monkey-patching. With REDIS_URL set, Redis pub/sub is the message queue, so any
process (a web instance or an RQ worker) can emit and every web instance delivers to its own
connected clients.
"""
from __future__ import annotations

import logging

import socketio as python_socketio
from flask import Flask
from flask_socketio import SocketIO
from redis.connection import parse_url

from utils.config import current_settings

log = logging.getLogger("dana.realtime")

socketio = SocketIO()

ADMIN_ROOM = "admins"


def user_room(user_id: str) -> str:
    """The Socket.IO room of one user (every socket the user opened joins it)."""
    return f"user:{user_id}"


def channel_for(redis_url: str) -> str:
    """The pub/sub channel of this deployment's Socket.IO messages.

    Redis pub/sub ignores database numbers, so two deployments sharing one Redis on different
    databases (staging and production, or parallel test runs) would otherwise receive each
    other's events; the database number is part of the channel name.
    """
    return f"dana-socketio-db{parse_url(redis_url).get('db', 0)}"


def _client_manager(redis_url: str | None):
    """A Redis-backed manager with REDIS_URL, else None (rooms kept in this process only).

    Built here rather than through `message_queue=`: Flask-SocketIO keeps options from one
    init_app to the next, so an app without Redis built after one with Redis (tests, scripts)
    would silently inherit the old queue.
    """
    if not redis_url:
        return None
    return python_socketio.RedisManager(redis_url, channel=channel_for(redis_url),
                                        redis_options={"socket_connect_timeout": 3})


def origin_policy(allowed: list[str]):
    """The browser origins that may open a Socket.IO connection: the app's own origin (as
    for the REST API, where same-origin needs no CORS) plus CORS_ORIGINS; never any origin.

    (Engine.IO, given a list, would accept only the list and refuse the app's own origin.)
    """
    listed = set(allowed)

    def allow(origin: str | None, environ: dict) -> bool:
        if origin in listed:
            return True
        host = environ.get("HTTP_HOST", "")
        scheme = environ.get("wsgi.url_scheme", "http")
        own = {f"{scheme}://{host}"}
        if "HTTP_X_FORWARDED_PROTO" in environ or "HTTP_X_FORWARDED_HOST" in environ:
            fwd_scheme = environ.get("HTTP_X_FORWARDED_PROTO", scheme).split(",")[0].strip()
            fwd_host = environ.get("HTTP_X_FORWARDED_HOST", host).split(",")[0].strip()
            own.add(f"{fwd_scheme}://{fwd_host}")
        return origin in own

    return allow


def init_realtime(app: Flask) -> None:
    """Bind Socket.IO to the app with the settings' CORS origins and message queue."""
    settings = current_settings(app)
    socketio.server_options.pop("message_queue", None)
    socketio.init_app(
        app,
        async_mode="threading",
        cors_allowed_origins=origin_policy(settings.CORS_ORIGINS),
        cors_credentials=True,
        client_manager=_client_manager(settings.REDIS_URL),
        logger=False,
        engineio_logger=False,
    )


def publish(user_id: str, event: str, data: dict) -> None:
    """Send an event to one user's room. Call it only after the database commit.

    Through Redis when REDIS_URL is set: the user's sockets may be on any web instance.
    """
    try:
        socketio.emit(event, data, to=user_room(user_id))
    except Exception:  # a notification must never break the business operation
        log.exception("could not publish %s to user %s", event, user_id)
