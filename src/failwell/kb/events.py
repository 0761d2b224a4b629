"""Which records tell the same real-world event: a curated postmortem and the public corpus's
records of it ("same event as ...").

A team's or the starter library's postmortem of, say, the Air Canada chatbot ruling and the
corpus's records of that ruling should be shown together, not compete for the same places in
a ranking: the curated one carries the lessons and action items. Two records are the same
event when their texts are related in meaning (cosine of their embeddings at least
:data:`MIN_SIMILARITY`) *and* they share :data:`MIN_NAMES` distinctive names: capitalised
words or numbers (not years) that appear in few incidents (:data:`MAX_NAME_SHARE` of them
at most), such as "Moffatt" and "Tribunal", or "Goodfellow" and "Szegedy". Meaning alone
links two different chatbot failures; one shared name links two stories about the same
country or company. Chosen on the tuning queries' library cases (6 of 10 links found, no
false link); the frozen figures are in README.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from failwell.db.schema import incidents
from failwell.kb.store import KnowledgeBase
from failwell.kb.transfer import GENAI as CORPUS

MIN_SIMILARITY = 0.30
MIN_NAMES = 2
MAX_NAME_SHARE = 0.003  # a name in more incidents than this is not distinctive
CANDIDATES = 25  # corpus records compared with each curated one
_NAME = re.compile(r"(?<![\w-])(?:[A-Z][\w'-]*[A-Za-z0-9]|[A-Za-z]+-?\d[\w.-]*|\d{3,})")
_COMMON = frozenset("""
the this that these those a an in on of for and or to it its is was were we our they
summary timeline impact lessons what which who when where why how ai ml llm llms model
models data users user after before during
""".split())


@dataclass(frozen=True)
class Record:
    id: int
    slug: str
    source: str
    text: str


def names(text: str) -> set[str]:
    """Candidate distinctive names of a text (lower case)."""
    found = {m.group(0).lower().strip("'") for m in _NAME.finditer(text)}
    return {n for n in found if n not in _COMMON and len(n) > 2
            and not re.fullmatch(r"(?:19|20)\d\d", n)}


def _records(kb: KnowledgeBase, ids: Iterable[int]) -> dict[int, Record]:
    ids = [int(i) for i in ids]
    if not ids:
        return {}
    with kb.engine.connect() as conn:
        rows = conn.execute(select(incidents.c.id, incidents.c.slug, incidents.c.source,
                                   incidents.c.title, incidents.c.summary,
                                   incidents.c.document).where(incidents.c.id.in_(ids))).all()
    out = {}
    for row in rows:
        refs = " ".join(str(r) for r in (row.document or {}).get("references") or [])
        out[row.id] = Record(row.id, row.slug, row.source,
                             f"{row.title}. {row.summary} {refs}")
    return out


def _distinctive(kb: KnowledgeBase, shared: set[str], total: int) -> set[str]:
    """The shared names that few incidents contain (full-text document frequency, kept
    until the next write)."""
    from failwell.kb.search import _document_frequency

    out = set()
    with kb.engine.connect() as conn:
        memo = kb.memo(conn)
        for name in shared:
            terms = re.findall(r"\w+", name)
            if not terms:
                continue
            key = ("name frequency", name)
            if key not in memo:
                memo[key] = min(_document_frequency(conn, kb.dialect, t) for t in terms)
            if memo[key] <= max(2, MAX_NAME_SHARE * total):
                out.add(name)
    return out


def same_event(kb: KnowledgeBase, pairs: list[tuple[int, int]], similarity: dict
               ) -> list[tuple[int, int, list[str]]]:
    """Of ``(curated id, corpus id)`` pairs with their cosine in ``similarity``, those that
    are the same event, with the distinctive names they share."""
    pairs = [p for p in pairs if similarity.get(p, 0.0) >= MIN_SIMILARITY]
    if not pairs:
        return []
    records = _records(kb, {i for p in pairs for i in p})
    total = kb.count()
    out = []
    for curated, corpus in pairs:
        if curated not in records or corpus not in records:
            continue
        shared = names(records[curated].text) & names(records[corpus].text)
        distinctive = _distinctive(kb, shared, total) if len(shared) >= MIN_NAMES else set()
        if len(distinctive) >= MIN_NAMES:
            out.append((curated, corpus, sorted(distinctive)))
    return out


def links_for(kb: KnowledgeBase, slug: str) -> list[dict]:
    """The records of the same event as incident ``slug`` (both directions)."""
    from failwell.kb.search import vector_index

    index = vector_index(kb)
    if index is None or not len(index.ids):
        return []
    with kb.engine.connect() as conn:
        row = conn.execute(select(incidents.c.id, incidents.c.source)
                           .where(incidents.c.slug == slug)).first()
    if row is None:
        return []
    position = np.flatnonzero(index.ids == row.id)
    if not len(position):
        return []
    vector = index.matrix[position[0]]
    order, sims = index.top(vector, index.scores(vector), CANDIDATES + 1)
    candidates = _records(kb, [int(index.ids[i]) for i in order])
    mine = row.source == CORPUS
    pairs, similarity = [], {}
    for i, s in zip(order, sims, strict=True):
        other = int(index.ids[i])
        if other == row.id or other not in candidates or (candidates[other].source == CORPUS) \
                == mine:
            continue
        pair = (other, row.id) if mine else (row.id, other)
        pairs.append(pair)
        similarity[pair] = float(s)
    found = same_event(kb, pairs, similarity)
    return [{"id": candidates[a if mine else b].slug,
             "similarity": round(similarity[(a, b)], 3), "names": shared}
            for a, b, shared in found]
