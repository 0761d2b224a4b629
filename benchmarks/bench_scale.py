"""Partitioned scans at scale: 50 million rows x 30 columns of Parquet in bounded memory.

``--mode memory`` (default, ``make bench-scale``): generates a decision log once (cached under
``--dir``, reused while its marker file matches), then runs ``failwell scan DIR --engine
local`` and ``--engine dask --workers 2`` as fresh processes, as a user runs them. Each run's
wall time, rows/s and peak RSS are measured from outside: psutil polls the process tree
every 0.1 s and sums the RSS of the scan process and every process under it (the Dask
workers), and ``os.wait4`` adds the kernel's high-water mark of the largest single process.
The target: peak RSS under 2 GB, for the local engine the whole process tree's, for Dask
each process's (its workers may sit on separate machines). Both runs get
``OMP_NUM_THREADS=1`` (and OpenBLAS / MKL), which is what Dask's nanny gives each worker,
so the two engines compare like for like.

``--mode profile`` (for docs/scale.md): per-detector cost per million rows per worker, on
the local engine through the Python API, one detector at a time; then how group-fairness
grows with the number of groups (8, 64, 512 regions) and performance-slices with the number
of slice columns (10 against all 28 of the table's non-role columns).

    python benchmarks/bench_scale.py [--rows 50000000] [--rows-per-file 1000000] [--json F]
    python benchmarks/bench_scale.py --mode profile [--profile-rows 1000000,2000000]

The data: loan decisions. ``label`` is 1 when the loan was repaid, ``score`` is the model's
probability of repayment (decision: score >= 0.5), a bit overconfident; the model
under-scores one region ("east", a planted group gap) and is noisier in the broker channel
(a slice with excess errors). ~2 % of incomes and ~4 % of days-since-last-payment are null.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TARGET_RSS_GB = 2.0
ROW_GROUP = 250_000
ROOT = Path(tempfile.gettempdir()) / "failwell-bench-scale"
THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ROLES = ["--target", "label", "--score", "score", "--protected", "gender",
         "--protected", "region"]
FORMAT_VERSION = 1  # bump when the generated columns change: cached folders regenerate

REGIONS = ["north", "south", "east", "west", "central", "coast", "highlands", "islands"]
GAP_REGION = 2  # "east": the model's score is lower there at the same repayment odds
CATEGORIES = {  # 8 string columns of 3 to 50 categories
    "housing": ["rent", "mortgage", "own"],
    "marital_status": ["single", "married", "divorced", "widowed"],
    "education": ["none", "secondary", "vocational", "bachelor", "master"],
    "channel": ["branch", "online", "mobile", "phone", "broker"],
    "employment": ["salaried", "self-employed", "contract", "retired", "student",
                   "unemployed"],
    "product": ["personal", "auto", "home-improvement", "debt-consolidation", "education",
                "medical", "travel", "wedding", "business", "green", "credit-builder",
                "bridge"],
    "occupation": [f"occ-{i:02d}" for i in range(30)],
    "branch": [f"B{i:03d}" for i in range(50)],
}
BROKER = CATEGORIES["channel"].index("broker")
EMPLOYMENT_EFFECT = np.array([0.3, -0.1, -0.2, 0.2, -0.4, -0.9])
EDUCATION_EFFECT = np.array([-0.3, -0.1, 0.0, 0.15, 0.25])


def region_names(regions: int) -> list[str]:
    return REGIONS if regions == len(REGIONS) else [f"R{i:03d}" for i in range(regions)]


def region_weights(regions: int) -> np.ndarray:
    w = 1 / np.sqrt(np.arange(regions) + 2.0)  # unequal sizes, as real regions are
    return w / w.sum()


def _strings(names: list[str], codes: np.ndarray) -> pa.Array:
    return pa.array(names).take(pa.array(codes.astype(np.int32)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def make_chunk(rng: np.random.Generator, n: int, regions: int) -> pa.Table:
    """``n`` rows of the decision log, 30 columns (numpy, then one Arrow table)."""
    region = rng.choice(regions, n, p=region_weights(regions))
    gender = (rng.random(n) < 0.48).astype(np.int8)  # 1: F
    age = np.clip(18 + rng.gamma(4.0, 6.0, n), 18, 90).astype(np.int64)
    cat = {name: rng.choice(len(values), n) for name, values in CATEGORIES.items()}
    log_income = rng.normal(10.6 + 0.01 * (np.minimum(age, 60) - 40)
                            + 0.08 * cat["education"], 0.55)
    income = np.round(np.exp(log_income), 2)
    debt_ratio = np.round(rng.beta(2, 5, n), 3)
    utilization = np.round(rng.beta(2, 3, n), 3)
    tenure = np.round(rng.exponential(5.0, n), 1)
    late = rng.poisson(0.4, n)
    floats = {
        "income": income,
        "debt_ratio": debt_ratio,
        "credit_utilization": utilization,
        "tenure_years": tenure,
        "balance": np.round(rng.lognormal(8.0, 1.2, n), 2),
        "loan_amount": np.round(rng.lognormal(9.3, 0.7, n), -1),
        "interest_rate": np.round(np.clip(rng.normal(0.09, 0.03, n), 0.01, 0.3), 4),
        "savings": np.round(rng.lognormal(8.5, 1.5, n), 2),
        "spend_volatility": rng.gamma(2.0, 0.15, n),
        "avg_transaction": np.round(rng.lognormal(3.8, 0.6, n), 2),
    }
    ints = {
        "age": age,
        "dependents": rng.poisson(0.9, n),
        "open_accounts": rng.poisson(4.0, n),
        "late_payments_12m": late,
        "inquiries_6m": rng.poisson(1.2, n),
        "years_at_address": rng.geometric(0.15, n) - 1,
        "num_products": 1 + rng.poisson(1.0, n),
        "days_since_last_payment": rng.integers(0, 90, n),
    }
    logit = (0.9 + 0.8 * (log_income - 10.6) / 0.55 - 3.0 * (debt_ratio - 0.28)
             - 0.7 * late - 1.5 * (utilization - 0.4) + 0.04 * np.minimum(tenure, 20)
             + EMPLOYMENT_EFFECT[cat["employment"]] + EDUCATION_EFFECT[cat["education"]])
    label = (rng.random(n) < _sigmoid(logit)).astype(np.int8)
    blind = np.where(cat["channel"] == BROKER, 1.6, 0.5)  # the model knows brokers less
    model = 1.35 * (logit + rng.normal(0, 1, n) * blind) + 0.25  # overconfident, optimistic
    model -= 0.9 * (region == GAP_REGION)  # the planted gap
    columns: dict[str, pa.Array] = {
        "label": pa.array(label),
        "score": pa.array(_sigmoid(model)),
        "gender": _strings(["M", "F"], gender),
        "region": _strings(region_names(regions), region),
    }
    for name, values in floats.items():
        mask = rng.random(n) < 0.02 if name == "income" else None
        columns[name] = pa.array(values, mask=mask)
    for name, values in ints.items():
        mask = rng.random(n) < 0.04 if name == "days_since_last_payment" else None
        columns[name] = pa.array(values, mask=mask)
    for name, values in CATEGORIES.items():
        columns[name] = _strings(values, cat[name])
    return pa.table(columns)


def generate(folder: Path, rows: int, rows_per_file: int, *, regions: int = 8,
             seed: int = 0) -> dict:
    """Write ``rows`` rows as part-NNNNN.parquet files, once: a marker file records what was
    written, and a folder whose marker matches is reused. Chunks of one row group each keep
    generation to a few hundred MB whatever ``rows`` is."""
    spec = {"rows": rows, "rows_per_file": rows_per_file, "regions": regions, "seed": seed,
            "row_group": ROW_GROUP, "version": FORMAT_VERSION}
    marker = folder / ".failwell-bench-complete.json"
    if marker.exists() and json.loads(marker.read_text()).get("spec") == spec:
        info = json.loads(marker.read_text())
        info["cached"] = True
        return info
    folder.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    for old in [*folder.glob("part-*.parquet"), *folder.glob(".part-*.tmp")]:
        old.unlink()  # only what an earlier run of this script wrote
    strangers = sorted(p.name for p in folder.rglob("*.parquet"))
    if strangers:
        raise SystemExit(f"{folder} holds other Parquet files ({strangers[0]}...), which the "
                         "scan would read too: choose an empty --dir.")
    started = time.perf_counter()
    files = math.ceil(rows / rows_per_file)
    for i in range(files):
        file_rows = min(rows_per_file, rows - i * rows_per_file)
        tmp, final = folder / f".part-{i:05d}.tmp", folder / f"part-{i:05d}.parquet"
        writer = None
        for j, at in enumerate(range(0, file_rows, ROW_GROUP)):
            rng = np.random.default_rng([seed, regions, i, j])
            table = make_chunk(rng, min(ROW_GROUP, file_rows - at), regions)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=ROW_GROUP)
        writer.close()
        tmp.rename(final)
        if files > 4 and (i + 1) % max(files // 10, 1) == 0:
            print(f"  generated {i + 1}/{files} files "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    info = {"spec": spec, "seconds": round(time.perf_counter() - started, 1),
            "bytes": sum(p.stat().st_size for p in folder.glob("*.parquet")), "files": files}
    marker.write_text(json.dumps(info))
    info["cached"] = False
    return info


def describe_data(info: dict, folder: Path) -> str:
    how = "cached" if info["cached"] else f"generated in {info['seconds']:.0f} s"
    return (f"{info['spec']['rows']:,} rows x 30 columns in {info['files']} files, "
            f"{info['bytes'] / 1e9:.2f} GB of Parquet ({how}): {folder}")


# --- memory mode ------------------------------------------------------------------------


class TreeMemory(threading.Thread):
    """Polls a process and all its descendants: the peak of their summed RSS."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.per_pid: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.done = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self.done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                total += rss
                self.per_pid[p.pid] = max(self.per_pid.get(p.pid, 0), rss)
                if p.pid not in self.names:
                    self.names[p.pid] = _process_name(p)
            self.peak = max(self.peak, total)
            self.done.wait(self.interval)


