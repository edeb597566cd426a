"""/api/users: the account itself and the admin's user list."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from routes.schemas.common import ListQuery, StrictModel, check_timezone


class UserOut(BaseModel):
    """An account as the API shows it (never the password hash)."""

    id: str
    email: str
    name: str
    role: Literal["user", "admin"]
    is_active: bool
    timezone: str
    created_at: datetime
    updated_at: datetime


class MeUpdateIn(StrictModel):
    """Changes to the caller's own name and time zone."""

    name: str | None = Field(default=None, max_length=200)
    timezone: str | None = None

    _tz = field_validator("timezone")(check_timezone)


class AdminUserUpdateIn(StrictModel):
    """An admin's change of an account's role, state or name."""

    role: Literal["user", "admin"] | None = None
    is_active: bool | None = None
    name: str | None = Field(default=None, max_length=200)


class UserListQuery(ListQuery):
    """Admin user list filter: e-mail substring."""

    q: str | None = Field(default=None, max_length=320, description="search by e-mail")


class UserListOut(BaseModel):
    """A page of accounts, oldest first."""

    items: list[UserOut]
    next_cursor: str | None
