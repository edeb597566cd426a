"""The business's knowledge base as the API and the CLI use it: the plan's document limit
in front of the knowledge database (automation/knowledge/database.py).
"""
from __future__ import annotations

from typing import Callable

from automation.knowledge.database import (
    count_documents,
    create_document,
    create_documents,
    delete_document,
    get_document,
    list_documents,
    search_results,
    update_document,
)
from automation.knowledge.importers import parse_file
from services.entitlements import require_capacity

__all__ = ["add_document", "add_documents", "delete_document", "get_document", "import_file",
           "list_documents", "search_results", "update_document"]


def add_document(user_id: str, data: dict) -> dict:
    """Create one document and index it; 402 plan_limit over the plan's document limit."""
    require_capacity(user_id, "knowledge_documents", count_documents(user_id))
    return create_document(user_id, data)


def add_documents(user_id: str, items: list[dict],
                  progress: Callable[[int], None] | None = None) -> list[dict]:
    """Create several documents, all or none; 402 when the plan does not allow that many."""
    require_capacity(user_id, "knowledge_documents", count_documents(user_id), adding=len(items))
    return create_documents(user_id, items, progress=progress)


def import_file(user_id: str, filename: str, data: bytes, tags: list[str] | None = None) -> dict:
    """Parse a file and store its documents (within the plan's limit): {created, items}."""
    items = [dict(item, tags=tags or []) for item in parse_file(filename, data)]
    created = add_documents(user_id, items)
    return {"created": len(created), "items": created}
