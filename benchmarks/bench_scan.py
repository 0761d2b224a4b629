"""Speed and memory targets of the tabular scanner (issue: scanner core).

1. The full tabular scan of COMPAS (the black-box scores and the race-blind model) < 3 s.
2. 1,000,000 rows x 30 columns with a gradient-boosted model < 60 s, with peak memory under
   3x the dataset's in-memory size (measured in a fresh subprocess: peak RSS minus the RSS
   of the interpreter with its libraries imported, so the data itself counts against it).

Run: ``make bench`` (or ``python benchmarks/bench_scan.py [--rows N]``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def bench_compas(repeats: int = 5) -> dict:
    from failwell.demo import (
        find_compas,
        load_compas,
        scan_compas_scores,
        scan_model,
        train_model_without_race,
    )

    path = find_compas()
    frame = load_compas(path)
    model, test = train_model_without_race(frame)
    scan_compas_scores(frame), scan_model(model, test)  # warm imports and caches
    scores, models, totals = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        frame = load_compas(path)
        t1 = time.perf_counter()
        scan_compas_scores(frame)
        t2 = time.perf_counter()
        scan_model(model, test)
        t3 = time.perf_counter()
        scores.append(t2 - t1)
        models.append(t3 - t2)
        totals.append(t3 - t0)
    return {"compas_scores_scan_s": statistics.median(scores),
            "compas_model_scan_s": statistics.median(models),
            "compas_total_with_csv_read_s": statistics.median(totals)}


BIG = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
import failwell
from failwell.scanner import ScanConfig, make_dataset, scan

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

rows = int(sys.argv[1])
baseline = rss_mb()
rng = np.random.default_rng(0)
cols = {f"x{i}": rng.normal(size=rows) for i in range(25)}
cols["region"] = pd.Categorical(rng.choice(["n", "s", "e", "w", "c"], rows))
cols["tier"] = rng.integers(0, 4, rows)
cols["gender"] = pd.Categorical(rng.choice(["F", "M"], rows))
cols["age"] = rng.integers(18, 80, rows)
logit = cols["x0"] + 0.5 * cols["x1"] - 0.3 * cols["x2"] + 0.2 * (cols["gender"] == "M")
cols["y"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
frame = pd.DataFrame(cols)
del cols, logit
data_mb = frame.memory_usage(deep=True).sum() / 2**20
features = [c for c in frame.columns if c != "y"]
train = frame.sample(100_000, random_state=0)
model = HistGradientBoostingClassifier(max_iter=100, categorical_features="from_dtype",
                                       random_state=0).fit(train[features], train["y"])
del train
before = rss_mb()
t0 = time.perf_counter()
ds = make_dataset(frame, target="y", protected=["gender"], features=features)
result = scan(ds, model, config=ScanConfig())
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({
    "rows": rows, "columns": frame.shape[1], "data_mb": round(data_mb, 1),
    "scan_s": round(seconds, 2), "baseline_rss_mb": round(baseline, 1),
    "rss_before_scan_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
    "peak_over_baseline_x_data": round((peak - baseline) / data_mb, 2),
    "model_calls": result.timings["model_calls"],
    "rows_predicted": result.timings["rows_predicted"],
    "model_s": result.timings["model_s"],
    "findings": [f.failure_mode for f in result.findings],
    "detector_s": {o.detector: round(o.seconds, 2) for o in result.outcomes},
}))
"""


def bench_big(rows: int) -> dict:
    out = subprocess.run([sys.executable, "-c", BIG, str(rows)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    compas = bench_compas()
    print(json.dumps(compas, indent=1))
    verdict = "PASS" if compas["compas_total_with_csv_read_s"] < 3 else "FAIL"
    print(f"COMPAS target < 3 s: {verdict}")
    big = bench_big(args.rows)
    print(json.dumps(big, indent=1))
    ok = big["scan_s"] < 60 and big["peak_over_baseline_x_data"] < 3
    print(f"{args.rows:,} rows target < 60 s and < 3x memory: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
