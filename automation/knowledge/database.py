"""Knowledge documents, their passages, and search — every query scoped to one user.

Search runs in two stages. The database's own full-text engine (SQLite FTS5, or PostgreSQL
tsvector with a GIN index, chosen by `db.engine.dialect.name`) finds candidate passages with
an OR of the query's content words, so partial matches are found too. Python then reranks
the candidates into a score in 0..1: the IDF-weighted share of the query's content words
that the passage contains. That score means the same on both databases (the engines' own
ranks do not), so one confidence threshold serves SQLite and PostgreSQL alike.
"""
from __future__ import annotations

import bisect
import heapq
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Callable, NamedTuple

import numpy as np
from sqlalchemy import delete, exists, func, select, text
from sqlalchemy.dialects.postgresql import JSONB

from automation.knowledge import semantic
from automation.knowledge.chunking import chunk_document
from automation.knowledge.text import (
    TermMatcher,
    alternatives,
    any_matches,
    content_terms,
    idf,
    index_text,
    rewrite_phrases,
    snowball_stems,
    stem,
    stem_index,
    stems_match,
    typo_fix,
)
from models_db import KnowledgeChunk, KnowledgeDocument, db, utcnow
from utils.db import execute, memoized
from utils.errors import NotFound
from utils.pagination import paginate
from utils.store.serialize import iso

# How many passages the FTS stage hands to the reranker at most.
CANDIDATES = 200
# Field weight: how much a match in the title, heading or FAQ question adds to a passage's
# rank over the same match in its body (the score itself stays the body coverage, 0..1).
FOCUS_WEIGHT = 0.35
# The passage's own heading or FAQ question (unlike the document title, shared by all of a
# document's passages) adds this much more, so the right section of a document wins.
SECTION_WEIGHT = 0.1
# Semantic rerank: how much the larger cosine between the question and a passage or its FAQ
# question adds to the passage's rank. On the dev split 0.2 puts the right passage first for
# 108 of 119 answerable questions instead of 104 (0.1: 107; 0.3 and 0.5: 108); letting the
# cosine alone add candidates that share no word with the question added none.
SEMANTIC_WEIGHT = 0.2
# The most candidates of the full-text path embedded per query (see _search_fts).
EMBEDDED_CANDIDATES = 20
# Knowledge bases kept in memory as an index, per process (least recently used dropped),
# and the largest one kept: beyond it the database's full-text engine searches.
INDEX_CACHE = 32
MAX_INDEXED_CHUNKS = 5000
# The full-text table of migration 0005 (raw DDL, outside the ORM metadata: every FTS object's
# name starts with it, which models_db.include_object leaves out of Alembic's comparisons).
FTS_TABLE = "knowledge_chunks_fts"


@dataclass
class Passage:
    """One search hit: a passage and how well it answers the query (score 0..1, rank 1..n)."""

    chunk_id: int
    document_id: str
    title: str
    text: str
    question: str | None
    answer: str | None
    score: float
    rank: int
    heading: str | None = None
    # Evidence for the answer decision (automation.knowledge.decision), not shown by the API:
    # coverage of the query by the title/heading/FAQ question, the share of the FAQ
    # question's words the customer used, the largest weight share of a query word this
    # passage lacks, the share of the query's weight the knowledge base lacks altogether, and
    # how many content words the query had; the cosine of the question's and the passage's
    # embeddings (automation.knowledge.semantic).
    focus: float = 0.0
    qsim: float = 0.0
    missing: float = 0.0
    unknown: float = 0.0
    n_terms: int = 0
    sem: float = 0.0

    def to_dict(self) -> dict:
        """The passage as the search API shows it."""
        out = asdict(self)
        for key in ("focus", "qsim", "missing", "unknown", "n_terms", "sem"):
            out.pop(key)
        return out


# ------------------------------------------------------------------------- documents

