"""/api/auth: register, log in, refresh, change password."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, EmailStr, Field, field_validator

from routes.schemas.common import StrictModel, check_timezone
from routes.schemas.users import UserOut


class RegisterIn(StrictModel):
    """A new account: e-mail (case-insensitive, unique), password, name, IANA time zone."""

    email: EmailStr
    password: str = Field(min_length=8, max_length=128)
    name: str = Field(default="", max_length=200)
    timezone: str = "UTC"

    _tz = field_validator("timezone")(check_timezone)


class LoginIn(StrictModel):
    """E-mail and password; a wrong pair answers one generic 401."""

    email: EmailStr
    password: str = Field(min_length=1, max_length=128)


class RefreshIn(StrictModel):
    """A refresh token to spend for a new token pair (rotation)."""

    refresh_token: str = Field(min_length=1)


class PasswordChangeIn(StrictModel):
    """The current password (proof) and the new one; other sessions are revoked."""

    current_password: str = Field(min_length=1, max_length=128)
    new_password: str = Field(min_length=8, max_length=128)


class TokenPairOut(BaseModel):
    """What register, login and refresh answer: the tokens and the user."""

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    user: UserOut