def _process_name(p) -> str:
    """The scan, a Dask worker, or a helper (multiprocessing's resource tracker...)."""
    try:
        cmd = " ".join(p.cmdline())
    except Exception:
        return "?"
    for key, name in (("failwell scan", "scan"), ("-m failwell", "scan"),
                      ("resource_tracker", "resource tracker"), ("forkserver", "forkserver"),
                      ("spawn_main", "dask worker"), ("multiprocessing", "dask worker")):
        if key in cmd:
            return name
    return cmd[:60]


def have_psutil() -> bool:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True


def run_cli(folder: Path, engine: str, workers: int, work: Path, extra: list[str]) -> dict:
    """One ``failwell scan`` in a fresh process: wall, CPU, peak RSS and the JSON report."""
    out = work / f"scan-{engine}.json"
    log = work / f"scan-{engine}.log"
    argv = [sys.executable, "-m", "failwell", "scan", str(folder), *ROLES, "--engine", engine,
            "--format", "json", "--output", str(out), *extra]
    if engine == "dask":
        argv += ["--workers", str(workers)]
    env = {**os.environ, **THREADS}
    with open(log, "w") as sink:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT)
        monitor = TreeMemory(proc.pid) if have_psutil() else None
        if monitor:
            monitor.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    if monitor:
        monitor.done.set()
        monitor.join()
    largest = usage.ru_maxrss * 1024  # the child or any descendant it waited for, alone
    row = {"engine": engine, "rc": proc.returncode, "wall_s": round(wall, 2),
           "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
           "largest_process_gb": round(largest / 1e9, 3),
           "peak_rss_gb": round(max(monitor.peak if monitor else 0, largest) / 1e9, 3),
           "processes": len(monitor.per_pid) if monitor else None,
           "process_peaks_gb": [] if not monitor else [
               {"pid": pid, "process": monitor.names.get(pid, "?"), "peak_gb": round(v / 1e9, 3)}
               for pid, v in sorted(monitor.per_pid.items(), key=lambda kv: -kv[1])],
           "rss_measure": "process tree, summed" if monitor else "largest process only"}
    if proc.returncode not in (0, 1):  # 1: findings at --fail-on severity, not an error
        row["error"] = log.read_text()[-3000:]
        return row
    report = json.loads(out.read_text())
    timings, engine_cfg = report["timings"], report["config"]["engine"]
    row.update({
        "scan_s": timings["total"],
        "partitions": engine_cfg["partitions"], "workers": engine_cfg["workers"],
        "passes": engine_cfg["passes"],
        "findings": [f"{f['severity']} {f['failure_mode']}" for f in report["findings"]],
        "detector_s": {k: v for k, v in timings.items() if k in DETECTORS},
        "partials_cpu_s": {k.removeprefix("partials."): v for k, v in timings.items()
                           if k.startswith("partials.")},
        "detector_status": {d["detector"]: d.get("status") for d in report["detectors"]},
    })
    return row


