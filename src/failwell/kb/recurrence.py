"""Related past incidents, and the "same mistake under a different project name" warning.

When a postmortem is recorded, the most similar stored incidents are found with the combined
search; one that shares a failure mode is a likely recurrence, and whether its action items
were closed says whether the organization acted on it the first time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from failwell.kb.postmortem import Postmortem
from failwell.kb.search import search
from failwell.kb.store import KnowledgeBase


@dataclass
class Related:
    id: str
    title: str
    project: str
    score: float
    shared_failure_modes: list[str]
    shared_patterns: list[str]
    actions_closed: int
    actions_total: int

    @property
    def recurrence(self) -> bool:
        """Shares a failure mode: the same kind of failure happened before."""
        return bool(self.shared_failure_modes)

    @property
    def open_actions(self) -> int:
        return self.actions_total - self.actions_closed

    def warning(self, project: str) -> str | None:
        if not self.recurrence:
            return None
        where = ("under a different project name" if self.project and project
                 and self.project != project else "before")
        acted = (f"{self.actions_closed} of {self.actions_total} action items were closed"
                 if self.actions_total else "it recorded no action items")
        return (f"Same mistake {where}? {self.id} ({self.project or 'no project'}) shares "
                f"{', '.join(self.shared_failure_modes)}; {acted}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"recurrence": self.recurrence}


def query_text(pm: Postmortem) -> str:
    """What a postmortem is compared on: its title, summary and contributing factors."""
    parts = [pm.title, pm.summary, *(f.description for f in pm.contributing_factors)]
    return " ".join(p for p in parts if p)[:2000]


def related_incidents(kb: KnowledgeBase, pm: Postmortem, *, limit: int = 5) -> list[Related]:
    """The stored incidents most like ``pm`` (excluding itself), best first."""
    hits = [h for h in search(kb, query_text(pm), limit=limit + 1) if h.id != pm.id][:limit]
    closure = kb.action_closure([h.id for h in hits])
    out = []
    for hit in hits:
        other = kb.get(hit.id).postmortem
        done, total = closure.get(hit.id, (0, 0))
        out.append(Related(
            id=hit.id, title=hit.title, project=hit.project, score=hit.score,
            shared_failure_modes=sorted(pm.failure_modes & other.failure_modes),
            shared_patterns=sorted(pm.patterns & other.patterns),
            actions_closed=done, actions_total=total))
    return out
