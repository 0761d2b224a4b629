"""Model functions the Dask workers import by name (module:function), for the scale tests.

The scale test modules put this folder on ``sys.path``; LocalCluster's worker processes
inherit it, as they would a user's installed package.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd


def make_case(n: int, seed: int = 7) -> pd.DataFrame:
    """The scale tests' decision log, with a planted gap: region r3's scores are pushed
    down, the label is not, and the model over-predicts for age > 70 (a slice)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    age = rng.integers(18, 91, n)
    region = rng.choice([f"r{i}" for i in range(8)], n)
    gender = rng.choice(["f", "m"], n, p=[0.45, 0.55])
    truth = 1 / (1 + np.exp(-(0.9 * x1 - 0.6 * x2)))
    label = (rng.random(n) < truth).astype(np.int8)
    z = 0.9 * x1 - 0.6 * x2 - 1.2 * (region == "r3") + 1.5 * (age > 70)
    score = 1 / (1 + np.exp(-z))
    channel = rng.choice(["web", "branch", "phone", None], n, p=[0.6, 0.3, 0.07, 0.03])
    return pd.DataFrame({"x1": x1, "x2": x2, "age": age, "region": region, "gender": gender,
                         "channel": channel, "score": score, "label": label})


def logistic_score(frame: pd.DataFrame) -> np.ndarray:
    """A fixed scoring rule over the generated case's columns."""
    z = 0.9 * frame["x1"].to_numpy() - 0.6 * frame["x2"].to_numpy() + 0.02 * (
        frame["age"].to_numpy() - 45)
    return 1 / (1 + np.exp(-z))


def dies_once(frame: pd.DataFrame) -> np.ndarray:
    """Kills the worker process the first time any worker calls it (a marker file says
    whether that happened), then scores like :func:`logistic_score`."""
    marker = Path(os.environ["FAILWELL_TEST_KILL_MARKER"])
    if len(frame) > 1000 and not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)
    return logistic_score(frame)


def always_dies(frame: pd.DataFrame) -> np.ndarray:
    if len(frame) > 1000:
        os._exit(1)
    return logistic_score(frame)
