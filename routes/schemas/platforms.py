"""/api/platforms: connected Facebook Pages, Instagram accounts, WhatsApp numbers."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from routes.schemas.common import Platform, StrictModel


class PlatformAccountIn(StrictModel):
    """A Page, Instagram account or WhatsApp number to connect, with its token."""

    platform: Platform
    external_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                             description="Page id, Instagram account id or WhatsApp "
                                         "phone_number_id")
    access_token: str = Field(min_length=10, max_length=4096, repr=False,
                              description="Page token (Messenger, Instagram) or system-user token "
                                          "(WhatsApp); checked with Graph before anything "
                                          "is stored")
    name: str = Field(default="", max_length=200,
                      description="empty: the Page name / Instagram username / WhatsApp verified "
                                  "name that Graph answers")


class PlatformAccountPatchIn(StrictModel):
    """A new name, or a new token (re-authorizes a refused account)."""

    name: str | None = Field(default=None, max_length=200)
    access_token: str | None = Field(default=None, min_length=10, max_length=4096, repr=False)


class PlatformAccountOut(BaseModel):
    """A connected account as the API shows it (never its token)."""

    id: str
    platform: Platform
    external_id: str
    name: str
    display_phone_number: str | None = Field(
        description="WhatsApp: the number customers see, as Graph answers it; else null")
    status: Literal["active", "needs_reauth"]
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class PlatformAccountListOut(BaseModel):
    """The caller's connected accounts."""

    items: list[PlatformAccountOut]
    next_cursor: str | None
