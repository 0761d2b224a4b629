"""Knowledge-base benchmarks: corpus import, search latency at 100k incidents, search quality.

    python benchmarks/bench_kb.py             # all three (first run embeds the corpus: minutes)
    python benchmarks/bench_kb.py --only quality

* Import: the full genai-incidents corpus into a fresh SQLite file (records), then the
  embedding rate measured on a sample of it (the full run's figure is printed when the
  cached corpus database is built).
* Latency: the corpus plus synthetic incidents up to 100,000 rows. A synthetic incident joins
  the text of two real ones and its vector is the normalised sum of theirs (embedding 85k
  texts would take an hour on this CPU, and search costs the same either way). p50/p95 of
  ``search()`` per mode, query embedding included, warm (after the first query loads the
  vectors); on SQLite, and on PostgreSQL when FAILWELL_TEST_PG names a server.
* Quality: recall@5 and MRR@10 per mode on three query sets (our own 40 below; 50 tuning
  queries and 70 frozen queries written by others, ``tests/data``), each with the full
  corpus loaded and on the starter library alone; and the same-event links of the library
  cases against the frozen links.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, insert, select, text

from failwell.db.schema import embeddings, incident_tags, incidents
from failwell.kb.search import search
from failwell.kb.store import Filters, KnowledgeBase
from failwell.kb.transfer import import_genai_incidents

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(__file__).resolve().parent / ".cache"
TARGET_ROWS = 100_000

# (query, relevant: library ids and/or a title regex over the corpus)
QUERIES: list[tuple[str, list[str], str | None]] = [
    ("x-ray classifier relied on text printed by the scanner",
     ["pneumonia-portable-marker"], None),
    ("hiring model penalized female applicants because of past recruiting decisions",
     ["resume-screener-gender-bias"], None),
    ("tiny pixel changes make a classifier mistake a panda for an ape",
     ["adversarial-panda-stop-sign"], None),
    ("navigation agent trained in simulation relied on lighting artefacts",
     ["maze-robot-simulator-shadows"], None),
    ("recommendation system optimizing watch time created a feedback loop",
     ["engagement-feedback-loop"], None),
    ("assistant tells users what they want to hear after tuning on thumbs up",
     ["sycophancy-approval-feedback"], None),
    ("language model knows who a celebrity's mother is but not the reverse",
     ["reversal-curse-facts"], None),
    ("bad processors corrupted gradients without any error message",
     ["silent-data-corruption-cluster"], None),
    ("competition-winning model never deployed because it was too expensive to serve",
     ["latency-budget-ensemble"], None),
    ("customer service bot made up a refund rule",
     ["llm-hallucination-grounding"], r"air canada"),
    ("lawyer submitted a brief with court cases invented by a chatbot", [],
     r"avianca|fake (legal )?citations|invented case citations|fabricated (case|legal)"),
    ("airline chatbot promised a bereavement discount that did not exist",
     ["llm-hallucination-grounding"], r"air canada"),
    ("engineers pasted confidential source code into a public chatbot", [], r"samsung"),
    ("Microsoft twitter bot learned to post offensive messages", [], r"\btay\b"),
    ("finance worker tricked by a deepfake video call into wiring millions", [],
     r"(hong kong|arup).*(deepfake|scam)|deepfake.*(cfo|video call)"),
    ("car dealership chatbot agreed to sell a vehicle for one dollar", [],
     r"chevrolet.*(chatbot|\$1|usd 1)|dealership chatbot"),
    ("parcel delivery company's chatbot swore at a customer", [], r"\bdpd\b"),
    ("city government chatbot advised businesses to break the law", [],
     r"nyc ai chatbot|mycity"),
    ("image generator produced historically inaccurate diverse people", [],
     r"gemini.*(image|racial|historical)"),
    ("face recognition falsely matched members of congress to mugshots", [], r"rekognition"),
    ("credit card algorithm gave women lower credit limits", [], r"apple card"),
    ("photo app labelled black people as gorillas", [], r"gorilla"),
    ("autonomous test vehicle killed a pedestrian in Arizona", [],
     r"uber self-driving car kills|uber.*pedestrian"),
    ("home-buying algorithm mispriced houses and the business was closed", [], r"zillow"),
    ("automated welfare debt recovery wrongly accused citizens", [], r"robodebt"),
    ("zero-click data theft from an office copilot through an email", [], r"echoleak"),
    ("cloned voice of the president told voters to skip a primary", [],
     r"biden.*robocall|robocall.*biden|fake biden"),
    ("teenager died after months of conversations with an AI companion app", [],
     r"character\.ai.*(suicide|death|self-harm)|(suicide|death).*character\.ai"),
    ("eating disorder helpline chatbot gave weight-loss advice", [], r"tessa|neda"),
    ("exam grading algorithm downgraded students from poorer schools", [], r"ofqual|a-level"),
    ("chatbot launch demo gave a wrong fact about a space telescope", [],
     r"bard.*webb|webb.*bard"),
    ("malicious model files on a model hub run code when loaded", [],
     r"pickle.*(malware|hugging face)|hugging face.*(pickle|malicious model)"),
    ("hidden instructions in tool descriptions poison an agent", [], r"tool poisoning"),
    ("search engine chatbot alter ego threatened users", [],
     r"sydney.*(bing|jailbreak|persona)|bing chat"),
    ("unauthenticated AI compute cluster job API exploited in the wild", [],
     r"shadowray|anyscale ray"),
    ("company scraped billions of photos from social media for face search", [],
     r"clearview"),
    ("driver-assist car crashed into a parked fire truck", [],
     r"tesla.*(fire truck|emergency vehicle|firetruck)"),
    ("tax authority algorithm falsely flagged families for childcare benefit fraud", [],
     r"(dutch|netherlands).*(childcare|benefit|tax)"),
    ("prompt injection in a database agent leads to SQL attacks", [],
     r"p2sql|prompt injections? to sql"),
    ("local model runner crafted model file leads to remote code execution", [],
     r"ollama.*(rce|remote code|gguf)"),
]


def corpus_db() -> str:
    """Library + genai-incidents + embeddings, built once and cached (minutes the first time)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / "kb-corpus.sqlite"
    url = f"sqlite:///{path}"
    kb = KnowledgeBase.open(url)
    if kb.count() < 15_000:
        import_genai_incidents(kb)
    missing = len(kb.missing_embeddings())
    if missing:
        print(f"embedding {missing} incidents once (cached in {path}) ...", flush=True)
        start = time.perf_counter()
        kb.embed_missing(batch_size=512, progress=lambda d, t: print(
            f"  {d}/{t}", end="\r", flush=True))
        took = time.perf_counter() - start
        print(f"\nfull corpus embedded in {took:.0f} s ({missing / took:.0f} incidents/s)")
    kb.close()
    return url


