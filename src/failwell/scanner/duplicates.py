"""Exact duplicate counts over partitions: row hashes merged by value, or spilled to disk.

A partition's rows become (hash, first row, count) triples plus a few example duplicate
rows; two such sets merge exactly. That costs 24 bytes per *distinct* row where the merge
happens, so a streaming scan on one machine (:func:`spilling`) writes the hashes to 64
bucket files instead and counts one bucket at a time: memory stays bounded by the largest
bucket, about 1/64 of 16 bytes per row.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

EXAMPLES = 10
BUCKETS = 64
_SPILL: ContextVar[Path | None] = ContextVar("failwell_hash_spill", default=None)


@dataclass
class RowHashes:
    """Distinct row hashes with their counts and first rows; mergeable."""

    hashes: np.ndarray  # sorted distinct uint64
    counts: np.ndarray  # int64
    first: np.ndarray  # int64: the lowest row number with this hash
    examples: np.ndarray  # int64: the lowest row numbers that repeat an earlier row
    spill: Path | None = field(default=None, repr=False)
    rows: int = 0

    @classmethod
    def of(cls, hashes: np.ndarray, positions: np.ndarray) -> RowHashes:
        """One batch's hashes; written to the spill buckets when a streaming scan set them."""
        spill = _SPILL.get()
        if spill is not None:
            _append(spill, hashes, positions)
            return cls(*_empty(), spill=spill, rows=len(hashes))
        return compact(hashes.astype(np.uint64), np.ones(len(hashes), np.int64),
                       positions.astype(np.int64), np.zeros(0, np.int64))

    def merge(self, other: RowHashes) -> RowHashes:
        if self.spill is not None or other.spill is not None:
            return RowHashes(*_empty(), spill=self.spill or other.spill,
                             rows=self.rows + other.rows)
        return compact(np.concatenate([self.hashes, other.hashes]),
                        np.concatenate([self.counts, other.counts]),
                        np.concatenate([self.first, other.first]),
                        np.concatenate([self.examples, other.examples]))

    def parts(self) -> Iterator[RowHashes]:
        """The merged hashes, one spill bucket at a time (or all at once in memory)."""
        if self.spill is None:
            yield self
            return
        for b in range(BUCKETS):
            yield compact(*_read(self.spill, b))

    def summarize(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        """``fn(part, *args)`` for each part of the merged hashes (see :meth:`parts`); a
        Dask scan's shuffled hashes answer the same call on the workers."""
        return [fn(part, *args) for part in self.parts()]

    def duplicate_summary(self) -> tuple[int, list[int]]:
        """(rows that repeat an earlier row, the lowest of those row numbers)."""
        return duplicate_summary(self.summarize(duplicates_in), self.examples[:0])


def duplicate_summary(found: list[tuple[int, np.ndarray]], examples: np.ndarray
                      ) -> tuple[int, list[int]]:
    """Per-part (duplicates, example rows) and examples found elsewhere, combined."""
    examples = np.concatenate([examples, *(e for _, e in found)])
    return sum(d for d, _ in found), np.sort(examples)[:EXAMPLES].tolist()


def duplicates_in(part: RowHashes) -> tuple[int, np.ndarray]:
    return int(part.counts.sum() - len(part.hashes)), part.examples


def _empty() -> tuple[np.ndarray, ...]:
    return (np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64),
            np.zeros(0, np.int64))


def compact(hashes: np.ndarray, counts: np.ndarray, first: np.ndarray,
             examples: np.ndarray) -> RowHashes:
    """Merge equal hashes: counts add, the lowest first row wins and the others' first rows
    become duplicate examples."""
    order = np.lexsort((first, hashes))
    h, c, f = hashes[order], counts[order], first[order]
    new = np.ones(len(h), bool)
    new[1:] = h[1:] != h[:-1]
    starts = np.flatnonzero(new)
    losers = f[~new]
    examples = np.sort(np.concatenate([examples, losers]))[:EXAMPLES]
    return RowHashes(h[new], np.add.reduceat(c, starts) if len(c) else c, f[new], examples)


@contextlib.contextmanager
def spilling(directory: Path | None = None) -> Iterator[Path]:
    """Within this block, :meth:`RowHashes.of` writes to bucket files in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="failwell-hashes-", dir=directory) as tmp:
        token = _SPILL.set(Path(tmp))
        try:
            yield Path(tmp)
        finally:
            _SPILL.reset(token)


def _append(spill: Path, hashes: np.ndarray, positions: np.ndarray) -> None:
    h = hashes.astype(np.uint64)
    bucket = (h >> np.uint64(58)).astype(np.int64)
    order = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[order], np.arange(BUCKETS + 1))
    records = np.empty(len(h), dtype=[("h", "<u8"), ("p", "<i8")])
    records["h"], records["p"] = h[order], positions[order]
    for b in range(BUCKETS):
        if bounds[b + 1] > bounds[b]:
            with (spill / f"{b:02d}.bin").open("ab") as fh:
                records[bounds[b]:bounds[b + 1]].tofile(fh)


def _read(spill: Path, bucket: int) -> tuple[np.ndarray, ...]:
    path = spill / f"{bucket:02d}.bin"
    if not path.exists():
        return _empty()
    records = np.fromfile(path, dtype=[("h", "<u8"), ("p", "<i8")])
    return (records["h"], np.ones(len(records), np.int64), records["p"],
            np.zeros(0, np.int64))
