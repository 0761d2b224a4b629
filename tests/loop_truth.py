"""Score the loop audit on the frozen recommender-log set (cases nobody here wrote).

``tests/data/frozen/loop_cases``: 33 logs (3 from the real Open Bandit sample), each labelled
``feedback-loop``, ``clean`` or ``inconclusive`` by a recommender engineer from the mechanism
that produced it, before the audit's rules were seen; see its README. Never tuned on.

Run ``python tests/loop_truth.py`` (``make bench-truth``) to print every case and figure; the
floors in ``test_frozen_sets.py`` hold them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CASES = Path(__file__).parent / "data" / "frozen" / "loop_cases"
VERDICTS = ("feedback-loop", "clean", "inconclusive")


def run_case(case: dict) -> str:
    """The audit's verdict on one case; "error" when it refused the input."""
    from failwell.errors import FailwellError
    from failwell.loops.audit import audit

    columns = case["columns"]
    rails = []
    if columns.get("guardrail"):
        lower = case.get("guardrail_direction") == "lower_is_better"
        rails = [f"{columns['guardrail']}:{'lower' if lower else 'higher'}"]
    try:
        result = audit(CASES / case["logs"], item=columns["item"], reward=columns["reward"],
                       time=columns.get("time"), propensity=columns.get("propensity"),
                       user=columns.get("user"), guardrails=rails,
                       reference=CASES / case["reference"] if case.get("reference") else None)
    except FailwellError as exc:
        return f"error: {exc}"
    return result.verdict


def loop_figures() -> dict:
    """Confusion counts, accuracy, the loop's recall and the false alarms on clean cases."""
    cases = json.loads((CASES / "cases.json").read_text("utf-8"))
    rows = [(c["id"], c["expected"], run_case(c)) for c in cases]
    confusion = {e: {g: 0 for g in (*VERDICTS, "error")} for e in VERDICTS}
    for _, expected, got in rows:
        confusion[expected]["error" if got.startswith("error") else got] += 1
    loops = confusion["feedback-loop"]
    clean = confusion["clean"]
    return {
        "n": len(rows), "rows": rows, "confusion": confusion,
        "accuracy": sum(e == g for _, e, g in rows) / len(rows),
        "loop_recall": loops["feedback-loop"] / sum(loops.values()),
        "loop_precision": loops["feedback-loop"] / max(
            1, sum(confusion[e]["feedback-loop"] for e in VERDICTS)),
        "false_alarms_on_clean": clean["feedback-loop"] / sum(clean.values()),
        "errors": sum(g.startswith("error") for _, _, g in rows),
    }


def main() -> int:
    figures = loop_figures()
    for case, expected, got in figures["rows"]:
        mark = "ok  " if expected == got else "MISS"
        print(f"{mark} {case:32s} expected {expected:13s} got {got[:90]}")
    print(f"\n{figures['n']} cases; accuracy {figures['accuracy']:.1%}; feedback-loop recall "
          f"{figures['loop_recall']:.1%}, precision {figures['loop_precision']:.1%}; false "
          f"alarms on clean {figures['false_alarms_on_clean']:.1%}; refused "
          f"{figures['errors']}")
    print("rows: expected, columns: audit verdict")
    for expected, row in figures["confusion"].items():
        print(f"  {expected:13s} " + "  ".join(f"{k}={v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
