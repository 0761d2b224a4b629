"""The COMPAS mitigation comparison (issue 21): six methods in under 60 s on this machine.

Runs ``failwell.mitigate.compare`` on the docs/mitigation.md example with all seven methods
(the target is for six) in a fresh process, and prints each method's seconds.

    python benchmarks/bench_mitigate.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TARGET_SECONDS = 60.0
COMPAS = Path(__file__).resolve().parents[2] / "shared" / "data" / "compas" / \
    "compas-scores-two-years.csv"
CHILD = f"""
import json, time
t = time.perf_counter()
from failwell.demo import COMPAS_FEATURES, load_compas
from failwell.mitigate.comparison import compare
from pathlib import Path
comparison = compare(load_compas(Path({str(COMPAS)!r})), target="two_year_recid",
                     protected=["race", "sex"], features=COMPAS_FEATURES,
                     reference_groups={{"race": "Caucasian"}})
print(json.dumps({{"seconds": time.perf_counter() - t,
                  "methods": [(r.method, r.status, r.seconds) for r in comparison.runs]}}))
"""


def main() -> int:
    if not COMPAS.is_file():
        print(f"needs {COMPAS}", file=sys.stderr)
        return 2
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
    if done.returncode:
        print(done.stderr[-2000:], file=sys.stderr)
        return 2
    row = json.loads(done.stdout.strip().splitlines()[-1])
    for method, status, seconds in row["methods"]:
        print(f"  {method:28s} {status:8s} {seconds:6.1f} s")
    verdict = "pass" if row["seconds"] <= TARGET_SECONDS else "MISS"
    print(f"COMPAS, baseline + 7 methods, fresh process: {row['seconds']:.1f} s "
          f"(target < {TARGET_SECONDS:.0f} s for six, {verdict})")
    return 0 if row["seconds"] <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
