"""Reading recommendation logs: only the named columns, validated once, as numpy arrays.

A log is one row per impression (an item shown, its reward, when, with what propensity).
Everything is checked here so the audit and the estimators can trust their arrays, and bad
input is one message (exit 2) that names the column, how many rows and the first of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from failwell.errors import InputError
from failwell.tables import read_file, require_columns


@dataclass
class Guardrail:
    """A metric that must not fall while the proxy is optimized (``lower``: smaller is
    better, e.g. returns or unsubscribes)."""

    column: str
    lower: bool = False

    @classmethod
    def parse(cls, text: str) -> Guardrail:
        name, _, direction = text.partition(":")
        if direction not in ("", "up", "higher", "down", "lower"):
            raise InputError(f"--guardrail {text!r}: write COLUMN, COLUMN:higher or "
                             "COLUMN:lower (which direction is better).")
        if not name:
            raise InputError("--guardrail needs a column name.")
        return cls(name, direction in ("down", "lower"))


@dataclass
class Logs:
    """Impressions as arrays: ``item`` codes into ``items``; optional columns are None."""

    source: str
    item: np.ndarray
    items: np.ndarray
    reward: np.ndarray
    time: np.ndarray | None = None  # datetime64[ns], UTC
    propensity: np.ndarray | None = None
    user: np.ndarray | None = None
    guardrails: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # numeric, e.g. context
    columns: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.item)

    @property
    def binary_reward(self) -> bool:
        return bool(np.isin(self.reward, (0.0, 1.0)).all())


def read_logs(source: str | Path | pd.DataFrame, *, item: str, reward: str,
              time: str | None = None, propensity: str | None = None,
              user: str | None = None, guardrails: list[Guardrail] | tuple = (),
              extra: list[str] | tuple = (), name: str = "logs") -> Logs:
    """Read and validate a log (CSV, Parquet or a DataFrame), keeping only the named
    columns (a 10-million-row log with 90 other columns reads in seconds). ``extra``:
    more numeric columns (a reward model's context)."""
    wanted = [c for c in (item, reward, time, propensity, user, *(g.column for g in guardrails),
                          *extra) if c]
    frame, label = _read(source, list(dict.fromkeys(wanted)), name)
    if frame.empty:
        raise InputError(f"{label} has no rows.")
    items_raw = frame[item]
    if items_raw.isna().any():
        _refuse(label, item, "has empty item ids", items_raw.isna().to_numpy())
    codes, uniques = pd.factorize(items_raw, sort=True)
    if len(uniques) < 2:
        raise InputError(f"{label}: every impression shows the same item "
                         f"({uniques[0]!r} in {item!r}); exposure concentration needs at "
                         "least two items.")
    logs = Logs(source=label, item=codes.astype(np.int64), items=np.asarray(uniques),
                reward=_numbers(frame, reward, label, "reward"),
                columns={"item": item, "reward": reward, "time": time,
                         "propensity": propensity, "user": user,
                         "guardrails": [g.column for g in guardrails]})
    if not np.any(logs.reward != 0):
        raise InputError(f"{label}: no rewards: every value of {reward!r} is 0, so the proxy "
                         "(the reward rate) cannot be estimated or compared.")
    if time:
        logs.time = parse_time(frame[time], label, time)
    if propensity:
        p = _numbers(frame, propensity, label, "propensity")
        bad = (p <= 0) | (p > 1)
        if bad.any():
            _refuse(label, propensity, "has propensities outside (0, 1] (a shown item's "
                    "probability of being shown cannot be 0 or above 1)", bad, frame[propensity])
        logs.propensity = p
    if user:
        logs.user = pd.factorize(frame[user])[0].astype(np.int64)
    for g in guardrails:  # empty = not recorded (dwell exists only after a click)
        logs.guardrails[g.column] = _numbers(frame, g.column, label, "guardrail",
                                             missing=True)
    for column in extra:
        logs.extra[column] = _numbers(frame, column, label, "context")
    return logs


def parse_time(column: pd.Series, label: str, name: str) -> np.ndarray:
    """datetime64[ns] (UTC) from datetimes, ISO strings or epoch numbers (seconds, or
    milli-/micro-/nanoseconds when the magnitude says so)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = pd.to_datetime(column, utc=True)
    elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.astype(float)
        top = float(np.nanmax(np.abs(values))) if values.notna().any() else 0.0
        unit = "ns" if top > 1e17 else "us" if top > 1e14 else "ms" if top > 1e11 else "s"
        parsed = pd.to_datetime(values, unit=unit, utc=True, errors="coerce")
    else:
        parsed = pd.to_datetime(column.astype("string"), utc=True, errors="coerce",
                                format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        _refuse(label, name, "has times that cannot be parsed (use ISO 8601 or epoch "
                "seconds)", bad, column)
    return parsed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _numbers(frame: pd.DataFrame, column: str, label: str, role: str,
             missing: bool = False) -> np.ndarray:
    """Floats; empty cells are refused unless ``missing`` (then NaN: not recorded)."""
    raw = frame[column]
    values = pd.to_numeric(raw.astype("object") if pd.api.types.is_bool_dtype(raw) else raw,
                           errors="coerce").astype(float).to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if missing:
        bad &= raw.notna().to_numpy()  # text or infinity, not an empty cell
        if np.isnan(values).all():
            raise InputError(f"{label}: {column!r} has no {role} values at all.")
    if bad.any():
        what = "that are not numbers" if missing else "that are empty or not numbers"
        _refuse(label, column, f"has {role} values {what}", bad, raw)
    return values


def _refuse(label: str, column: str, what: str, bad: np.ndarray,
            values: pd.Series | None = None) -> None:
    first = int(np.flatnonzero(bad)[0])
    value = values.iloc[first] if values is not None else None
    value = value.item() if isinstance(value, np.generic) else value
    shown = f" ({value!r})" if values is not None else ""
    raise InputError(f"{label}: {column!r} {what}: {int(bad.sum()):,} row(s), the first at "
                     f"row {first + 1}{shown}.")


def _read(source: str | Path | pd.DataFrame, columns: list[str],
          name: str) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        require_columns(list(source.columns), columns, f"the {name} frame")
        return source[columns].reset_index(drop=True), f"the {name} frame"
    return read_file(Path(source), columns), str(source)
