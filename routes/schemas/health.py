"""GET /health."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class HealthOut(BaseModel):
    """Liveness and database state."""

    status: Literal["ok", "degraded"]
    database: str
    version: str
