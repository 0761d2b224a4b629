"""Loop audit at scale (issue 20): 10 million impressions in under 30 s, memory bounded.

Generates a Parquet log (a learning policy drifting towards popular items, 5,000 items, 30
days) and a uniform reference slice a tenth its size into a temporary folder, then times
``failwell.loops.audit`` in a fresh process and reports its peak RSS.

    python benchmarks/bench_loops.py [--rows 10000000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TARGET_SECONDS = 30.0
ITEMS = 5_000
DAYS = 30


def generate(path: Path, rows: int, *, seed: int, learning: bool) -> None:
    """Write ``rows`` impressions in daily row groups (so generation itself stays small)."""
    rng = np.random.default_rng(seed)
    quality = rng.beta(1, 30, ITEMS)
    shown = np.ones(ITEMS)
    writer = None
    per_day = rows // DAYS
    start = np.datetime64("2026-01-01T00:00:00", "s")
    for day in range(DAYS):
        p = shown ** 1.2 / (shown ** 1.2).sum() if learning else np.full(ITEMS, 1 / ITEMS)
        item = rng.choice(ITEMS, per_day, p=p)
        np.add.at(shown, item, 1)
        table = pa.table({
            "ts": start + np.int64(day * 86_400) + rng.integers(0, 86_400, per_day),
            "item_id": item.astype(np.int32),
            "click": (rng.random(per_day) < quality[item]).astype(np.int8),
            "propensity": p[item],
            "user_id": rng.integers(0, 2_000_000, per_day),
        })
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


CHILD = """
import json, resource, sys, time
t = time.perf_counter()
from failwell.loops.audit import audit
result = audit(sys.argv[1], item="item_id", reward="click", time="ts",
               propensity="propensity", reference=sys.argv[2])
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "verdict": result.verdict,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "gini": result.logs["concentration"]["gini"]}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="failwell-bench-loops-"))
    try:
        logs, reference = work / "logs.parquet", work / "reference.parquet"
        started = time.perf_counter()
        generate(logs, args.rows, seed=0, learning=True)
        generate(reference, max(args.rows // 10, DAYS), seed=1, learning=False)
        print(f"generated {args.rows:,} + {args.rows // 10:,} impressions in "
              f"{time.perf_counter() - started:.0f} s "
              f"({logs.stat().st_size / 1e6:.0f} MB of Parquet)", flush=True)
        done = subprocess.run([sys.executable, "-c", CHILD, str(logs), str(reference)],
                              capture_output=True, text=True)
        if done.returncode:
            print(done.stderr[-2000:], file=sys.stderr)
            return 2
        row = json.loads(done.stdout.strip().splitlines()[-1])
        verdict = "pass" if row["seconds"] <= TARGET_SECONDS else "MISS"
        print(f"loop audit of {args.rows:,} impressions (+ {args.rows // 10:,} reference): "
              f"{row['seconds']:.1f} s (target < {TARGET_SECONDS:.0f} s, {verdict}); peak RSS "
              f"{row['peak_rss_mb']:.0f} MB; {args.rows / row['seconds'] / 1e6:.2f} M rows/s; "
              f"verdict {row['verdict']}, Gini {row['gini']:.3f}")
        return 0 if row["seconds"] <= TARGET_SECONDS else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
