"""Model recipes: how to build the (unfitted) estimator every mitigation trains the same way.

A recipe is a built-in name (``logistic``, ``gbm``) or ``module:function`` returning an
unfitted scikit-learn estimator that takes a DataFrame of the feature columns. The built-ins
one-hot encode text columns themselves, so a CSV needs no preparation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from failwell.errors import InputError, import_spec

BUILTIN = ("gbm", "logistic")


def categorical_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
            or pd.api.types.is_bool_dtype(frame[c])]


def make_estimator(recipe: str | Callable[[], Any] | Any, features: pd.DataFrame,
                   seed: int = 0) -> Any:
    """A fresh, unfitted estimator for ``features`` (a DataFrame of the model's inputs)."""
    from sklearn.base import clone

    if callable(recipe) and not hasattr(recipe, "fit"):
        return _checked(recipe(), repr(recipe))
    if hasattr(recipe, "fit"):
        return clone(recipe)
    if not isinstance(recipe, str):
        raise InputError(f"a model recipe is a name ({', '.join(BUILTIN)}), module:function "
                         f"or an estimator, not {type(recipe).__name__}.")
    if recipe in BUILTIN:
        return _builtin(recipe, features, seed)
    factory = import_spec(recipe, what="model recipe", usage=(
        f"--model-recipe {recipe!r}: use {' or '.join(BUILTIN)}, or module:function "
        "returning an unfitted scikit-learn estimator."))
    return _checked(factory(), recipe)


def _checked(estimator: Any, name: str) -> Any:
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise InputError(f"the model recipe {name} returned {type(estimator).__name__}, not an "
                         "estimator with fit and predict.")
    return estimator


def _builtin(name: str, features: pd.DataFrame, seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = categorical_columns(features)
    numeric = [c for c in features.columns if c not in categorical]
    if name == "gbm":  # the demo's race-blind model
        encode = ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), categorical)],
            remainder="passthrough")
        model = HistGradientBoostingClassifier(max_iter=100, max_depth=3, random_state=seed)
    else:
        encode = ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
             ("num", StandardScaler(), numeric)])
        model = LogisticRegression(max_iter=2000)
    return Pipeline([("encode", encode), ("model", model)])


def fit(estimator: Any, x: pd.DataFrame, y: np.ndarray,
        sample_weight: np.ndarray | None = None) -> Any:
    """Fit with sample weights routed to a pipeline's last step; a clear error when the
    estimator takes none."""
    if sample_weight is None:
        return estimator.fit(x, y)
    from sklearn.pipeline import Pipeline

    try:
        if isinstance(estimator, Pipeline):
            return estimator.fit(x, y, **{f"{estimator.steps[-1][0]}__sample_weight":
                                          sample_weight})
        return estimator.fit(x, y, sample_weight=sample_weight)
    except TypeError as exc:
        if "sample_weight" in str(exc):
            raise NotApplicable(f"the model takes no sample weights ({exc})") from None
        raise


class NotApplicable(Exception):
    """A mitigation that cannot apply to this data or model; it is skipped with the reason."""


class Routed(ClassifierMixin, BaseEstimator):
    """An estimator whose ``fit(X, y, sample_weight=...)`` reaches a pipeline's last step,
    as fairlearn's reductions call it."""

    def __init__(self, recipe: Any = "gbm", features: pd.DataFrame | None = None,
                 seed: int = 0):
        self.recipe, self.features, self.seed = recipe, features, seed

    def fit(self, x: pd.DataFrame, y: Any, sample_weight: np.ndarray | None = None) -> Routed:
        columns = self.features if self.features is not None else x
        self.model_ = fit(make_estimator(self.recipe, columns, self.seed), x, np.asarray(y),
                          sample_weight)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.model_.predict(x)

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_proba(x)
