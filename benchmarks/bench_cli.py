"""Cold starts: each command a fresh process, as a user runs it (issue 19).

Median of 5 per command, after one untimed run that warms the disk cache and the ONNX export.
The same commands run from ``--baseline REV``'s source (default: the commit before the
cold-start work) in the same run, interleaved, so the comparison shares the machine's load.

    python benchmarks/bench_cli.py [--baseline f203d74] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPAS = ROOT.parent / "shared" / "data" / "compas" / "compas-scores-two-years.csv"
COMMANDS = [  # (label, argv after `failwell`, target seconds)
    ("--help", ["--help"], 0.3),
    ("kb search --help", ["kb", "search", "--help"], 0.3),
    ("incident list", ["incident", "list"], 0.8),
    ("kb search (combined)", ["kb", "search", "model learned a hospital marker"], 1.5),
    ("lessons for TEXT", ["lessons", "for",
                          "a triage model trained on one hospital's images"], 1.5),
    ("incident suggest", ["incident", "suggest", "pneumonia-portable-marker"], 1.5),
    ("scan COMPAS -> JSON", [  # the README's command, JSON out
        "scan", str(COMPAS), "--target", "two_year_recid", "--prediction", "score_text",
        "--prediction-positive", "Medium", "--prediction-positive", "High",
        "--protected", "race", "--protected", "sex", "--reference-group", "race=Caucasian",
        "--where", "is_recid != -1 and c_charge_degree != 'O'", "--format", "json"], 1.5),
]


def launcher(src: Path) -> list[str]:
    """``failwell`` from the given source tree, with the installed dependencies."""
    code = (f"import sys; sys.path.insert(0, {str(src)!r}); "
            "from failwell.cli import main; sys.argv[0] = 'failwell'; main()")
    return [sys.executable, "-c", code]


def timed(argv: list[str], env: dict[str, str]) -> float:
    """Seconds for one run; NaN (with its error) when the command failed."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        print(f"  failed ({done.returncode}): {done.stderr.strip().splitlines()[-1][:200]}",
              file=sys.stderr)
        return float("nan")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="f203d74",
                        help="git revision to compare with (empty: none)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="failwell-bench-cli-"))
    trees = {"now": ROOT / "src"}
    if args.baseline:
        base = work / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(base),
                        args.baseline], check=True, capture_output=True)
        trees["baseline"] = base / "src"
    try:
        envs = {}
        for name in trees:
            envs[name] = os.environ | {"FAILWELL_DB": str(work / f"{name}.sqlite"),
                                       "COLUMNS": "100"}  # threads as a user has them
            timed([*launcher(trees[name]), "incident", "list"], envs[name])  # create, seed
        rows = []
        for label, argv, target in COMMANDS:
            runs: dict[str, list[float]] = {name: [] for name in trees}
            for name in trees:  # one untimed run each: disk cache, model export
                timed(launcher(trees[name]) + argv, envs[name])
            for _ in range(args.repeats):
                for name in trees:
                    runs[name].append(timed(launcher(trees[name]) + argv, envs[name]))
            medians = {name: statistics.median(v) for name, v in runs.items()}
            rows.append((label, target, medians))
            verdict = "pass" if medians["now"] <= target else "MISS"
            before = (f"   baseline {medians['baseline']:5.2f} s"
                      if "baseline" in medians else "")
            print(f"{label:24s} {medians['now']:5.2f} s  (target < {target:.1f} s, "
                  f"{verdict}){before}", flush=True)
        return 0 if all(m["now"] <= t for _, t, m in rows) else 1
    finally:
        if "baseline" in trees:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(work / "baseline")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
