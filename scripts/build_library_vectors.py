"""Write the starter library's search vectors (src/failwell/kb/library/vectors.npz).

A fresh knowledge base seeds the library with these instead of loading the model, so the
first search of a new database reads vectors like any other. Each vector is keyed by the
incident id and the sha256 of the text that was embedded; a library postmortem edited since
is embedded on write instead. Run after changing the library or the embedding model:

    .venv/bin/python scripts/build_library_vectors.py
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
from sqlalchemy import select

from failwell.db.schema import embeddings, incidents
from failwell.kb import embeddings as emb
from failwell.kb.library import load_library_files
from failwell.kb.store import KnowledgeBase

OUT = Path(__file__).resolve().parents[1] / "src" / "failwell" / "kb" / "library" / "vectors.npz"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase.open(f"sqlite:///{tmp}/kb.sqlite")
        kb.embed_missing()
        with kb.engine.connect() as conn:
            rows = conn.execute(select(incidents.c.slug, incidents.c.search_text,
                                       incidents.c.title, embeddings.c.vector)
                                .join(embeddings, embeddings.c.incident_id == incidents.c.id)
                                .where(incidents.c.source == "library")
                                .order_by(incidents.c.slug)).all()
        kb.close()
    assert len(rows) == len(load_library_files()), "every library postmortem needs a vector"
    np.savez_compressed(
        OUT, ids=np.array([r.slug for r in rows]),
        sha256=np.array([hashlib.sha256((r.search_text or r.title).encode()).hexdigest()
                         for r in rows]),
        vectors=np.stack([emb.from_bytes(r.vector) for r in rows]))
    print(f"wrote {len(rows)} vectors to {OUT}")


if __name__ == "__main__":
    main()