def memory_mode(args: argparse.Namespace) -> int:
    folder = Path(args.dir or ROOT / f"rows-{args.rows}")
    info = generate(folder, args.rows, args.rows_per_file)
    print(describe_data(info, folder), flush=True)
    if not have_psutil():
        print("psutil is not installed: peak RSS is the largest single process "
              "(ru_maxrss), not the sum over the Dask workers.")
    extra = [x for d in args.detector for x in ("--detector", d)]
    if args.sample_rows:
        extra += ["--sample-rows", str(args.sample_rows)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="failwell-bench-scale-") as tmp:
        for engine in args.engines.split(","):
            print(f"failwell scan --engine {engine} ...", flush=True)
            row = run_cli(folder, engine, args.workers, Path(tmp), extra)
            rows.append(row)
            if "error" in row:
                print(f"  failed (exit {row['rc']}):\n{row['error']}", file=sys.stderr)
                continue
            row["rows_per_s"] = round(args.rows / row["wall_s"])
            # one machine for the local engine: the whole tree; Dask's workers may each be
            # on their own machine, so there the bound is per process
            key = "largest_process_gb" if engine == "dask" else "peak_rss_gb"
            row["target_met"] = row[key] < TARGET_RSS_GB
            print(f"  {row['wall_s']:.1f} s wall ({row['scan_s']:.1f} s in the scan), "
                  f"{row['rows_per_s'] / 1e6:.2f} M rows/s, {row['cpu_s']:.0f} CPU s; "
                  f"peak RSS {row['peak_rss_gb']:.2f} GB over {row['processes']} process(es) "
                  f"(largest {row['largest_process_gb']:.2f} GB); {row['partitions']} "
                  f"partitions, {row['passes']} passes, {len(row['findings'])} findings",
                  flush=True)
            print("  detectors' last step, on the sample (wall s): " + ", ".join(
                f"{k} {v:.1f}" for k, v in row["detector_s"].items()))
            print("  partials (CPU s over all partitions): " + ", ".join(
                f"{k} {v:.1f}" for k, v in row["partials_cpu_s"].items()))
    ok = {r["engine"]: r for r in rows if "error" not in r}
    print()
    print(f"{args.rows:,} rows x 30 columns, {info['bytes'] / 1e9:.2f} GB of Parquet, "
          f"target peak RSS < {TARGET_RSS_GB:.0f} GB (local: the whole process tree; "
          "dask: each process)")
    header = (f"{'engine':<16} {'wall s':>8} {'M rows/s':>9} {'CPU s':>7} "
              f"{'peak RSS GB':>12} {'largest GB':>11} {'target':>7} {'findings':>9}")
    print(header)
    print("-" * len(header))
    for r in rows:
        name = r["engine"] + (f" x{args.workers}" if r["engine"] == "dask" else "")
        if "error" in r:
            print(f"{name:<16} failed (exit {r['rc']})")
            continue
        print(f"{name:<16} {r['wall_s']:>8.1f} {r['rows_per_s'] / 1e6:>9.2f} {r['cpu_s']:>7.0f} "
              f"{r['peak_rss_gb']:>12.2f} {r['largest_process_gb']:>11.2f} "
              f"{'pass' if r['target_met'] else 'MISS':>7} {len(r['findings']):>9}")
    speedup = None
    if "local" in ok and "dask" in ok:
        speedup = round(ok["local"]["wall_s"] / ok["dask"]["wall_s"], 2)
        print(f"speed-up of dask x{args.workers} over local: {speedup:.2f}x "
              "(local wall time / dask wall time)")
    if ok:
        first = next(iter(ok.values()))
        print("findings: " + "; ".join(first["findings"]))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "mode": "memory", "rows": args.rows, "columns": 30,
            "rows_per_file": args.rows_per_file, "row_group": ROW_GROUP,
            "parquet_bytes": info["bytes"], "generation": info, "target_rss_gb": TARGET_RSS_GB,
            "runs": rows, "dask_speedup": speedup, "threads_env": THREADS,
            "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1))
        print(f"figures written to {args.json}")
    if len(ok) < len(rows):
        return 2
    return 0 if all(r["target_met"] for r in ok.values()) else 1


