"""Search quality on a query set: recall@5 and MRR@10 per mode, with the count of queries.

A query set is JSON lines, ``{"query": ..., "relevant": [incident ids]}``. A corpus record
folded into a curated hit (same event) counts as shown at that hit's place, since the user
sees it there. Used by ``make bench-kb`` and the tests; a team can score its own knowledge
base the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from failwell.kb.search import MODES, search
from failwell.kb.store import KnowledgeBase


@dataclass(frozen=True)
class Quality:
    mode: str
    queries: int
    recall_at_5: float
    mrr_at_10: float
    per_query: tuple[tuple[float, float], ...]


def load_queries(path: Path) -> list[tuple[str, set[str]]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [(r["query"], set(r["relevant"])) for r in rows]


def shown(kb: KnowledgeBase, query: str, mode: str, limit: int = 10) -> list[set[str]]:
    """What each of the first ``limit`` places shows: the hit and what was folded into it."""
    return [{hit.id, *hit.same_event} for hit in search(kb, query, mode=mode, limit=limit)]


def score(places: list[set[str]], relevant: set[str]) -> tuple[float, float]:
    """(recall@5, reciprocal rank within 10) for one query."""
    found = set().union(*places[:5]) if places else set()
    recall = len(found & relevant) / min(len(relevant), 5)
    rank = next((r for r, place in enumerate(places[:10], start=1) if place & relevant), None)
    return min(recall, 1.0), (1.0 / rank if rank else 0.0)


def evaluate(kb: KnowledgeBase, queries: list[tuple[str, set[str]]],
             modes: tuple[str, ...] = MODES) -> dict[str, Quality]:
    out = {}
    for mode in modes:
        per_query = tuple(score(shown(kb, q, mode), relevant) for q, relevant in queries)
        n = max(len(per_query), 1)
        out[mode] = Quality(mode, len(per_query), sum(r for r, _ in per_query) / n,
                            sum(m for _, m in per_query) / n, per_query)
    return out
