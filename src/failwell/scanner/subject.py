"""What is scanned: a table with column roles, and optionally a model that can be called.

Roles: ``target`` (the true outcome), ``prediction`` or ``score`` (what a black-box system
decided, when no model can be called), ``protected`` (attributes fairness is judged on),
``metadata`` (columns that must not drive decisions: site, scanner, marker), ``text``.
Every other column is a feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from failwell.errors import InputError, did_you_mean
from failwell.tables import read_file

BINARY_HELP = (
    "failwell scans binary classification: the target must have exactly two values "
    "(e.g. 0/1, yes/no). Use --positive-label to say which value is the positive outcome."
)


def read_table(source: Any, *, where: str | None = None) -> pd.DataFrame:
    """Read CSV or Parquet from a path, or accept a pandas or polars frame."""
    if isinstance(source, pd.DataFrame):
        frame = source
    elif type(source).__module__.startswith("polars"):
        frame = source.to_pandas()
    else:
        frame = read_file(Path(source))
    if frame.empty:
        raise InputError(f"{source if not hasattr(source, 'shape') else 'The table'} has no rows.")
    if where:
        try:
            frame = frame.query(where)
        except Exception as exc:
            raise InputError(f"--where {where!r} could not be applied: {exc}") from exc
        if frame.empty:
            raise InputError(f"No rows are left after --where {where!r}.")
    return frame.reset_index(drop=True)


@dataclass
class Dataset:
    """A table plus the role of each column. Build it with :func:`make_dataset`."""

    frame: pd.DataFrame
    target: str
    positive_label: Any
    prediction: str | None = None
    prediction_positive: tuple[Any, ...] = ()
    score: str | None = None
    threshold: float = 0.5
    protected: list[str] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    reference_groups: dict[str, str] = field(default_factory=dict)  # attr -> group label

    @cached_property
    def y(self) -> np.ndarray:
        """The target as 0/1 (computed once; every detector reads it)."""
        return (self.frame[self.target] == self.positive_label).to_numpy(dtype=np.int8)

    @cached_property
    def row_hashes(self) -> np.ndarray:
        """One 64-bit hash per row (values only): duplicates and the fingerprint share it."""
        return pd.util.hash_pandas_object(self.frame, index=False).to_numpy()

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    def given_predictions(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Decisions (0/1) and scores from columns, for black-box systems; None without them."""
        if self.score is not None:
            scores = self.frame[self.score].to_numpy(dtype=float)
            return (scores >= self.threshold).astype(np.int8), scores
        if self.prediction is not None:
            col = self.frame[self.prediction]
            positive = self.prediction_positive or (self.positive_label,)
            return col.isin(list(positive)).to_numpy(dtype=np.int8), None
        return None

    def roles(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "positive_label": _jsonable(self.positive_label),
            "prediction": self.prediction,
            "prediction_positive": [_jsonable(v) for v in self.prediction_positive],
            "score": self.score,
            "threshold": self.threshold,
            "protected": self.protected,
            "metadata": self.metadata,
            "text": self.text,
            "features": self.features,
            "reference_groups": self.reference_groups,
        }