def document_dict(doc: KnowledgeDocument, with_content: bool = True) -> dict:
    """A document as the API shows it (lists leave the content out)."""
    out = {"id": doc.id, "title": doc.title, "format": doc.format, "tags": list(doc.tags or []),
           "enabled": doc.enabled, "source": doc.source, "chunk_count": doc.chunk_count,
           "chars": len(doc.content), "created_at": iso(doc.created_at),
           "updated_at": iso(doc.updated_at)}
    if with_content:
        out["content"] = doc.content
    return out


def normalize_tags(tags: list[str] | None) -> list[str]:
    """Trimmed, non-empty, de-duplicated tags in their given order."""
    out: list[str] = []
    for tag in tags or []:
        tag = str(tag).strip()[:64]
        if tag and tag not in out:
            out.append(tag)
    return out


def _document(user_id: str, document_id: str) -> KnowledgeDocument:
    doc = db.session.scalar(select(KnowledgeDocument).where(
        KnowledgeDocument.id == document_id, KnowledgeDocument.user_id == user_id))
    if doc is None:
        raise NotFound("No such knowledge document.", code="document_not_found")
    return doc


def count_documents(user_id: str) -> int:
    """How many documents the user has (what the plan's knowledge_documents limit counts)."""
    return db.session.scalar(select(func.count()).select_from(KnowledgeDocument)
                             .where(KnowledgeDocument.user_id == user_id)) or 0


def _rechunk(doc: KnowledgeDocument) -> None:
    """Replace a document's passages with fresh ones cut from its current content.

    The FTS index follows by itself (triggers on knowledge_chunks, on both databases).
    """
    db.session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id == doc.id))
    drafts = chunk_document(doc.content, doc.format)
    db.session.add_all([
        KnowledgeChunk(document_id=doc.id, user_id=doc.user_id, position=d.position,
                       heading=(d.heading or None) and d.heading[:500], text=d.text,
                       question=d.question, answer=d.answer,
                       search_text=index_text(doc.title, d.heading, d.text))
        for d in drafts])
    doc.chunk_count = len(drafts)


def _new_document(user_id: str, data: dict) -> KnowledgeDocument:
    doc = KnowledgeDocument(
        user_id=user_id, title=data["title"].strip()[:300], content=data["content"],
        format=data.get("format") or "text", tags=normalize_tags(data.get("tags")),
        enabled=data.get("enabled", True), source=(data.get("source") or "api")[:300])
    db.session.add(doc)
    db.session.flush()
    _rechunk(doc)
    return doc


def create_documents(user_id: str, items: list[dict],
                     progress: Callable[[int], None] | None = None) -> list[dict]:
    """Create several documents at once, all or none, and index their passages.

    Each item: title, content, and optionally format, tags, enabled, source. The plan's
    document limit is checked by the caller (services/knowledge.py), above this layer.
    """
    docs = []
    try:
        for item in items:
            docs.append(_new_document(user_id, item))
            if progress:
                progress(1)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return [document_dict(d, with_content=False) for d in docs]


def create_document(user_id: str, data: dict) -> dict:
    """Create one document and index its passages (the caller checks the plan's limit)."""
    doc = _new_document(user_id, data)
    db.session.commit()
    return document_dict(doc)


def get_document(user_id: str, document_id: str) -> dict:
    """One of the user's documents with its content; 404 for anyone else's."""
    return document_dict(_document(user_id, document_id))


def _tag_filter(tag: str):
    """Documents whose JSON tag list contains `tag` (dialect-specific)."""
    if db.engine.dialect.name == "postgresql":
        return KnowledgeDocument.tags.cast(JSONB).contains([tag])
    each = func.json_each(KnowledgeDocument.tags).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == tag))


def list_documents(user_id: str, *, limit: int = 50, cursor: str | None = None,
                   tag: str | None = None, enabled: bool | None = None) -> dict:
    """The user's documents, newest first, as {items, next_cursor} (keyset pagination)."""
    stmt = select(KnowledgeDocument).where(KnowledgeDocument.user_id == user_id)
    if tag:
        stmt = stmt.where(_tag_filter(tag))
    if enabled is not None:
        stmt = stmt.where(KnowledgeDocument.enabled == enabled)
    return paginate(stmt, KnowledgeDocument.created_at, KnowledgeDocument.id, cursor, limit,
                    lambda d: document_dict(d, with_content=False)).to_dict()


