"""The conversation/subscription store, with a SQL and a Supabase backend (DATA_BACKEND).

Services call `get_store()`; the backend is created once per app in the factory.
"""
from __future__ import annotations

from flask import Flask, current_app

from utils.config import current_settings
from utils.store.base import (
    ConversationFilters,
    DuplicateMessage,
    NewMessage,
    Page,
    Store,
    TaskFilters,
)
from utils.store.sql import SqlStore  # also registers the store's tables on models_db.db

__all__ = ["ConversationFilters", "DuplicateMessage", "NewMessage", "Page", "Store",
           "TaskFilters", "get_store", "init_store"]


def init_store(app: Flask) -> None:
    """Create the configured backend and keep it on the app."""
    settings = current_settings(app)
    if settings.DATA_BACKEND == "supabase":
        # Optional dependency: supabase-py (~0.5 s to import) only with DATA_BACKEND=supabase.
        from utils.store.supabase_backend import SupabaseStore
        store = SupabaseStore(settings)
    else:
        store = SqlStore()
    app.extensions["dana_store"] = store


def get_store() -> Store:
    """The current app's store backend."""
    return current_app.extensions["dana_store"]
