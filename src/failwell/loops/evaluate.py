"""Off-policy evaluation of a candidate policy on a log file: the glue between the log
reader, a candidate (uniform, the top K items, or the user's own callable) and ``ope``.

A candidate that learns (``top:K``, a callable) learns from the earliest ``train_fraction``
of the rows and is evaluated on the rest, so it is never scored on the clicks it was built
from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from failwell.errors import InputError, import_spec
from failwell.loops import ope
from failwell.loops.logs import read_logs

MAX_CELLS = 50_000_000  # rounds x items held as the candidate's probabilities (400 MB)


def evaluate_candidate(logs: str | Path | pd.DataFrame, *, item: str, reward: str,
                       propensity: str | None, candidate: str = "uniform",
                       time: str | None = None, context: list[str] | tuple = (),
                       train_fraction: float = 0.5, estimators: list[str] | None = None,
                       confidence: float = 0.95, method: str = "normal",
                       seed: int = 0) -> dict[str, Any]:
    """Estimates of ``candidate``'s reward per round, with the logging policy's own."""
    if not propensity:
        raise InputError("IPS, SNIPS and DR all need the logging policy's propensity of each "
                         "shown item: give --propensity COLUMN (a log without them supports "
                         "`failwell loop audit`, not off-policy estimates).")
    if not 0 < train_fraction < 1:
        raise InputError(f"train_fraction must be between 0 and 1, not {train_fraction}.")
    data = read_logs(logs, item=item, reward=reward, time=time, propensity=propensity,
                     extra=list(context))
    order = np.argsort(data.time, kind="stable") if data.time is not None else \
        np.arange(data.n)
    n_items = len(data.items)
    learns = candidate != "uniform"
    cut = round(train_fraction * data.n) if learns else 0
    train, rows = order[:cut], order[cut:]
    if learns and (len(train) == 0 or len(rows) == 0):
        raise InputError(f"{data.n} rows cannot be split into a training and an evaluation "
                         "part; give more rows.")
    if len(rows) * n_items > MAX_CELLS:
        raise InputError(f"{len(rows):,} rounds x {n_items:,} items is more than "
                         f"{MAX_CELLS:,} probabilities to hold; evaluate on a sample of rows.")
    dist = _candidate(candidate, data, train, rows)
    names = list(estimators or ope.ESTIMATORS)
    q = None
    if "dr" in names:
        x = (np.column_stack([data.extra[c][rows] for c in context]) if context
             else np.zeros((len(rows), 1)))
        q = ope.fit_reward_model(x, data.item[rows], data.reward[rows], n_items, seed=seed)
    found = ope.estimate(data.reward[rows], data.item[rows], data.propensity[rows], dist,
                         estimated_rewards=q, estimators=names, confidence=confidence,
                         method=method, seed=seed)  # type: ignore[arg-type]
    return {"candidate": candidate, "evaluated_rows": len(rows), "training_rows": len(train),
            "items": n_items, "logged_reward": float(data.reward[rows].mean()),
            "estimates": [e.to_dict() for e in found], "source": data.source}


def _candidate(spec: str, data, train: np.ndarray, rows: np.ndarray) -> np.ndarray:
    n_items = len(data.items)
    if spec == "uniform":
        return ope.uniform(len(rows), n_items)
    if spec.startswith("top:"):
        k = spec[4:]
        if not k.isdigit() or not 1 <= int(k) <= n_items:
            raise InputError(f"--candidate {spec!r}: K must be a whole number from 1 to "
                             f"{n_items} (the items in the log).")
        shown = np.bincount(data.item[train], minlength=n_items)
        won = np.bincount(data.item[train], weights=data.reward[train], minlength=n_items)
        prior = float(data.reward[train].mean())
        rate = (won + 10 * prior) / (shown + 10)  # an item shown twice is not a hit
        return ope.from_scores(np.broadcast_to(rate, (len(rows), n_items)), k=int(k))
    fn = import_spec(spec, what="candidate",
                     usage=f"--candidate {spec!r}: use 'uniform', 'top:K' or module:function.")
    frame = pd.DataFrame({"item": data.items[data.item[rows]], "row": rows})
    history = pd.DataFrame({"item": data.items[data.item[train]],
                            "reward": data.reward[train]})
    try:
        dist = np.asarray(fn(frame, history, list(data.items)), dtype=float)
    except Exception as exc:
        raise InputError(f"the candidate {spec!r} failed: {type(exc).__name__}: {exc}") \
            from None
    if dist.shape != (len(rows), n_items):
        raise InputError(f"the candidate {spec!r} returned shape {dist.shape}; it must give "
                         f"({len(rows)}, {n_items}): one probability per evaluation row and "
                         "item, in the order of the item list it was given.")
    return dist
