"""Flask-Limiter: memory storage by default, Redis when REDIS_URL is set.

Register and login are limited per client IP and per account (the e-mail in the body),
so neither many accounts from one IP nor one account from many IPs can be brute-forced.
"""
from __future__ import annotations

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from utils.config import current_settings

limiter = Limiter(key_func=get_remote_address, headers_enabled=True)


def auth_limit() -> str:
    """The configured RATE_LIMIT_AUTH, read per request from the app's settings."""
    return current_settings().RATE_LIMIT_AUTH


def account_key() -> str:
    """Rate-limit key for the account named in the JSON body or the sign-in form (lower-cased
    e-mail).
    """
    data = request.get_json(silent=True) if request.is_json else request.form
    email = data.get("email") if hasattr(data, "get") else None
    if not isinstance(email, str) or not email.strip():
        return "account:" + get_remote_address()
    return "account:" + email.strip().lower()