def make_dataset(
    data: Any,
    *,
    target: str,
    prediction: str | None = None,
    prediction_positive: tuple[Any, ...] | list[Any] = (),
    score: str | None = None,
    threshold: float | None = None,
    protected: list[str] | tuple[str, ...] = (),
    metadata: list[str] | tuple[str, ...] = (),
    text: list[str] | tuple[str, ...] = (),
    features: list[str] | None = None,
    positive_label: Any = None,
    where: str | None = None,
    reference_groups: dict[str, Any] | None = None,
) -> Dataset:
    """Check the roles against the table and return a :class:`Dataset`.

    Every problem is an :class:`InputError` that names the column and the close matches.
    """
    frame = read_table(data, where=where)
    if prediction is not None and score is not None:
        raise InputError("Give either --prediction or --score, not both.")
    named = [target, prediction, score, *protected, *metadata, *text, *(features or [])]
    for col in named:
        if col is not None:
            _check_column(frame, col)
    y_col = frame[target]
    if y_col.isna().any():
        n = int(y_col.isna().sum())
        raise InputError(
            f"Target column {target!r} has {n} missing value(s). Drop or fill those rows "
            f'first, e.g. --where "{target}.notna()".'
        )
    positive_label = _positive_label(y_col, positive_label)
    if score is not None:
        if not pd.api.types.is_numeric_dtype(frame[score]):
            raise InputError(f"Score column {score!r} must be numeric; it is {frame[score].dtype}.")
        if threshold is None:
            lo, hi = frame[score].min(), frame[score].max()
            if lo < 0 or hi > 1:
                raise InputError(
                    f"Score column {score!r} ranges {lo}..{hi}, not 0..1: give --threshold "
                    "(scores >= threshold are positive decisions)."
                )
            threshold = 0.5
    if prediction is not None and not prediction_positive:
        values = set(frame[prediction].dropna().unique().tolist())
        if positive_label not in values:
            raise InputError(
                f"Prediction column {prediction!r} has values {_fmt(values)}; say which mean a "
                "positive decision with --prediction-positive VALUE (repeatable)."
            )
    roles = {target, prediction, score}
    if features is None:
        features = [c for c in frame.columns if c not in roles and c not in text]
    return Dataset(
        frame=frame,
        target=target,
        positive_label=positive_label,
        prediction=prediction,
        prediction_positive=tuple(_coerce_like(frame[prediction], v) for v in prediction_positive)
        if prediction
        else (),
        score=score,
        threshold=0.5 if threshold is None else float(threshold),
        protected=list(protected),
        metadata=list(metadata),
        text=list(text),
        features=list(features),
        reference_groups=_reference_groups(frame, reference_groups or {}, list(protected)),
    )


def _reference_groups(frame: pd.DataFrame, given: dict[str, Any],
                      protected: list[str]) -> dict[str, str]:
    """Check each ``attr=value`` against the data; keep the group label the detectors use."""
    out = {}
    for attr, value in given.items():
        if attr not in protected:
            raise InputError(f"--reference-group {attr}={value}: {attr!r} is not a protected "
                             f"attribute; add --protected {attr}.")
        values = frame[attr].dropna().unique().tolist()
        coerced = _coerce_like(frame[attr], value)
        match = next((v for v in values if v == coerced or str(v) == str(value)), None)
        if match is None:
            hint = did_you_mean(str(value), [str(v) for v in values], cutoff=0.5)
            raise InputError(f"--reference-group {attr}={value}: no such value of {attr!r}."
                             f"{hint} Values: {_fmt(sorted(values, key=str), 12)}")
        out[attr] = str(match)
    return out


def _check_column(frame: pd.DataFrame, col: str) -> None:
    if col in frame.columns:
        return
    hint = did_you_mean(col, frame.columns, cutoff=0.5)
    raise InputError(
        f"Column {col!r} is not in the data.{hint} Columns: {_fmt(list(frame.columns), 12)}"
    )


def _positive_label(y: pd.Series, given: Any) -> Any:
    values = y.unique().tolist()
    if len(values) != 2:
        raise InputError(
            f"Target column {y.name!r} has {len(values)} distinct values "
            f"({_fmt(values)}). {BINARY_HELP}"
        )
    if given is not None:
        coerced = _coerce_like(y, given)
        if coerced not in values:
            raise InputError(
                f"--positive-label {given!r} is not a value of {y.name!r} ({_fmt(values)})."
            )
        return coerced
    as_set = set(values)
    for pos, pair in ((1, {0, 1}), (True, {True, False})):
        if as_set == pair:
            return pos
    lowered = {str(v).lower(): v for v in values}
    for word in ("yes", "true", "positive", "1"):
        if word in lowered:
            return lowered[word]
    raise InputError(
        f"Cannot tell which value of {y.name!r} is positive ({_fmt(values)}): "
        "give --positive-label."
    )


def _coerce_like(col: pd.Series, value: Any) -> Any:
    """Turn a CLI string into the column's own type ('1' -> 1 for an int column)."""
    if isinstance(value, str) and pd.api.types.is_numeric_dtype(col):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return value


def _fmt(values: Any, limit: int = 6) -> str:
    values = list(values)
    shown = ", ".join(repr(_jsonable(v)) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _jsonable(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
