"""Stage gates from a YAML file: questions drawn from the systemic patterns and the evidence
each gate requires. Gates are ordered by their ``after`` links; a cycle, an unknown gate or
an unknown evidence kind is refused when the file is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from failwell.errors import InputError, did_you_mean
from failwell.governance.evidence import KINDS
from failwell.taxonomy import load_catalog


@dataclass(frozen=True)
class Question:
    pattern: str
    text: str


@dataclass(frozen=True)
class Requirement:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Gate:
    id: str
    name: str
    after: tuple[str, ...]
    questions: tuple[Question, ...]
    evidence: tuple[Requirement, ...]


def load_gates(path: Path | None = None) -> list[Gate]:
    """The gates in review order (the packaged default when ``path`` is None)."""
    if path is None:
        text = resources.files("failwell.governance").joinpath("gates.yaml").read_text("utf-8")
        source = "default gates"
    else:
        if not path.is_file():
            raise InputError(f"No such gate file: {path}")
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("gates"), list) \
            or not data["gates"]:
        raise InputError(f"{source}: expected 'gates:' with a list of gates.")
    catalog = load_catalog()
    gates: dict[str, Gate] = {}
    for i, raw in enumerate(data["gates"]):
        if not isinstance(raw, dict) or not raw.get("id"):
            raise InputError(f"{source}: gate {i + 1} needs an 'id'.")
        gid = str(raw["id"])
        if gid in gates:
            raise InputError(f"{source}: gate {gid!r} is defined twice.")
        questions = []
        for q in raw.get("questions") or []:
            if not isinstance(q, dict) or not q.get("text"):
                raise InputError(f"{source}: gate {gid!r}: a question needs 'text'.")
            catalog.pattern(str(q.get("pattern", "")))  # unknown patterns get a hint
            questions.append(Question(str(q["pattern"]), str(q["text"])))
        requirements = []
        for r in raw.get("evidence") or []:
            if not isinstance(r, dict) or "kind" not in r:
                raise InputError(f"{source}: gate {gid!r}: evidence entries need a 'kind'.")
            kind = str(r["kind"])
            if kind not in KINDS:
                raise InputError(f"{source}: gate {gid!r}: unknown evidence kind {kind!r}."
                                 f"{did_you_mean(kind, KINDS)} Known: {', '.join(KINDS)}.")
            params = {k: v for k, v in r.items() if k != "kind"}
            KINDS[kind].check_params(params, f"{source}: gate {gid!r}")
            requirements.append(Requirement(kind, params))
        after = raw.get("after") or []
        if isinstance(after, str):
            after = [after]
        gates[gid] = Gate(gid, str(raw.get("name") or gid), tuple(map(str, after)),
                          tuple(questions), tuple(requirements))
    for gate in gates.values():
        for dep in gate.after:
            if dep not in gates:
                raise InputError(f"{source}: gate {gate.id!r} comes after unknown gate "
                                 f"{dep!r}.{did_you_mean(dep, gates)}")
    try:
        order = list(TopologicalSorter({g.id: g.after for g in gates.values()}).static_order())
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise InputError(f"{source}: the gates form a cycle ({cycle}); each gate's 'after' "
                         "must point to earlier gates.") from None
    return [gates[g] for g in order]


def next_gate(gates: list[Gate], passed: set[str]) -> Gate | None:
    """The first gate (in order) not yet passed whose prerequisites all are."""
    for gate in gates:
        if gate.id not in passed and all(dep in passed for dep in gate.after):
            return gate
    return None
