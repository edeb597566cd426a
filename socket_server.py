"""Socket.IO handlers: JWT-authenticated connect, one room per user, an admin room."""
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
        raise ConnectionRefusedError("unauthorized: send auth={'token': <access token>}")
    try:
        user, _session = authenticate_access_token(token)
    except ApiError as exc:
        raise ConnectionRefusedError(f"{exc.code}: {exc.message}") from None
    join_room(user_room(user.id))
    if user.is_admin:
        join_room(ADMIN_ROOM)
    log.info("socket %s connected for user %s", request.sid, user.id)
    return True
