"""Shared fixtures: synthetic data with planted failures, and COMPAS from ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

REPO = Path(__file__).resolve().parents[1]


def people(n: int = 4000, *, seed: int = 0, label_bias: float = 0.0,
           zip_proxy: bool = False) -> pd.DataFrame:
    """Applicants with two real signals (skill, experience), a gender and a group.

    ``label_bias`` adds that much to the positive-label log-odds of gender 'M' (historical
    bias); ``zip_proxy`` adds a zip code that encodes ``group`` 90 % of the time.
    """
    rng = np.random.default_rng(seed)
    skill = rng.normal(0, 1, n)
    experience = rng.integers(0, 20, n)
    gender = rng.choice(["F", "M"], n)
    group = rng.choice(["a", "b"], n)
    logit = 1.5 * skill + 0.1 * (experience - 10) + label_bias * (gender == "M")
    hired = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"skill": skill, "experience": experience, "gender": gender,
                          "group": group, "hired": hired})
    if zip_proxy:
        same = rng.random(n) < 0.9
        frame["zip"] = np.where(same, np.where(group == "a", "10001", "20002"),
                                np.where(group == "a", "20002", "10001"))
    return frame


def fit_logistic(frame: pd.DataFrame, features: list[str], target: str = "hired"):
    cats = [c for c in features if frame[c].dtype == object or str(frame[c].dtype) == "str"
            or pd.api.types.is_string_dtype(frame[c])]
    nums = [c for c in features if c not in cats]
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), cats),
                             ("num", StandardScaler(), nums)])
    return make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(frame[features],
                                                                       frame[target])


@pytest.fixture(scope="session")
def compas_path() -> Path:
    path = REPO.parent / "shared" / "data" / "compas" / "compas-scores-two-years.csv"
    if not path.exists():
        pytest.fail(f"COMPAS data missing at {path}: ../shared must sit beside the repo")
    return path


@pytest.fixture(scope="session")
def compas(compas_path) -> pd.DataFrame:
    from failwell.demo import load_compas

    return load_compas(compas_path)