def update_document(user_id: str, document_id: str, changes: dict) -> dict:
    """Change a document; a new title, content or format re-cuts and re-indexes it."""
    doc = _document(user_id, document_id)
    rechunk = False
    for key in ("title", "content", "format"):
        if changes.get(key) is not None and changes[key] != getattr(doc, key):
            setattr(doc, key, changes[key].strip()[:300] if key == "title" else changes[key])
            rechunk = True
    if changes.get("tags") is not None:
        doc.tags = normalize_tags(changes["tags"])
    if changes.get("enabled") is not None:
        doc.enabled = changes["enabled"]
    if changes.get("source") is not None:
        doc.source = changes["source"][:300]
    if rechunk:
        _rechunk(doc)
    doc.updated_at = utcnow()
    db.session.commit()
    return document_dict(doc)


def delete_document(user_id: str, document_id: str) -> None:
    """Delete a document and its passages (and so their index entries)."""
    doc = _document(user_id, document_id)
    db.session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id == doc.id))
    db.session.delete(doc)
    db.session.commit()


# ---------------------------------------------------------------------------- search

_COLUMNS = ("c.id, c.document_id, c.heading, c.text, c.question, c.answer, c.search_text, "
            "d.title")
_SCOPE = "c.user_id = :user_id AND d.user_id = :user_id AND d.enabled = :enabled"


class _SqliteFts:
    """FTS5 over knowledge_chunks.search_text; `"word" OR "stem"*` queries."""

    @staticmethod
    def query(terms: list[str]) -> str:
        parts: list[str] = []
        for t in terms:
            parts.append(f'"{t}"')
            s = stem(t)
            if len(s) >= 3:
                parts.append(f'"{s}"*')
        # Terms are folded letters and digits only (text.tokens), so a quoted term can hold
        # no quote, operator or column filter: any user text gives a valid FTS5 query.
        return " OR ".join(dict.fromkeys(parts))

    @staticmethod
    def candidates(q: str, user_id: str, limit: int):
        # The MATCH runs once, in a materialised CTE: joined directly, SQLite may walk the
        # user's chunks and re-run the MATCH for each of them (seconds at 500 documents).
        sql = (f"WITH m AS MATERIALIZED (SELECT rowid AS id, bm25({FTS_TABLE}) AS r "
               f"FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :q) "
               f"SELECT {_COLUMNS} FROM m JOIN knowledge_chunks c ON c.id = m.id "
               "JOIN knowledge_documents d ON d.id = c.document_id "
               f"WHERE {_SCOPE} ORDER BY m.r, c.id LIMIT :limit")
        return db.session.execute(text(sql), {"q": q, "user_id": user_id, "enabled": True,
                                              "limit": limit}).all()

    @staticmethod
    def count(q: str, user_id: str) -> int:
        sql = (f"WITH m AS MATERIALIZED (SELECT rowid AS id FROM {FTS_TABLE} "
               f"WHERE {FTS_TABLE} MATCH :q) "
               "SELECT count(*) FROM m JOIN knowledge_chunks c ON c.id = m.id "
               "JOIN knowledge_documents d ON d.id = c.document_id "
               f"WHERE {_SCOPE}")
        return db.session.execute(text(sql), {"q": q, "user_id": user_id,
                                              "enabled": True}).scalar_one()


