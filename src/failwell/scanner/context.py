"""The scan context: one dataset, one optional model, and predictions shared by detectors.

Predictions are computed once per input variant (the original rows, a counterfactual swap, a
perturbation...) in batches, and cached under a key, so detectors never predict twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from failwell.checks import SkipDetector
from failwell.errors import ModelError
from failwell.scanner.models import ModelAdapter
from failwell.scanner.subject import Dataset


@dataclass
class Predictions:
    decisions: np.ndarray  # 0/1 int8
    scores: np.ndarray | None  # P(positive), or any score column (--score) thresholded

    @property
    def probabilities(self) -> np.ndarray | None:
        """The scores if they are probabilities in [0, 1] (a decile score is not)."""
        s = self.scores
        if s is None or len(s) == 0 or np.nanmin(s) < 0 or np.nanmax(s) > 1:
            return None
        return s


    @classmethod
    def of(cls, model: ModelAdapter, out: np.ndarray) -> Predictions:
        """A model's raw output as decisions (probabilities cut at 0.5) and scores."""
        if model.probabilistic:
            return cls((out >= 0.5).astype(np.int8), out)
        return cls(out.astype(np.int8), None)


def model_columns(dataset: Dataset, model: ModelAdapter | None) -> list[str]:
    """The columns the model reads: its own list, else the features and text columns."""
    if model is not None and model.input_columns is not None:
        return model.input_columns
    return dataset.features + dataset.text


def call_model(model: ModelAdapter, inputs: pd.DataFrame, size: int,
               where: str = "the scan") -> np.ndarray:
    """``model.predict`` in batches of ``size`` rows; a crash is one :class:`ModelError`."""
    try:
        parts = [model.predict(inputs.iloc[i : i + size]) for i in range(0, len(inputs), size)]
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(
            f"{model.name}.predict failed in {where} on a batch of {min(size, len(inputs))} "
            f"rows: {type(exc).__name__}: {exc}"
        ) from exc
    return np.concatenate(parts) if parts else np.zeros(0)


@dataclass
class ScanConfig:
    """Knobs shared by all detectors; per-detector knobs live on the detector itself."""

    seed: int = 0
    # Rows sampled for every re-predicted variant (counterfactual swaps, perturbations,
    # permutations). 5,000 rows put a flip rate's 95 % interval within +-1.4 points (+-0.6
    # at a 5 % rate) and an AUC within about +-0.015, while a 30-column scan then predicts
    # ~35 variants x 5,000 rows instead of 35 x the whole table.
    max_model_rows: int = 5_000
    batch_size: int = 65_536
    # Partitioned scans (failwell.scale): rows sampled across partitions for the detectors
    # that re-predict variants (100,000 put a sampled AUC within about +-0.005), and rows
    # read per batch (1M rows of 30 numeric columns are ~250 MB in pandas).
    sample_rows: int = 100_000
    batch_rows: int = 1_000_000
    min_group_size: int = 30
    max_ci_width: float = 0.2  # a group whose 95% interval is wider is "uncertain"
    alpha: float = 0.05
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference: pd.DataFrame | None = None  # training data, for overlap checks

    def uncertain(self, n: float, ci: tuple[float, float] | list[float]) -> bool:
        """Too few rows or too wide an interval to compare this group with others."""
        return bool(n < self.min_group_size or ci[1] - ci[0] > self.max_ci_width)


