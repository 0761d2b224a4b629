"""Mergeable partial aggregates: how a detector runs over data that never sits in one frame.

An *aggregating* detector splits its work in two, like a Spark aggregator or a Dask
reduction: ``partial(batch, stage)`` turns one batch of rows into small sums (counts per
group, per slice, per score bin), and ``finish(ctx, stage, merged)`` judges the merged sums.
``finish`` may instead return a new *stage* (bins fixed, columns chosen) and ask for
another pass over the data. The in-memory scan runs the same code on a single batch (the
whole table), so the partitioned scans give the same answers by construction.

:func:`merge` combines two partials of the same shape: numbers and arrays add up, count
tables indexed by keys add up by key, dicts merge by key, and objects with a ``merge``
method (extremes, samples, failures) merge themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from failwell.findings import Finding


@dataclass
class Batch:
    """Some rows of the scanned table, their predictions and their global row numbers."""

    dataset: Any  # a Dataset over just these rows (same roles as the whole)
    decisions: np.ndarray | None
    scores: np.ndarray | None
    positions: np.ndarray  # int64 row numbers in the whole table

    @property
    def frame(self) -> pd.DataFrame:
        return self.dataset.frame

    @property
    def y(self) -> np.ndarray:
        return self.dataset.y


class Aggregating(Protocol):
    """A detector that can run over partitions (see the module docstring)."""

    name: str

    def start(self, ctx: Any) -> Any: ...  # the first stage, or raise SkipDetector

    def columns(self, ctx: Any, stage: Any) -> list[str]: ...  # what a pass must read

    def partial(self, batch: Batch, stage: Any) -> Any: ...

    def finish(self, ctx: Any, stage: Any, merged: Any) -> list[Finding] | Any: ...


def is_aggregating(detector: Any) -> bool:
    return all(hasattr(detector, a) for a in ("start", "columns", "partial", "finish"))


@dataclass
class Extremes:
    """Running minimum and maximum (NaN ignored); empty when nothing was seen."""

    low: float = np.inf
    high: float = -np.inf

    @classmethod
    def of(cls, values: np.ndarray | None) -> Extremes:
        if values is None or len(values) == 0 or np.isnan(values).all():
            return cls()
        return cls(float(np.nanmin(values)), float(np.nanmax(values)))

    def merge(self, other: Extremes) -> Extremes:
        return Extremes(min(self.low, other.low), max(self.high, other.high))

    @property
    def empty(self) -> bool:
        return self.low > self.high


@dataclass
class Failed:
    """A detector's partial that raised: merged partials keep the first failure."""

    message: str

    def merge(self, other: Any) -> Failed:
        return self


def merge(a: Any, b: Any) -> Any:
    """Combine two partials of the same shape (see the module docstring)."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, Failed) or isinstance(b, Failed):
        return a if isinstance(a, Failed) else b
    if isinstance(a, pd.DataFrame | pd.Series):  # before .merge: a frame has a join by that name
        return add_tables(a, b)
    if hasattr(a, "merge"):
        return a.merge(b)
    if isinstance(a, dict):
        return {k: merge(a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b])}
    if isinstance(a, tuple):
        return tuple(merge(x, y) for x, y in zip(a, b, strict=True))
    return a + b  # numbers and numpy arrays


def merge_all(parts: list[Any]) -> Any:
    """Pairwise merges in a balanced tree, so float sums stay as exact as a bincount's."""
    parts = list(parts)
    if not parts:
        return None
    while len(parts) > 1:
        parts = [merge(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def add_tables(a: pd.DataFrame | pd.Series, b: pd.DataFrame | pd.Series):
    """Two count tables indexed by keys, added key by key (missing keys kept as keys)."""
    both = pd.concat([a, b])
    levels = list(range(both.index.nlevels))
    return both.groupby(level=levels, dropna=False, sort=False).sum()


def run_in_memory(detector: Any, ctx: Any) -> list[Finding]:
    """The whole table as one batch, through the same stages a partitioned scan runs."""
    stage = detector.start(ctx)
    batch = whole_batch(ctx)
    while True:
        out = detector.finish(ctx, stage, detector.partial(batch, stage))
        if isinstance(out, list):
            return out
        stage = out


def whole_batch(ctx: Any) -> WholeBatch:
    """The scan context's table as one batch."""
    return WholeBatch(ctx)


class WholeBatch:
    """A :class:`Batch` over the whole in-memory table whose predictions are asked for only
    when a detector reads them: a model that fails then fails the detectors that need it,
    and the data audit, which does not, still runs."""

    def __init__(self, ctx: Any):
        self.ctx, self.dataset = ctx, ctx.dataset
        self.positions = np.arange(ctx.dataset.n_rows, dtype=np.int64)

    frame = Batch.frame
    y = Batch.y

    @property
    def decisions(self) -> np.ndarray | None:
        return self._base()[0]

    @property
    def scores(self) -> np.ndarray | None:
        return self._base()[1]

    def _base(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        from failwell.checks import SkipDetector

        try:
            base = self.ctx.base()  # computed once per scan, then cached by the context
        except SkipDetector:  # nothing to call: no model and no decision column
            return None, None
        return base.decisions, base.scores
