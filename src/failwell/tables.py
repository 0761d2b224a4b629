"""Reading a table file (CSV or Parquet) with one clear error for anything wrong with it,
shared by the scanner and the loop audit; light to import (pandas only)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from failwell.errors import InputError, close_matches


def read_file(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A CSV or Parquet file as a frame; ``columns``: only these, checked against the header
    before anything else is read (a wide log reads in seconds)."""
    if not path.exists():
        raise InputError(f"No such file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a directory; give a CSV or Parquet file.")
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            if columns is not None:
                import pyarrow.parquet as pq

                require_columns(pq.read_schema(path).names, columns, str(path))
            return pd.read_parquet(path, columns=columns)
        if suffix in {".csv", ".txt", ".tsv"} or suffix == "":
            sep = "\t" if suffix == ".tsv" else ","
            if columns is not None:
                header = pd.read_csv(path, sep=sep, nrows=0).columns
                require_columns(list(header), columns, str(path))
            return pd.read_csv(path, sep=sep, usecols=columns, low_memory=False)
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{path} is empty.") from None
    except Exception as exc:
        raise InputError(f"Could not read {path}: {exc}") from exc
    raise InputError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet.")


def require_columns(have: list[str], wanted: list[str], label: str) -> None:
    """One error naming the first missing column, with the closest names or the columns."""
    for column in wanted:
        if column not in have:
            hint = close_matches(column, have)
            raise InputError(f"{label} has no column {column!r}"
                             + (f"; did you mean {', '.join(map(repr, hint))}?" if hint
                                else f"; it has {', '.join(map(repr, have[:12]))}"
                                + ("..." if len(have) > 12 else "") + "."))