class _PostgresFts:
    """knowledge_chunks_fts.tsv (GIN) @@ to_tsquery('simple', 'word' | 'stem':*)."""

    JOIN = (f"FROM {FTS_TABLE} f JOIN knowledge_chunks c ON c.id = f.chunk_id "
            "JOIN knowledge_documents d ON d.id = c.document_id ")

    @staticmethod
    def query(terms: list[str]) -> str:
        parts: list[str] = []
        for t in terms:
            parts.append(f"'{t}'")
            s = stem(t)
            if len(s) >= 3:
                parts.append(f"'{s}':*")
        # Terms are folded letters and digits only: no quote or tsquery operator can get in.
        return " | ".join(dict.fromkeys(parts))

    @classmethod
    def candidates(cls, q: str, user_id: str, limit: int):
        sql = (f"SELECT {_COLUMNS} {cls.JOIN}"
               f"WHERE f.tsv @@ to_tsquery('simple', :q) AND {_SCOPE} "
               "ORDER BY ts_rank(f.tsv, to_tsquery('simple', :q)) DESC, c.id LIMIT :limit")
        return db.session.execute(text(sql), {"q": q, "user_id": user_id, "enabled": True,
                                              "limit": limit}).all()

    @classmethod
    def count(cls, q: str, user_id: str) -> int:
        sql = f"SELECT count(*) {cls.JOIN}WHERE f.tsv @@ to_tsquery('simple', :q) AND {_SCOPE}"
        return db.session.execute(text(sql), {"q": q, "user_id": user_id,
                                              "enabled": True}).scalar_one()


_ENGINES = {"sqlite": _SqliteFts, "postgresql": _PostgresFts}


def _engine():
    name = db.engine.dialect.name
    try:
        return _ENGINES[name]
    except KeyError:
        raise RuntimeError(f"knowledge search does not support the {name} database") from None


class _Row(NamedTuple):
    """A passage as the reranker needs it (the columns of _COLUMNS)."""

    id: int
    document_id: str
    heading: str | None
    text: str
    question: str | None
    answer: str | None
    search_text: str
    title: str


class _Postings:
    """An inverted index over token streams: word → passages, Snowball stem → passages,
    and the sorted vocabulary for the prefix rule (text.term_matches, as sets).
    """

    def __init__(self, streams: list[str]):
        """Index one token stream (an index_text() string) per passage."""
        self.words: dict[str, set[int]] = {}
        self.stems: dict[str, set[int]] = {}
        for i, stream in enumerate(streams):
            for word in set(stream.split()):
                self.words.setdefault(word, set()).add(i)
        for word, where in self.words.items():
            for s in snowball_stems(word):
                self.stems.setdefault(s, set()).update(where)
        self.sorted = sorted(self.words)

    def matching(self, alts: list[str]) -> set[int]:
        """The passages that contain a term or one of its synonyms (term_matches' rule:
        a 4+ letter stem matches any word it begins; a shorter one the term itself or a word
        of the same stem) or a word of the same Snowball stem.
        """
        out: set[int] = set()
        for a in alts:
            s = stem(a)
            i = bisect.bisect_left(self.sorted, s)
            while i < len(self.sorted) and self.sorted[i].startswith(s):
                word = self.sorted[i]
                if len(s) >= 4 or word == a or stem(word) == s:
                    out |= self.words[word]
                i += 1
            for st in snowball_stems(a):
                out |= self.stems.get(st, set())
        return out


def passage_vectors(rows: list, previous: _Index | None = None) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """Each passage's embedding (title, heading and text) and its FAQ question's (zeros for
    prose), one row per passage: the semantic side of the index. A passage unchanged since
    `previous` (the same row, every column equal) keeps its vectors, so an edit re-embeds
    only the edited document's passages (about 0.3 ms each).
    """
    known = {r: i for i, r in enumerate(previous.rows)} if previous else {}
    fresh = [r for r in rows if r not in known]
    body = np.zeros((len(rows), semantic.DIM), dtype=np.float32)
    faq = np.zeros((len(rows), semantic.DIM), dtype=np.float32)
    new_body = semantic.embed([" ".join(filter(None, (r.title, r.heading, r.text)))
                               for r in fresh])
    new_faq = semantic.embed([r.question or "" for r in fresh])
    computed = {r: i for i, r in enumerate(fresh)}
    for i, r in enumerate(rows):
        if r in computed:
            body[i], faq[i] = new_body[computed[r]], new_faq[computed[r]]
        else:
            body[i], faq[i] = previous.vectors[known[r]], previous.faq_vectors[known[r]]
    return body, faq


