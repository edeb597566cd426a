"""/api/knowledge: documents, search, file import."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from routes.schemas.common import ListQuery, StrictModel

KnowledgeFormat = Literal["text", "markdown", "faq"]


KnowledgeTag = Annotated[str, Field(min_length=1, max_length=64)]


class KnowledgeDocumentIn(StrictModel):
    """A new knowledge document: prose (text/markdown) or an FAQ."""

    title: str = Field(min_length=1, max_length=300)
    content: str = Field(min_length=1, max_length=200_000)
    format: KnowledgeFormat = Field(
        default="text", description='"faq" content is "Q: …" / "A: …" blocks, one passage each')
    tags: list[KnowledgeTag] = Field(default_factory=list, max_length=20)
    enabled: bool = True
    source: str = Field(default="api", max_length=300)


class KnowledgeDocumentPatchIn(StrictModel):
    """Changes to a document; new content is re-cut and re-indexed."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    content: str | None = Field(default=None, min_length=1, max_length=200_000)
    format: KnowledgeFormat | None = None
    tags: list[KnowledgeTag] | None = Field(default=None, max_length=20)
    enabled: bool | None = None
    source: str | None = Field(default=None, max_length=300)


class KnowledgeDocumentSummaryOut(BaseModel):
    """A document as lists show it (without its content)."""

    id: str
    title: str
    format: KnowledgeFormat
    tags: list[str]
    enabled: bool
    source: str
    chunk_count: int
    chars: int
    created_at: datetime
    updated_at: datetime


class KnowledgeDocumentOut(KnowledgeDocumentSummaryOut):
    """A document with its content."""

    content: str


class KnowledgeListOut(BaseModel):
    """A page of documents, newest first."""

    items: list[KnowledgeDocumentSummaryOut]
    next_cursor: str | None


class KnowledgeListQuery(ListQuery):
    """Document filters: tag and enabled."""

    tag: str | None = Field(default=None, max_length=64)
    enabled: bool | None = None


class KnowledgeSearchQuery(StrictModel):
    """A search of the enabled passages, as the AI searches them."""

    q: str = Field(min_length=1, max_length=1000, description="the customer's question, any text")
    limit: int = Field(default=5, ge=1, le=20)


class KnowledgePassageOut(BaseModel):
    """A passage found by a search, with its 0..1 score."""

    chunk_id: int
    document_id: str
    title: str
    heading: str | None
    text: str
    question: str | None
    answer: str | None
    score: float = Field(ge=0, le=1, description="0..1, higher is a better match")
    rank: int


class KnowledgeSearchOut(BaseModel):
    """The passages that best answer the query, best first."""

    items: list[KnowledgePassageOut]
    next_cursor: str | None


class KnowledgeImportOut(BaseModel):
    """What an import created."""

    created: int
    items: list[KnowledgeDocumentSummaryOut]
