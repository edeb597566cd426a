"""The baseline for bench/auth.py: bare Flask endpoints of the same shape as Dana's auth.

POST /login parses {email, password}, checks a Werkzeug password hash (werkzeug.security
defaults, the same cost as Dana's User.set_password) against one in-memory user and answers
a token pair of the same shape; GET /me verifies an HS256 bearer JWT with PyJWT and answers
the user. No database, no extensions, no middleware: what is left is the unavoidable cost.

Run under gunicorn as `bench.baseline_app:app` (JWT_SECRET_KEY from the environment).
"""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone

import jwt
from flask import Flask, jsonify, request
from werkzeug.security import check_password_hash, generate_password_hash

EMAIL = "bench@example.com"
PASSWORD = "correct horse battery staple"
ACCESS_TTL = 15 * 60

# Fixed values: every gunicorn worker imports this module and must agree on the user.
_CREATED = "2025-01-01T00:00:00+00:00"
USER = {
    "id": "6f1c2a8e-0b1d-4c55-9d3e-2f7a9b8c1d00",
    "email": EMAIL,
    "name": "Bench User",
    "role": "user",
    "is_active": True,
    "timezone": "UTC",
    "created_at": _CREATED,
    "updated_at": _CREATED,
}
PASSWORD_HASH = generate_password_hash(PASSWORD)
SECRET = os.environ["JWT_SECRET_KEY"]  # shared by all workers

app = Flask(__name__)
app.json.sort_keys = False


def _error(status: int, code: str, message: str):
    return jsonify({"error": {"code": code, "message": message}}), status


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/login")
def login():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _error(400, "invalid_json", "The body is not valid JSON.")
    email, password = data.get("email"), data.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        return _error(400, "validation_error", "email and password are required.")
    ok = check_password_hash(PASSWORD_HASH, password) and email.strip().lower() == EMAIL
    if not ok:
        return _error(401, "invalid_credentials", "The e-mail or password is wrong.")
    now = datetime.now(timezone.utc)
    sid = str(uuid.uuid4())
    access = jwt.encode(
        {
            "sub": USER["id"],
            "sid": sid,
            "jti": str(uuid.uuid4()),
            "type": "access",
            "role": USER["role"],
            "iat": now,
            "exp": now + timedelta(seconds=ACCESS_TTL),
        },
        SECRET,
        algorithm="HS256",
    )
    refresh = jwt.encode(
        {
            "sub": USER["id"],
            "sid": sid,
            "jti": str(uuid.uuid4()),
            "type": "refresh",
            "iat": now,
            "exp": now + timedelta(days=30),
        },
        SECRET,
        algorithm="HS256",
    )
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": ACCESS_TTL,
        "user": USER,
    }


@app.get("/me")
def me():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _error(401, "unauthorized", "Send an access token.")
    try:
        claims = jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            options={"require": ["exp", "iat", "sub", "jti", "type", "sid"]},
        )
    except jwt.PyJWTError:
        return _error(401, "invalid_token", "The token is invalid.")
    if claims.get("type") != "access" or claims.get("sub") != USER["id"]:
        return _error(401, "invalid_token", "The token is invalid.")
    return USER