class ScanContext:
    def __init__(self, dataset: Dataset, model: ModelAdapter | None, config: ScanConfig):
        self.dataset = dataset
        self.model = model
        self.config = config
        self.metrics: dict[str, float] = {}
        self.diagnostics: dict[str, Any] = {}  # evidence kept whether or not anything is flagged
        self.model_calls = 0
        self.rows_predicted = 0
        self.model_seconds = 0.0
        self._cache: dict[tuple, Predictions] = {}
        self._sample: np.ndarray | None = None
        self.current_detector = ""
        # A partitioned scan's context holds a uniform sample of the table: the sample rows'
        # numbers in the whole table, and how many rows the whole has.
        self.positions: np.ndarray | None = None
        self.total_rows = dataset.n_rows

    def row_positions(self) -> np.ndarray:
        """Each row's number in the whole table (a partitioned scan's sample skips some)."""
        if self.positions is None:
            return np.arange(self.dataset.n_rows, dtype=np.int64)
        return self.positions

    # -- requirements -------------------------------------------------------------------
    def require_model(self) -> ModelAdapter:
        if self.model is None:
            raise SkipDetector("needs a model that can be called (--model); predictions come "
                               "from a column")
        return self.model

    def require_protected(self) -> list[str]:
        if not self.dataset.protected:
            raise SkipDetector("no protected attribute given (--protected COL)")
        return self.dataset.protected

    def require_probabilities(self) -> np.ndarray:
        base = self.base()
        if base.scores is None:
            raise SkipDetector("needs probability scores (a model with predict_proba or --score)")
        if base.probabilities is None:
            raise SkipDetector("scores are not probabilities in [0, 1]")
        return base.probabilities

    # -- inputs -------------------------------------------------------------------------
    @property
    def model_columns(self) -> list[str]:
        return model_columns(self.dataset, self.model)

    def model_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The columns the model reads (the runner has checked that they all exist)."""
        return frame[self.model_columns]

    def sample_index(self) -> np.ndarray:
        """The same deterministic row sample for every detector that re-predicts variants."""
        if self._sample is None:
            n, limit = self.dataset.n_rows, self.config.max_model_rows
            if n <= limit:
                self._sample = np.arange(n)
            else:
                rng = np.random.default_rng(self.config.seed)
                self._sample = np.sort(rng.choice(n, size=limit, replace=False))
        return self._sample

    def sample_frame(self) -> pd.DataFrame:
        idx = self.sample_index()
        frame = self.dataset.frame
        return frame if len(idx) == len(frame) else frame.iloc[idx].reset_index(drop=True)

    # -- predictions --------------------------------------------------------------------
    def base(self) -> Predictions:
        """Predictions on the data as given: from the model, or from the role columns."""
        if ("base",) in self._cache:
            return self._cache[("base",)]
        given = self.dataset.given_predictions()
        if given is not None and self.model is None:
            preds = Predictions(decisions=given[0], scores=given[1])
            self._cache[("base",)] = preds
            return preds
        if self.model is None:
            raise SkipDetector("needs predictions: give --model, --prediction or --score")
        return self.predict(("base",), self.dataset.frame)

    def base_on_sample(self) -> Predictions:
        base = self.base()
        idx = self.sample_index()
        if len(idx) == len(base.decisions):
            return base
        return Predictions(
            decisions=base.decisions[idx],
            scores=None if base.scores is None else base.scores[idx],
        )

    def predict(self, key: tuple, frame: pd.DataFrame) -> Predictions:
        """Predict ``frame`` (a variant of the data) once, in batches, cached under ``key``."""
        return self.predict_many({key: frame})[key]

    def predict_many(self, variants: dict[tuple, pd.DataFrame]) -> dict[tuple, Predictions]:
        """Predict several variants in as few model calls as possible.

        The uncached variants are stacked and sent in batches of ``batch_size`` rows, so 30
        permuted copies of a 5,000-row sample cost 3 calls, not 30: with a model that
        preprocesses per call (a one-hot wrapper, a Pipeline), the call overhead dominates.
        """
        todo = {k: v for k, v in variants.items() if k not in self._cache}
        if todo:
            model = self.require_model()
            stacked = pd.concat([self.model_input(v) for v in todo.values()], ignore_index=True,
                                copy=False) if len(todo) > 1 else \
                self.model_input(next(iter(todo.values())))
            out = self._call(model, stacked)
            start = 0
            for key, frame in todo.items():
                self._cache[key] = Predictions.of(model, out[start : start + len(frame)])
                start += len(frame)
        return {k: self._cache[k] for k in variants}

    def _call(self, model: ModelAdapter, inputs: pd.DataFrame) -> np.ndarray:
        size = self.config.batch_size
        where = f"detector {self.current_detector!r}" if self.current_detector else "the scan"
        started = time.perf_counter()
        try:
            out = call_model(model, inputs, size, where)
        finally:
            self.model_seconds += time.perf_counter() - started
        self.model_calls += -(-len(inputs) // size)  # batches of ``size`` rows
        self.rows_predicted += len(inputs)
        return out

    def params_for(self, name: str) -> dict[str, Any]:
        return dict(self.config.params.get(name, {}))

    def log_metric(self, name: str, value: float) -> None:
        """Summary numbers kept in the scan result (what ``failwell compare`` reads)."""
        self.metrics[name] = float(value)