@dataclass
class _Index:
    """One knowledge base in memory: its passages, their body and focus postings, and their
    embeddings as two matrices (a few hundred passages × 256 floats: no vector store needed).
    """

    version: tuple
    rows: list[_Row]
    body: _Postings
    focus: _Postings
    section: _Postings
    vocabulary: frozenset[str]
    vectors: np.ndarray
    faq_vectors: np.ndarray


_indexes: OrderedDict[tuple, _Index] = OrderedDict()
_index_lock = threading.Lock()


_VERSION_SQL = text("SELECT count(*), max(updated_at), coalesce(sum(chunk_count), 0) "
                    "FROM knowledge_documents WHERE user_id = :user_id AND enabled = :enabled")


def _knowledge_version(user_id: str) -> tuple:
    """What changes whenever the user's searchable passages do: the enabled documents'
    count, their newest update and their passage count (every write bumps updated_at).
    """
    def _read() -> tuple:
        row = execute(_VERSION_SQL, {"user_id": user_id, "enabled": True}).one()
        return (int(row[0]), str(row[1]), int(row[2]))

    # A message of several questions searches once per question: one query per event run.
    return memoized(("knowledge_version", user_id), _read)


def _index(user_id: str, version: tuple) -> _Index:
    """The user's knowledge base as an in-memory index, cached per process.

    `version` (one small aggregate query per search) says whether the cached index is
    current, so a document added, edited, disabled or deleted shows at once; the least
    recently used indexes beyond INDEX_CACHE knowledge bases are dropped.
    """
    key = (str(db.engine.url), user_id)
    with _index_lock:
        cached = _indexes.get(key)
        if cached and cached.version == version:
            _indexes.move_to_end(key)
            return cached
    rows = [_Row(*r) for r in db.session.execute(text(
        f"SELECT {_COLUMNS} FROM knowledge_chunks c "
        "JOIN knowledge_documents d ON d.id = c.document_id "
        f"WHERE {_SCOPE} ORDER BY c.id"), {"user_id": user_id, "enabled": True}).all()]
    # Re-tokenised rather than the stored search_text, so a passage indexed by an older
    # release gets today's tokens too (e.g. joined hyphenated words).
    body = _Postings([index_text(r.title, r.heading, r.text) for r in rows])
    vectors, faq_vectors = passage_vectors(rows, previous=cached)
    index = _Index(version=version, rows=rows, body=body,
                   focus=_Postings([index_text(r.title, r.heading, r.question) for r in rows]),
                   section=_Postings([index_text(r.heading, r.question) for r in rows]),
                   vocabulary=frozenset(body.words), vectors=vectors, faq_vectors=faq_vectors)
    with _index_lock:
        _indexes[key] = index
        _indexes.move_to_end(key)
        while len(_indexes) > INDEX_CACHE:
            _indexes.popitem(last=False)
    return index


