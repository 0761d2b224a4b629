"""A uniform row sample drawn across partitions, mergeable (bottom-k sampling).

Every row gets a pseudo-random key from its global row number and the seed (splitmix64), and
the sample is the k rows with the smallest keys: a uniform sample without replacement that
two partitions' samples merge into exactly, whatever the partitioning or the order of the
merges. Detectors that re-predict variants (counterfactual swaps, perturbations,
permutations, surrogates) run on it; it holds every row when the table has at most k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def row_keys(seed: int, positions: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) per row number (splitmix64), the same in every process."""
    with np.errstate(over="ignore"):
        z = positions.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass
class RowSample:
    frame: pd.DataFrame
    positions: np.ndarray
    keys: np.ndarray
    decisions: np.ndarray | None
    scores: np.ndarray | None
    size: int

    @classmethod
    def of(cls, frame: pd.DataFrame, positions: np.ndarray, decisions: np.ndarray | None,
           scores: np.ndarray | None, seed: int, size: int,
           below: float = 1.0) -> RowSample:
        """``below``: keep only keys under this cut (see :func:`key_cut`)."""
        keys = row_keys(seed, positions)
        keep = np.flatnonzero(keys < below) if below < 1 else np.arange(len(keys))
        if len(keep) > size:
            keep = np.sort(keep[np.argpartition(keys[keep], size - 1)[:size]])
        return cls(frame.iloc[keep].reset_index(drop=True), positions[keep], keys[keep],
                   None if decisions is None else decisions[keep],
                   None if scores is None else scores[keep], size)

    def merge(self, other: RowSample) -> RowSample:
        frame = pd.concat([self.frame, other.frame], ignore_index=True)
        joined = RowSample(frame, np.concatenate([self.positions, other.positions]),
                           np.concatenate([self.keys, other.keys]),
                           _cat(self.decisions, other.decisions),
                           _cat(self.scores, other.scores), self.size)
        return joined.ordered(keep=self.size)

    def ordered(self, keep: int | None = None) -> RowSample:
        """The (at most ``keep``) smallest keys, in row-number order."""
        idx = np.arange(len(self.keys))
        if keep is not None and len(idx) > keep:
            idx = np.argpartition(self.keys, keep - 1)[:keep]
        idx = idx[np.argsort(self.positions[idx], kind="stable")]
        return RowSample(self.frame.iloc[idx].reset_index(drop=True), self.positions[idx],
                         self.keys[idx],
                         None if self.decisions is None else self.decisions[idx],
                         None if self.scores is None else self.scores[idx], self.size)


def key_cut(size: int, rows: int) -> float:
    """A key below which the k smallest of ``rows`` keys lie but for a 1e-9 chance: 6
    standard deviations above k/rows. Partitions then keep ~k/P rows each instead of k,
    and should the cut ever fall short the sample is still uniform, only smaller."""
    if rows <= size:
        return 1.0
    share = size / rows
    return min(1.0, share * (1 + 6 / np.sqrt(size)) + 1e-12)


def _cat(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return None if a is None or b is None else np.concatenate([a, b])