def bench_import() -> None:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / "import-once.sqlite"
    for p in CACHE.glob("import-once.sqlite*"):
        p.unlink()
    kb = KnowledgeBase.open(f"sqlite:///{path}")
    start = time.perf_counter()
    report = import_genai_incidents(kb)
    took = time.perf_counter() - start
    print(f"import genai-incidents: {report.added} records in {took:.1f} s "
          f"({report.added / took:.0f}/s; target < 30 s)")
    start = time.perf_counter()
    again = import_genai_incidents(kb)
    print(f"re-import (idempotent): added {again.added}, skipped {again.skipped} in "
          f"{time.perf_counter() - start:.2f} s")
    sample = kb.missing_embeddings(limit=1024)
    from failwell.kb import embeddings as emb

    emb.encode(["warm up"])
    start = time.perf_counter()
    emb.encode([t for _, t in sample])
    rate = len(sample) / (time.perf_counter() - start)
    print(f"embeddings: {rate:.0f} incidents/s on this CPU (batched) -> full corpus "
          f"~{kb.count() / rate / 60:.1f} min")
    kb.close()


def relevant_ids(kb: KnowledgeBase) -> list[set[str]]:
    with kb.engine.connect() as conn:
        titles = conn.execute(select(incidents.c.slug, incidents.c.title).where(
            incidents.c.source == "genai-incidents")).all()
    out = []
    for _, library, pattern in QUERIES:
        ids = set(library)
        if pattern:
            rx = re.compile(pattern, re.I)
            ids |= {slug for slug, title in titles if rx.search(title)}
        out.append(ids)
    return out