def search(user_id: str, query: str, limit: int = 5) -> list[Passage]:
    """The user's enabled passages that best answer `query`, best first, scored 0..1.

    Any text is safe as a query: only its folded content words count (with their synonyms,
    synonyms/<lang>.txt, and a typo fix from the knowledge base's own words). The score is the
    IDF-weighted share of the query's words that the passage contains (a synonym, a word
    it begins, or a word of the same Snowball stem counts); passages are ranked by that score
    plus FOCUS_WEIGHT times the share matched in their title, heading or FAQ question (field
    weights). A knowledge base of up to MAX_INDEXED_CHUNKS passages is searched in a cached
    in-memory index; a larger one through the database's full-text engine.
    """
    terms = content_terms(rewrite_phrases(query or ""))
    if not terms or limit <= 0:
        return []
    version = _knowledge_version(user_id)
    alts = {t: alternatives(t) for t in terms}
    meaning = semantic.embed([query])[0]
    if version[2] > MAX_INDEXED_CHUNKS:
        return _search_fts(user_id, terms, alts, meaning, version[2], limit)
    index = _index(user_id, version)
    for t in terms:
        if not any(a in index.vocabulary for a in alts[t]):
            fixed = typo_fix(t, index.vocabulary)
            if fixed:
                alts[t] = alts[t] + alternatives(fixed)
    body = {t: index.body.matching(alts[t]) for t in terms}
    focus = {t: index.focus.matching(alts[t]) & body[t] for t in terms}
    section = {t: index.section.matching(alts[t]) & body[t] for t in terms}
    n = max(len(index.rows), 1)
    weights = {t: idf(len(body[t]), n) for t in terms}
    total = sum(weights.values()) or 1.0
    sims = _cosines(index.vectors, index.faq_vectors, meaning)
    # Accumulate per passage (a set walk per term), then rank only the best few.
    score: dict[int, float] = {}
    rank: dict[int, float] = {}
    for t in terms:
        w = weights[t] / total
        for i in body[t]:
            score[i] = score.get(i, 0.0) + w
            rank[i] = rank.get(i, 0.0) + w
        for i in focus[t]:
            rank[i] += FOCUS_WEIGHT * w
        for i in section[t]:
            rank[i] += SECTION_WEIGHT * w
    nearest = (SEMANTIC_WEIGHT * sims.max(axis=1)).tolist()   # plain floats: a fast loop
    for i in rank:
        rank[i] += nearest[i]
    # Sums over the same terms in the same order are equal floats: no rounding needed.
    best = heapq.nsmallest(limit, rank, key=lambda i: (-rank[i], -score[i], i))
    scored = []
    for i in best:
        hit = {t for t in terms if i in body[t]}
        scored.append((score[i], sum(weights[t] for t in hit if i in focus[t]) / total,
                       sum(weights[t] for t in hit if i in section[t]) / total,
                       tuple(sims[i].tolist()), i, index.rows[i], hit))
    unknown = sum(weights[t] for t in terms if not body[t]) / total
    return _passages(scored, terms, alts, weights, unknown, limit)


# Rows per matrix-vector product: OpenBLAS runs a larger one on several threads, whose
# wake-ups cost 8-40 ms at p99 on a busy 2-core machine (3,200 × 256: 0.3 ms p99 in blocks of
# 1,024 rows, 27 ms in one product).
DOT_BLOCK = 1024


def _cosines(vectors: np.ndarray, faq_vectors: np.ndarray, meaning: np.ndarray) -> np.ndarray:
    """Per passage, (cosine to its text, cosine to its FAQ question): an n × 2 array."""
    def dot(matrix: np.ndarray) -> np.ndarray:
        return np.concatenate([matrix[i:i + DOT_BLOCK] @ meaning
                               for i in range(0, len(matrix), DOT_BLOCK)] or [np.zeros(0)])

    return np.stack([dot(vectors), dot(faq_vectors)], axis=1)


def _passages(scored: list[tuple], terms: list[str], alts: dict[str, list[str]],
              weights: dict[str, float], unknown: float, limit: int) -> list[Passage]:
    """The best `limit` of (score, focus, section, (cosine, FAQ cosine), tie-break, row,
    terms hit) as Passages, ranked by score + FOCUS_WEIGHT × focus + SECTION_WEIGHT × section
    (field weights) + SEMANTIC_WEIGHT × the larger cosine.
    """
    total = sum(weights.values()) or 1.0
    scored.sort(key=lambda s: (-round(s[0] + FOCUS_WEIGHT * s[1] + SECTION_WEIGHT * s[2]
                                      + SEMANTIC_WEIGHT * max(s[3]), 9), -round(s[0], 9), s[4]))
    out = []
    for rank, (score, focus, _section, sims, _pos, row, hit) in enumerate(scored[:limit],
                                                                           start=1):
        lacking = [weights[t] for t in terms if t not in hit]
        out.append(Passage(chunk_id=row.id, document_id=row.document_id, title=row.title,
                           text=row.text, question=row.question, answer=row.answer,
                           score=round(score, 4), rank=rank, heading=row.heading,
                           focus=round(focus, 4), qsim=round(_question_similarity(
                               row.question, terms, alts), 4),
                           missing=round(max(lacking, default=0.0) / total, 4),
                           unknown=round(unknown, 4), n_terms=len(terms),
                           sem=round(sims[0], 4)))
    return out


