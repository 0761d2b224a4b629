"""JSONL input for the probes: one object per line, and a bad line named in the error."""

from __future__ import annotations

import json
from pathlib import Path

from failwell.errors import InputError


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file; a malformed line is named in the error."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No file at {path}.")
    rows = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path.name}, line {number}: not valid JSON "
                                 f"({exc.msg}).") from None
            if not isinstance(row, dict):
                raise InputError(f"{path.name}, line {number}: expected a JSON object.")
            rows.append(row)
    return rows
