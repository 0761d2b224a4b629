"""Blameless check speed: a 1,000-sentence postmortem in under 2 s (issue 14).

The document mixes the tuning sentences (a third of them name someone, the case the
classifier reads) in a fixed order. Timed warm (the model loaded, as in the web app and for
every sentence after the first in a command) and cold (a fresh process: imports, model
load, then the check), with and without the sentence classifier.

    python benchmarks/bench_blame.py
"""

from __future__ import annotations

import csv
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = 1000


def document() -> str:
    rows = []
    for path in sorted((ROOT / "tests/data/tuning").glob("blame_*.csv")):
        with path.open(encoding="utf-8") as fh:
            rows += [r["sentence"].replace("\n", " ") for r in csv.DictReader(fh)]
    random.Random(0).shuffle(rows)
    sentences = [s if s.rstrip().endswith((".", "!", "?")) else s + "." for s in rows]
    return "\n\n".join(sentences[:SENTENCES])


def main() -> int:
    from failwell.kb.blameless import lint, names_someone, split_sentences

    text = document()
    sentences = split_sentences(text)
    print(f"{len(sentences)} sentences, {sum(map(names_someone, sentences))} name someone")
    lint("Warm-up: Marta merged the change.", model=True)
    for model in (False, True):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            flags = lint(text, model=model)
            times.append(time.perf_counter() - start)
        print(f"  warm, {'rules + classifier' if model else 'rules alone':18s} "
              f"median {statistics.median(times):.2f} s ({len(flags)} flags; target < 2 s)")
    path = ROOT / "benchmarks" / ".cache" / "blame-doc.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    start = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "failwell"), "incident", "lint",
                           str(path), "--format", "json"], capture_output=True, check=False)
    assert done.returncode == 1, done.stderr  # 1: flags found
    print(f"  cold, `failwell incident lint` in a fresh process: "
          f"{time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
