"""JSONL input for the probes: one object per line, and a bad line named in the error."""

from __future__ import annotations

import json
from pathlib import Path

from failwell.errors import InputError


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file; a malformed line, or text that is not UTF-8, is named in the
    error (never decoded with replacement characters and judged as if it were right)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No file at {path}.")
    rows = []
    number = 0
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    rows.append(_row(path, number, line))
    except UnicodeDecodeError:
        raise InputError(f"{path.name}, line {number + 1}: not UTF-8 text; save the file as "
                         "UTF-8.") from None
    return rows


def _row(path: Path, number: int, line: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path.name}, line {number}: not valid JSON ({exc.msg}).") from None
    if not isinstance(row, dict):
        raise InputError(f"{path.name}, line {number}: expected a JSON object.")
    return row