# --- profile mode -----------------------------------------------------------------------

DETECTORS = ["data-audit", "group-fairness", "proxy-features", "counterfactual",
             "spurious-correlation", "robustness", "overconfidence", "performance-slices"]


def profile_scan(folder: Path, detector: str, rows: int, repeats: int = 1, **roles) -> dict:
    """One detector alone on the local engine; medians over ``repeats`` scans."""
    import failwell
    from failwell.scale import open_dataset

    roles = {"target": "label", "score": "score", "protected": ["gender", "region"], **roles}
    runs = []
    for _ in range(repeats):
        ds = open_dataset(str(folder), **roles)
        started = time.perf_counter()
        result = failwell.scan(ds, engine="local", detectors=[detector])
        wall = time.perf_counter() - started
        runs.append((wall, result.to_dict()))
    d = runs[0][1]
    t = d["timings"]

    def median(key: str) -> float | None:
        got = [r[1]["timings"].get(key) for r in runs]
        return None if got[0] is None else round(float(np.median(got)), 4)

    partial = median(f"partials.{detector}")
    status = next((o.get("status") for o in d["detectors"] if o["detector"] == detector), "")
    return {"detector": detector, "rows": rows, "repeats": repeats,
            "wall_s": round(float(np.median([r[0] for r in runs])), 2),
            "final_s": median(detector), "partials_s": partial,
            "per_m_rows_s": None if partial is None else round(partial / (rows / 1e6), 3),
            "predict_s": median("partials.predict"), "sample_s": median("partials.sample"),
            "passes": d["config"]["engine"]["passes"], "status": status,
            "findings": len(d["findings"]), "all_partials_s": {
                k: v for k, v in t.items() if k.startswith("partials.")}}