QUERY_SETS = {  # name -> (file or None for the 40 above, who wrote it)
    "own 40": None,
    "tuning 50": ROOT / "tests/data/tuning/search_queries.jsonl",
    "frozen 70": ROOT / "tests/data/frozen/search_queries.jsonl",
}


def query_sets(kb: KnowledgeBase) -> dict[str, list[tuple[str, set[str]]]]:
    from failwell.kb.quality import load_queries

    own = [(q, ids) for (q, _, _), ids in zip(QUERIES, relevant_ids(kb), strict=True)]
    return {name: own if path is None else load_queries(path)
            for name, path in QUERY_SETS.items()}


def library_only(queries: list[tuple[str, set[str]]], library: set[str]):
    """The queries with a library answer, judged on the library cases alone."""
    return [(q, ids & library) for q, ids in queries if ids & library]


def bench_quality() -> None:
    """recall@5 / MRR@10 per mode on each query set, with the corpus and on the starter
    library alone; and the same-event links of the library cases against the frozen set."""
    from failwell.kb.events import links_for
    from failwell.kb.library import load_library
    from failwell.kb.quality import evaluate

    kb = KnowledgeBase.open(corpus_db())
    library = {pm.id for pm in load_library()}
    alone = KnowledgeBase.open(f"sqlite:///{CACHE / 'kb-library.sqlite'}")
    print(f"search quality over {kb.count()} incidents (library + genai-incidents) and over "
          f"the {alone.count()} library cases alone; recall@5 / MRR@10")
    print(f"  {'query set':24s} {'n':>3s}  {'full text':>13s}  {'semantic':>13s}  "
          f"{'combined':>13s}  combined >= best single")
    for name, queries in query_sets(kb).items():
        for label, store, qs in (("with corpus", kb, queries),
                                 ("library alone", alone, library_only(queries, library))):
            if not qs:
                continue
            r = evaluate(store, qs)
            best = max(("fulltext", "semantic"), key=lambda m: r[m].recall_at_5)
            ok = all(r["combined"].recall_at_5 >= r[m].recall_at_5 - 1e-9 and
                     r["combined"].mrr_at_10 >= r[m].mrr_at_10 - 1e-9
                     for m in ("fulltext", "semantic"))
            cells = "  ".join(f"{r[m].recall_at_5:.3f} / {r[m].mrr_at_10:.3f}"
                              for m in ("fulltext", "semantic", "combined"))
            print(f"  {name + ', ' + label:24s} {len(qs):3d}  {cells}  "
                  f"{'yes' if ok else 'no (best: ' + best + ')'}")
    truth = {r["library"]: set(r["corpus"]) for r in map(
        __import__("json").loads, (ROOT / "tests/data/frozen/same_event.jsonl").read_text()
        .splitlines())}
    found = {slug: {link["id"] for link in links_for(kb, slug)} for slug in truth}
    tp = sum(len(found[s] & truth[s]) for s in truth)
    predicted, actual = sum(map(len, found.values())), sum(map(len, truth.values()))
    print(f"same-event links of the {len(truth)} library cases (frozen): {predicted} found, "
          f"{tp} right, of {actual} true links (precision "
          f"{tp / max(predicted, 1):.2f}, recall {tp / max(actual, 1):.2f})")
    kb.close()
    alone.close()


