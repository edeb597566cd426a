"""Socket.IO handlers: JWT-authenticated connect, one room per user, an admin room.

Nothing imports this module but the factory (to register the handlers); services publish
through utils.realtime. A refused connection reaches the client as a `connect_error` whose
data is {"message": <human sentence>, "data": {"code": <the API's error code>}} so a frontend
can tell an expired token (refresh, then reconnect) from a revoked one (sign in again).
"""
from __future__ import annotations

import logging

from flask import request
from flask_socketio import ConnectionRefusedError, join_room

from utils.auth import authenticate_access_token
from utils.errors import ApiError
from utils.realtime import ADMIN_ROOM, socketio, user_room

log = logging.getLogger("dana.socket")


@socketio.on("connect")
def on_connect(auth=None):
    """Accept only a live access token sent as auth={"token": ...}; join the user's room."""
    token = auth.get("token") if isinstance(auth, dict) else None
    if not isinstance(token, str) or not token:
        raise ConnectionRefusedError("Send auth={'token': <access token>} to connect.",
                                     {"code": "unauthorized"})
    try:
        user, _session = authenticate_access_token(token)
    except ApiError as exc:  # invalid/expired/refresh/revoked token, deactivated account
        raise ConnectionRefusedError(exc.message, {"code": exc.code}) from None
    join_room(user_room(user.id))
    if user.is_admin:
        join_room(ADMIN_ROOM)
    log.info("socket %s connected for user %s", request.sid, user.id)
    return True


@socketio.on("disconnect")
def on_disconnect(reason=None):
    """Rooms are left automatically; only log it (with the reason when the server knows it)."""
    log.info("socket %s disconnected (%s)", request.sid, reason or "client")
