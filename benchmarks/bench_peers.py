"""failwell vs Giskard 2.x ``giskard.scan`` and Deepchecks' tabular ``full_suite``, one run.

Each peer lives in its own virtual environment (pinned in requirements-*.txt, created here on
first use) because their pins conflict with ours. All three train the same model recipe on the
same COMPAS training rows and scan the same held-out rows; only the scan is timed. Target:
failwell at least 10x faster than each. What each tool found is printed side by side.

Run: ``make bench-peers`` (needs the package registry on first use, to build the venvs).
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"
DATA = HERE / ".data"


def ensure_venv(tool: str) -> Path:
    python = VENVS / tool / "bin" / "python"
    stamp = VENVS / tool / ".installed"
    reqs = HERE / f"requirements-{tool}.txt"
    if not stamp.exists() or stamp.read_text() != reqs.read_text():
        print(f"building {tool} environment (first run only) ...", flush=True)
        venv.create(VENVS / tool, with_pip=True, clear=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "-r", reqs], check=True)
        stamp.write_text(reqs.read_text())
    return python


def split_data() -> tuple[Path, Path]:
    from sklearn.model_selection import train_test_split

    from failwell.demo import find_compas, load_compas

    frame = load_compas(find_compas())
    train, test = train_test_split(frame, test_size=0.4, random_state=0,
                                   stratify=frame["two_year_recid"])
    DATA.mkdir(exist_ok=True)
    paths = DATA / "compas_train.csv", DATA / "compas_test.csv"
    train.to_csv(paths[0], index=False)
    test.to_csv(paths[1], index=False)
    return paths


def run(python: Path | str, tool: str, paths) -> dict:
    proc = subprocess.run([str(python), str(HERE / "peer_runner.py"), tool, *map(str, paths)],
                          capture_output=True, text=True, timeout=1800,
                          env={"GSK_DISABLE_ANALYTICS": "True", "PATH": "/usr/bin:/bin",
                               "HOME": str(Path.home())})
    if proc.returncode != 0:
        raise SystemExit(f"{tool} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    paths = split_data()
    results = {"failwell": run(sys.executable, "failwell", paths)}
    for tool in ("giskard", "deepchecks"):
        results[tool] = run(ensure_venv(tool), tool, paths)
    ours = results["failwell"]["scan_s"]
    print(f"\n{'tool':<12}{'scan seconds':>14}{'failwell speed-up':>20}")
    for tool, r in results.items():
        print(f"{tool:<12}{r['scan_s']:>14.2f}{r['scan_s'] / ours:>19.1f}x")
    for tool, r in results.items():
        print(f"\n== {tool} found {len(r['found'])}:")
        for line in r["found"]:
            print("  -", line)
    ok = all(results[t]["scan_s"] >= 10 * ours for t in ("giskard", "deepchecks"))
    print(f"\ntarget: failwell >= 10x faster than each: {'PASS' if ok else 'FAIL'}")
    (HERE / ".data" / "peers.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
