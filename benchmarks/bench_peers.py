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


def split_data() -> dict[str, tuple[Path, Path]]:
    """COMPAS split 60/40 as the demo does; the credit case 20,000 train / 50,000 test."""
    from sklearn.model_selection import train_test_split

    from failwell.demo import find_compas, load_compas

    sys.path.insert(0, str(HERE))
    from peer_runner import credit_case

    DATA.mkdir(exist_ok=True)
    frame = load_compas(find_compas())
    compas = train_test_split(frame, test_size=0.4, random_state=0,
                              stratify=frame["two_year_recid"])
    credit = credit_case(20_000, seed=1), credit_case(50_000, seed=2)
    out = {}
    for case, (train, test) in (("compas", compas), ("credit", credit)):
        paths = DATA / f"{case}_train.csv", DATA / f"{case}_test.csv"
        train.to_csv(paths[0], index=False)
        test.to_csv(paths[1], index=False)
        out[case] = paths
    return out


def run(python: Path | str, tool: str, case: str, paths) -> dict:
    proc = subprocess.run([str(python), str(HERE / "peer_runner.py"), tool, case,
                           *map(str, paths)], capture_output=True, text=True, timeout=1800,
                          env={"GSK_DISABLE_ANALYTICS": "True", "PATH": "/usr/bin:/bin",
                               "HOME": str(Path.home())})
    if proc.returncode != 0:
        raise SystemExit(f"{tool} on {case} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    cases = split_data()
    pythons = {"failwell": sys.executable, **{t: ensure_venv(t) for t in PEERS}}
    results: dict[str, dict[str, dict]] = {}
    for case, paths in cases.items():  # interleaved: each case runs all tools back to back
        results[case] = {tool: run(py, tool, case, paths) for tool, py in pythons.items()}
    ok = True
    for case, by_tool in results.items():
        ours = by_tool["failwell"]["scan_s"]
        print(f"\n=== {case}: {by_tool['failwell'].get('rows_predicted')} rows predicted by "
              f"failwell in {by_tool['failwell'].get('model_calls')} calls "
              f"({by_tool['failwell'].get('model_s')} s in the model)")
        print(f"{'tool':<12}{'scan seconds':>14}{'failwell speed-up':>20}")
        for tool, r in by_tool.items():
            print(f"{tool:<12}{r['scan_s']:>14.2f}{r['scan_s'] / ours:>19.1f}x")
        for tool, r in by_tool.items():
            print(f"\n== {tool} found {len(r['found'])} on {case}:")
            for line in r["found"]:
                print("  -", line)
        ok &= all(by_tool[t]["scan_s"] >= 10 * ours for t in PEERS)
    print(f"\ntarget: failwell >= 10x faster than each peer on every case: "
          f"{'PASS' if ok else 'FAIL'}")
    (DATA / "peers.json").write_text(json.dumps(results, indent=1))


PEERS = ("giskard", "deepchecks")

if __name__ == "__main__":
    main()
