"""The businesses' own knowledge: documents, passages, full-text search, file import.

`search(user_id, query, limit)` is the one entry point the AI uses; the rest serves the
/api/knowledge endpoints and the `flask knowledge` CLI through services/knowledge.py, which
also applies the plan's document limit.
"""
from automation.knowledge.database import (
                                           Passage,
                                           count_documents,
                                           create_document,
                                           create_documents,
                                           delete_document,
                                           get_document,
                                           list_documents,
                                           search,
                                           search_results,
                                           update_document,
)
from automation.knowledge.importers import parse_file

__all__ = ["Passage", "count_documents", "create_document",
           "create_documents", "delete_document", "get_document",
           "list_documents", "parse_file", "search", "search_results", "update_document"]
