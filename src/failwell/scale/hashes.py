"""Row hashes on Dask: shuffled by hash across the workers, never merged in one process.

Duplicate rows (and test rows found in the training data) are exact counts over distinct
row hashes, which do not shrink the way group counts do. On Dask each partition's compacted
hashes leave the reduction tree: :func:`strip` leaves a small :class:`HashRef` in their
place, :func:`frame` turns them into a (key, hash, count, first row) frame, and Dask's own
shuffle (``dask.dataframe``, peer to peer) sends each hash to one bucket. The data audit
then asks every bucket for its counts (:meth:`ShuffledHashes.summarize`), and only those
few numbers come back.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from failwell.scanner.duplicates import (
    EXAMPLES,
    RowHashes,
    compact,
    duplicate_summary,
    duplicates_in,
)

META = pd.DataFrame({"key": pd.Series([], dtype=np.uint32), "h": pd.Series([], dtype=np.uint64),
                     "c": pd.Series([], dtype=np.int64), "f": pd.Series([], dtype=np.int64)})


def _code(path: str) -> int:
    """A path's 4-byte tag in the shuffled table (the same in every process)."""
    return zlib.crc32(path.encode())


@dataclass
class HashRef:
    """Where a partial held row hashes; keeps the duplicates found inside partitions."""

    key: str
    examples: np.ndarray

    def merge(self, other: HashRef) -> HashRef:
        both = np.sort(np.concatenate([self.examples, other.examples]))[:EXAMPLES]
        return HashRef(self.key, both)


def _walk(obj: Any, fn, path: str = "") -> Any:
    if isinstance(obj, dict):
        return {k: _walk(v, fn, f"{path}/{k}") for k, v in obj.items()}
    return fn(path, obj)


def strip(partial: Any) -> Any:
    return _walk(partial, lambda path, v: HashRef(path, v.examples)
                 if isinstance(v, RowHashes) else v)


def frame(partial: Any) -> pd.DataFrame:
    found: list[pd.DataFrame] = []

    def grab(path: str, v: Any) -> Any:
        if isinstance(v, RowHashes) and len(v.hashes):
            found.append(pd.DataFrame({"key": np.full(len(v.hashes), _code(path), np.uint32),
                                       "h": v.hashes, "c": v.counts, "f": v.first}))
        return v

    _walk(partial, grab)
    return pd.concat(found, ignore_index=True) if found else META.copy()


def shuffled(client: Any, merged: Any, frames: list) -> Any:
    """Replace the merged partial's HashRefs by handles on the shuffled hashes."""
    refs: list[HashRef] = []
    _walk(merged, lambda path, v: refs.append(v) if isinstance(v, HashRef) else None)
    if not refs:
        return merged
    import dask.dataframe as dd

    table = dd.from_delayed(frames, meta=META, verify_meta=False)
    table = client.persist(table.shuffle(on="h", npartitions=max(1, len(frames))))
    return _walk(merged, lambda path, v: ShuffledHashes(client, table, v.key, v.examples)
                 if isinstance(v, HashRef) else v)


@dataclass
class ShuffledHashes:
    """Distinct row hashes held by the workers, one bucket per shuffled partition."""

    client: Any
    table: Any  # the persisted, shuffled dask DataFrame
    key: str
    examples: np.ndarray

    def summarize(self, fn, *args: Any) -> list[Any]:
        import dask

        tasks = [dask.delayed(_summarize)(part, self.key, fn, args)
                 for part in self.table.to_delayed()]
        return list(self.client.gather(self.client.compute(tasks)))

    def duplicate_summary(self) -> tuple[int, list[int]]:
        return duplicate_summary(self.summarize(duplicates_in), self.examples)


def _summarize(part: pd.DataFrame, key: str, fn, args: tuple) -> Any:
    mine = part[part["key"] == _code(key)]
    hashes = compact(mine["h"].to_numpy(np.uint64), mine["c"].to_numpy(np.int64),
                     mine["f"].to_numpy(np.int64), np.zeros(0, np.int64))
    return fn(hashes, *args)