def _search_fts(user_id: str, terms: list[str], alts: dict[str, list[str]],
                meaning: np.ndarray, n_chunks: int, limit: int) -> list[Passage]:
    """search() for a knowledge base too large to keep in memory: the database's full-text
    engine finds up to CANDIDATES passages with an OR of the words, Python reranks them.

    Embedding a passage costs about 0.3 ms, so only the candidates the cosine could still
    lift into the best `limit` are embedded for this query: those whose rank on words is
    within 2 × SEMANTIC_WEIGHT of the limit-th best (a cosine moves a rank by at most
    SEMANTIC_WEIGHT either way), at most EMBEDDED_CANDIDATES of them.
    """
    engine = _engine()
    every = [a for t in terms for a in alts[t]]
    rows = engine.candidates(engine.query(every), user_id, CANDIDATES)
    if not rows:
        return []
    n = max(n_chunks, len(rows))
    matchers = {t: TermMatcher(alts[t]) for t in terms}

    def contains(t: str, search_text: str) -> bool:
        return matchers[t](search_text) or stems_match(alts[t], stem_index(search_text))

    hits = [{t for t in terms if contains(t, row.search_text)} for row in rows]
    if len(rows) < CANDIDATES:
        # Every passage that matches any term is a candidate: count document frequencies
        # with exactly the reranker's matching rule.
        df = {t: sum(1 for h in hits if t in h) for t in terms}
    else:
        df = {t: engine.count(engine.query(alts[t]), user_id) for t in terms}
    weights = {t: idf(df[t], n) for t in terms}
    total = sum(weights.values()) or 1.0
    unknown = sum(weights[t] for t in terms if df[t] == 0) / total
    lexical = []
    for row, hit in zip(rows, hits, strict=False):
        focus_text = index_text(row.title, row.heading, row.question)
        section_text = index_text(row.heading, row.question)
        lexical.append((sum(weights[t] for t in hit) / total,
                        sum(weights[t] for t in hit if contains(t, focus_text)) / total,
                        sum(weights[t] for t in hit if contains(t, section_text)) / total))
    rank = [s + FOCUS_WEIGHT * f + SECTION_WEIGHT * c for s, f, c in lexical]
    order = sorted(range(len(rows)), key=lambda pos: -rank[pos])
    floor = rank[order[min(limit, len(order)) - 1]] - 2 * SEMANTIC_WEIGHT
    near = [pos for pos in order[:EMBEDDED_CANDIDATES] if rank[pos] >= floor]
    sims = dict(zip(near, _cosines(*passage_vectors([rows[pos] for pos in near]),
                                   meaning).tolist(), strict=True))
    scored = [(*lexical[pos], tuple(sims.get(pos, (0.0, 0.0))), pos, row, hits[pos])
              for pos, row in enumerate(rows)]
    return _passages(scored, terms, alts, weights, unknown, limit)


def _question_similarity(faq_question: str | None, terms: list[str],
                         alts: dict[str, list[str]]) -> float:
    """The share of an FAQ question's content words that the customer's message used
    (FAQ question-to-question matching); 0 for prose passages.
    """
    if not faq_question:
        return 0.0
    theirs = content_terms(rewrite_phrases(faq_question))
    if not theirs:
        return 0.0
    mine = {a for t in terms for a in alts[t]}
    mine_stems = {stem(a) for a in mine}
    hit = sum(1 for t in theirs if any_matches(alternatives(t), mine, mine_stems))
    return hit / len(theirs)


def search_results(user_id: str, query: str, limit: int = 5) -> dict:
    """search() in the API's list shape."""
    return {"items": [p.to_dict() for p in search(user_id, query, limit)], "next_cursor": None}
