"""Pydantic request/response models; the OpenAPI spec is generated from these."""
from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator


class StrictModel(BaseModel):
    """Request bodies refuse unknown fields so typos are reported, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _check_timezone(value: str | None) -> str | None:
    if value is not None and value not in available_timezones():
        raise ValueError("unknown IANA time zone")
    return value


class RegisterIn(StrictModel):
    email: EmailStr
    password: str = Field(min_length=8, max_length=128)
    name: str = Field(default="", max_length=200)
    timezone: str = "UTC"

    _tz = field_validator("timezone")(_check_timezone)


class LoginIn(StrictModel):
    email: EmailStr
    password: str = Field(min_length=1, max_length=128)


class RefreshIn(StrictModel):
    refresh_token: str = Field(min_length=1)


class LogoutIn(StrictModel):
    refresh_token: str | None = None


class PasswordChangeIn(StrictModel):
    current_password: str = Field(min_length=1, max_length=128)
    new_password: str = Field(min_length=8, max_length=128)


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    role: Literal["user", "admin"]
    is_active: bool
    timezone: str
    created_at: datetime
    updated_at: datetime


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    user: UserOut


class MeUpdateIn(StrictModel):
    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = None

    _tz = field_validator("timezone")(_check_timezone)


class AdminUserUpdateIn(StrictModel):
    role: Literal["user", "admin"] | None = None
    is_active: bool | None = None
    name: str | None = Field(default=None, max_length=200)


class ListQuery(StrictModel):
    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = None


class UserListQuery(ListQuery):
    q: str | None = Field(default=None, max_length=320, description="search by e-mail")


class UserListOut(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class OkOut(BaseModel):
    status: str


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    version: str
