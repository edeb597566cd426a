"""/api/integrations: Slack, e-mail, CRM, helpdesk, analytics and database connections."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from routes.schemas.common import StrictModel


class IntegrationIn(StrictModel):
    """Configure (or reconfigure) one integration; checked with the service before stored."""

    type: str = Field(min_length=1, max_length=32,
                      description="slack, email, hubspot, salesforce, zendesk, "
                                  "google_analytics, mysql, postgresql, mongodb, sqlserver")
    config: dict = Field(description="the type's fields (see /api/integrations/types); on an "
                                     "update, a secret left out or sent back masked is kept")
    enabled: bool = True


class IntegrationOut(BaseModel):
    """An integration as the API shows it (secrets masked)."""

    type: str
    status: Literal["active", "pending", "error"]
    enabled: bool
    config: dict = Field(description="secret fields only as '••••' + their last 4 characters")
    last_checked_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class IntegrationListOut(BaseModel):
    """The caller's integrations."""

    items: list[IntegrationOut]
    next_cursor: str | None


class IntegrationTypeOut(BaseModel):
    """One kind of integration in the catalogue: its config schema and whether the plan has it."""

    type: str
    name: str
    category: Literal["messaging", "email", "crm", "helpdesk", "analytics", "database"]
    available: bool = Field(description="false: specified, not built yet (cannot be configured)")
    in_plan: bool = Field(description="whether the caller's plan includes this integration")
    operations: list[str]
    secret_fields: list[str]
    config_schema: dict = Field(description="JSON Schema of `config`")


class IntegrationTypeListOut(BaseModel):
    """The catalogue of integration types."""

    items: list[IntegrationTypeOut]
    next_cursor: str | None


class IntegrationTestOut(BaseModel):
    """The result of checking an integration with one real call."""

    ok: bool
    detail: str
    checked_at: datetime


class LookupIn(StrictModel):
    """Run one named lookup of a database integration (the dashboard's "try it")."""

    query: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$",
                       description="the name of a query in the integration's `queries`")
    params: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, max_length=20,
        description="a value for each :param (SQL) or $param (MongoDB) of the query; values "
                    "are always bound, never pasted into the query")


class LookupOut(BaseModel):
    """What the lookup read: the columns, up to the integration's max_rows rows."""

    query: str
    columns: list[str]
    rows: list[dict]
    row_count: int
    truncated: bool = Field(description="true when more rows matched than max_rows")