def _fmt(v, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def _table(header: list[tuple[str, int]]) -> None:
    line = " ".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(header))
    print(line)
    print("-" * len(line))


def _kinds(schema: pa.Schema, columns: list[str]) -> str:
    """'10 str + 10 float + 8 int': the slice columns by type (strings cost the most)."""
    kinds = {"str": 0, "float": 0, "int": 0}
    for c in columns:
        t = schema.field(c).type
        kinds["str" if pa.types.is_string(t) else "float" if pa.types.is_floating(t)
              else "int"] += 1
    return " + ".join(f"{n} {k}" for k, n in kinds.items() if n)


def profile_mode(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.profile_rows.split(",")]
    base = ROOT / "profile"
    per_file = 250_000
    started = time.perf_counter()
    datasets = {}
    for rows in sizes:
        folder = base / f"rows-{rows}-regions-8"
        info = generate(folder, rows, per_file)
        datasets[rows] = folder
        print(describe_data(info, folder), flush=True)
    group_rows = sizes[0]
    groups = {8: datasets[group_rows]}
    for regions in (64, 512):
        folder = base / f"rows-{group_rows}-regions-{regions}"
        info = generate(folder, group_rows, per_file, regions=regions)
        groups[regions] = folder
        print(describe_data(info, folder) + f", {regions} regions", flush=True)
    report: dict = {"mode": "profile", "repeats": args.repeats, "threads_env": THREADS,
                    "detectors": [], "groups": [], "slices": []}
    profile_scan(datasets[group_rows], "overconfidence", group_rows)  # warm imports, disk
    reps = args.repeats

    print(f"\n1. Cost per detector, local engine, one detector per scan, median of {reps}. "
          "partials: CPU s in per-partition work summed over partitions (per M rows: for one "
          "worker); final: wall s of the detector's last step on the sample; wall: the whole "
          "scan, reads included")
    _table([("detector", 22), ("rows", 10), ("partials s", 11), ("s / M rows", 11),
            ("final s", 8), ("scan wall s", 12), ("passes", 7), ("status", 8)])
    for detector in DETECTORS:
        for rows in sizes:
            r = profile_scan(datasets[rows], detector, rows, reps)
            report["detectors"].append(r)
            print(f"{detector:<22} {rows:>10,} {_fmt(r['partials_s']):>11} "
                  f"{_fmt(r['per_m_rows_s'], '.3f'):>11} {_fmt(r['final_s']):>8} "
                  f"{r['wall_s']:>12.2f} {r['passes']:>7} {r['status'] or '':>8}", flush=True)
    for rows in sizes:
        got = [r for r in report["detectors"] if r["rows"] == rows]
        idle = [r["wall_s"] for r in got if r["status"] == "skipped"]
        print(f"every scan of {rows:,} rows also draws the sample "
              f"({np.median([r['sample_s'] or 0 for r in got]):.2f} CPU s)"
              + (f"; a scan whose one detector is skipped (no model) takes "
                 f"{np.median(idle):.2f} s: the roles pass, one read of every column and the "
                 "sample" if idle else ""))

    print(f"\n2. group-fairness against the number of groups ({group_rows:,} rows, median of "
          f"{reps}; gender x region intersections included)")
    _table([("regions", 8), ("groups", 7), ("partials s", 11), ("s / M rows", 11),
            ("scan wall s", 12)])
    for regions, folder in groups.items():
        r = profile_scan(folder, "group-fairness", group_rows, reps)
        r["regions"] = regions
        report["groups"].append(r)
        print(f"{regions:<8} {2 + regions + 2 * regions:>7} {_fmt(r['partials_s']):>11} "
              f"{_fmt(r['per_m_rows_s'], '.3f'):>11} {r['wall_s']:>12.2f}", flush=True)

    names = pq.read_schema(next(datasets[group_rows].glob("*.parquet"))).names
    features = [c for c in names if c not in ("label", "score", "gender", "region")]
    print(f"\n3. performance-slices against the number of slice columns ({group_rows:,} rows, "
          f"median of {reps}; the 2 protected attributes are slice columns too, and "
          f"{len(features) + 2} is every column but the target and the score)")
    _table([("slice cols", 10), ("kinds", 26), ("partials s", 11), ("s / M rows", 11),
            ("scan wall s", 12), ("passes", 7)])
    schema = pq.read_schema(next(datasets[group_rows].glob("*.parquet")))
    for count in (10, 20, len(features) + 2):
        r = profile_scan(datasets[group_rows], "performance-slices", group_rows, reps,
                         features=features[: count - 2])
        r["slice_columns"] = count
        r["kinds"] = _kinds(schema, ["gender", "region", *features[: count - 2]])
        report["slices"].append(r)
        print(f"{count:<10} {r['kinds']:>26} {_fmt(r['partials_s']):>11} "
              f"{_fmt(r['per_m_rows_s'], '.3f'):>11} "
              f"{r['wall_s']:>12.2f} {r['passes']:>7}", flush=True)
    print(f"\nprofile took {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"figures written to {args.json}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["memory", "profile"], default="memory")
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--rows-per-file", type=int, default=1_000_000)
    parser.add_argument("--dir", help=f"data folder (default {ROOT}/rows-N)")
    parser.add_argument("--engines", default="local,dask",
                        help="comma-separated, in order (default local,dask)")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (default 2)")
    parser.add_argument("--detector", action="append", default=[],
                        help="pass --detector to the scans (repeatable; default all)")
    parser.add_argument("--sample-rows", type=int, help="pass --sample-rows to the scans")
    parser.add_argument("--profile-rows", default="1000000,2000000",
                        help="profile mode: comma-separated table sizes")
    parser.add_argument("--repeats", type=int, default=3,
                        help="profile mode: scans per figure, the median kept (default 3)")
    parser.add_argument("--json", help="also write the figures as JSON here")
    args = parser.parse_args()
    if args.mode == "profile":
        missing = {k: v for k, v in THREADS.items() if k not in os.environ}
        if missing:  # same thread settings as the memory mode's children: start over with them
            os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **missing})
        return profile_mode(args)
    return memory_mode(args)


if __name__ == "__main__":
    raise SystemExit(main())
