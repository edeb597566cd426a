"""/api/knowledge: the business's knowledge base (documents, search, file import)."""
from __future__ import annotations

from flask import Blueprint, g, request

from routes.schemas import (
    KnowledgeDocumentIn,
    KnowledgeDocumentOut,
    KnowledgeDocumentPatchIn,
    KnowledgeImportOut,
    KnowledgeListOut,
    KnowledgeListQuery,
    KnowledgeSearchOut,
    KnowledgeSearchQuery,
)
from services import knowledge as kb
from utils.auth import require_auth
from utils.errors import BadRequest
from utils.openapi import endpoint

bp = Blueprint("knowledge", __name__, url_prefix="/api/knowledge")
TAGS = ["knowledge"]


@bp.get("")
@require_auth
@endpoint(query=KnowledgeListQuery, response=KnowledgeListOut, tags=TAGS)
def list_documents(query: KnowledgeListQuery):
    """Documents, newest first (without content), filtered by tag or enabled."""
    return kb.list_documents(g.user.id, limit=query.limit, cursor=query.cursor, tag=query.tag,
                             enabled=query.enabled)


@bp.post("")
@require_auth
@endpoint(body=KnowledgeDocumentIn, response=KnowledgeDocumentOut, status=201, tags=TAGS,
          errors=(402,))
def create_document(body: KnowledgeDocumentIn):
    """Add a document; it is cut into passages and indexed at once (402 over the plan's limit)."""
    return kb.add_document(g.user.id, body.model_dump()), 201


@bp.get("/search")
@require_auth
@endpoint(query=KnowledgeSearchQuery, response=KnowledgeSearchOut, tags=TAGS)
def search(query: KnowledgeSearchQuery):
    """The enabled passages that best answer q, best first, with a 0..1 score."""
    return kb.search_results(g.user.id, query.q, query.limit)


@bp.post("/import")
@require_auth
@endpoint(response=KnowledgeImportOut, status=201, tags=TAGS, errors=(400, 402, 413),
          form={"file": ("file", "the file to import: .md/.markdown (one document per top "
                                 "section: `#` or `===` headings, else `##` or `---` ones), "
                                 ".txt (one document) or .csv with a question,answer header "
                                 "(one FAQ document); UTF-8, at most MAX_CONTENT_LENGTH bytes"),
                "tags": ("string", "optional comma-separated tags for every imported "
                                   "document, e.g. `faq, shipping`")})
def import_documents():
    """Import a multipart `file` (.md, .markdown, .txt, .csv with question,answer); optional
    form field `tags` (comma-separated).
    """
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise BadRequest("Upload the file as multipart/form-data in the field 'file'.",
                         code="file_required")
    tags = [t for t in (request.form.get("tags") or "").split(",") if t.strip()]
    return kb.import_file(g.user.id, upload.filename, upload.read(), tags=tags), 201


@bp.get("/<document_id>")
@require_auth
@endpoint(response=KnowledgeDocumentOut, tags=TAGS, errors=(404,))
def get_document(document_id: str):
    """One document with its content."""
    return kb.get_document(g.user.id, document_id)


@bp.patch("/<document_id>")
@require_auth
@endpoint(body=KnowledgeDocumentPatchIn, response=KnowledgeDocumentOut, tags=TAGS, errors=(404,))
def patch_document(document_id: str, body: KnowledgeDocumentPatchIn):
    """Change a document; new content (or title, or format) is re-cut and re-indexed."""
    return kb.update_document(g.user.id, document_id, body.model_dump(exclude_unset=True))


@bp.delete("/<document_id>")
@require_auth
@endpoint(status=204, tags=TAGS, errors=(404,))
def delete_document(document_id: str):
    """Delete a document and its passages."""
    kb.delete_document(g.user.id, document_id)
    return "", 204
