"""The one catalog of failure modes and systemic patterns, loaded from ``catalog.toml``.

Everything that names a failure mode (detectors, findings, reports, the knowledge base) uses
these ids, so a finding and an incident meet on the same words.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from failwell.errors import UnknownIdError, did_you_mean


@dataclass(frozen=True)
class SystemicPattern:
    id: str
    name: str
    description: str
    warning_signs: tuple[str, ...]


@dataclass(frozen=True)
class FailureMode:
    id: str
    name: str
    description: str
    patterns: tuple[str, ...]
    warning_signs: tuple[str, ...]
    mitigations: tuple[str, ...]
    references: tuple[str, ...]


@dataclass(frozen=True)
class Catalog:
    failure_modes: dict[str, FailureMode]
    patterns: dict[str, SystemicPattern]

    def failure_mode(self, mode_id: str) -> FailureMode:
        return _lookup(self.failure_modes, mode_id, "failure mode")

    def pattern(self, pattern_id: str) -> SystemicPattern:
        return _lookup(self.patterns, pattern_id, "systemic pattern")


def _lookup(table: dict, key: str, kind: str):
    if key in table:
        return table[key]
    hint = did_you_mean(key, table) or f" Known: {', '.join(table)}."
    raise UnknownIdError(f"Unknown {kind} id {key!r}.{hint}")


@cache
def load_catalog() -> Catalog:
    """Read the packaged catalog once per process."""
    raw = tomllib.loads(resources.files("failwell").joinpath("catalog.toml").read_text("utf-8"))
    patterns = {
        pid: SystemicPattern(
            id=pid,
            name=p["name"],
            description=p["description"],
            warning_signs=tuple(p.get("warning_signs", ())),
        )
        for pid, p in raw["patterns"].items()
    }
    modes = {
        mid: FailureMode(
            id=mid,
            name=m["name"],
            description=m["description"],
            patterns=tuple(m.get("patterns", ())),
            warning_signs=tuple(m.get("warning_signs", ())),
            mitigations=tuple(m.get("mitigations", ())),
            references=tuple(m.get("references", ())),
        )
        for mid, m in raw["failure_modes"].items()
    }
    for mode in modes.values():
        for pid in mode.patterns:
            _lookup(patterns, pid, "systemic pattern")
    return Catalog(failure_modes=modes, patterns=patterns)