def grow_to(kb: KnowledgeBase, source: KnowledgeBase, target: int) -> None:
    """Copy the corpus (rows, tags, vectors) from ``source`` when ``kb`` is empty, then add
    synthetic incidents until there are ``target``."""
    with source.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(incidents).order_by(
            incidents.c.id))]
        tags = [dict(r._mapping) for r in conn.execute(select(incident_tags))]
        vecs = dict(conn.execute(select(embeddings.c.incident_id, embeddings.c.vector)).all())
    have = kb.count()
    if have <= 10:
        with kb.engine.begin() as conn:
            conn.execute(text("DELETE FROM incidents"))
            for start in range(0, len(rows), 2000):
                conn.execute(insert(incidents), rows[start:start + 2000])
            conn.execute(insert(incident_tags), tags)
            conn.execute(insert(embeddings), [{"incident_id": i, "model": "all-MiniLM-L6-v2",
                                               "vector": v} for i, v in vecs.items()])
        have = len(rows)
    base = [r for r in rows if r["id"] in vecs]
    next_id = max(r["id"] for r in rows) + 1 + (have - len(rows))
    todo = target - have
    print(f"  adding {todo} synthetic incidents ...", flush=True)
    for start in range(0, todo, 5000):
        batch, vbatch = [], []
        for k in range(start, min(start + 5000, todo)):
            a, b = base[k % len(base)], base[(k * 7919 + 13) % len(base)]
            row = dict(a)
            row.update(id=next_id + k, slug=f"synthetic-{k}", source="synthetic",
                       source_id=str(k), title=f"{a['title']} / {b['title']}",
                       search_text=f"{a['search_text'][:400]} {b['search_text'][:400]}")
            v = np.frombuffer(vecs[a["id"]], np.float32) + np.frombuffer(vecs[b["id"]],
                                                                         np.float32)
            batch.append(row)
            vbatch.append({"incident_id": next_id + k, "model": "all-MiniLM-L6-v2",
                           "vector": (v / np.linalg.norm(v)).astype(np.float32).tobytes()})
        with kb.engine.begin() as conn:
            conn.execute(insert(incidents), batch)
            conn.execute(insert(embeddings), vbatch)


def latency(kb: KnowledgeBase, label: str) -> None:
    queries = [q for q, _, _ in QUERIES]
    search(kb, queries[0])  # loads the vector matrix and the model
    print(f"search latency, {label}, {kb.count()} incidents ({len(queries) * 5} queries):")
    for mode, filters in (("combined", None), ("fulltext", None), ("semantic", None),
                          ("combined", Filters(severities=["high", "critical"]))):
        times = []
        for _ in range(5):
            for q in queries:
                start = time.perf_counter()
                search(kb, q, filters, mode=mode)
                times.append(1000 * (time.perf_counter() - start))
        p95 = float(np.percentile(times, 95))
        name = mode + (" +severity filter" if filters else "")
        print(f"  {name:28s} p50 {statistics.median(times):6.1f} ms   p95 {p95:6.1f} ms")


def bench_latency() -> None:
    source = KnowledgeBase.open(corpus_db())
    path = CACHE / "kb-100k.sqlite"
    kb = KnowledgeBase.open(f"sqlite:///{path}")
    if kb.count() < TARGET_ROWS:
        grow_to(kb, source, TARGET_ROWS)
    latency(kb, "SQLite")
    kb.close()
    admin = os.environ.get("FAILWELL_TEST_PG")
    if not admin:
        print("PostgreSQL: skipped (set FAILWELL_TEST_PG or run `make bench-kb`)")
        return
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS fw_bench WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE fw_bench"))
    engine.dispose()
    pg = KnowledgeBase.open(admin.rsplit("/", 1)[0] + "/fw_bench")
    grow_to(pg, source, TARGET_ROWS)
    with pg.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SELECT setval('incidents_id_seq', (SELECT max(id) FROM incidents))"))
        conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does after a bulk load
    latency(pg, "PostgreSQL")
    pg.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("import", "latency", "quality"))
    args = parser.parse_args()
    for name, fn in (("import", bench_import), ("quality", bench_quality),
                     ("latency", bench_latency)):
        if args.only in (None, name):
            fn()
    return 0


if __name__ == "__main__":
    sys.exit(main())
