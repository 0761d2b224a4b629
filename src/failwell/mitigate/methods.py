"""The mitigations, each a function from the training split to a deployable model.

Every method trains the same recipe on the same training rows, changing one thing: the rows'
weights, the rows themselves, the features, or the decision rule. A method that cannot apply
raises :class:`NotApplicable` with the reason, and the comparison goes on without it.

- ``reweighing``: Kamiran & Calders weights, group and label independent (our function);
- ``resampling``: the same, by drawing rows (for models that take no weights);
- ``smote``: synthetic rows for every (group, label) cell smaller than the largest, by
  imbalanced-learn's SMOTE-NC (SMOTE when every feature is a number), as Fair-SMOTE does
  (Chakraborty et al. 2021): new minority data, not copies;
- ``exponentiated-gradient``: fairlearn's reduction under equalized odds;
- ``threshold-optimizer``: fairlearn's per-group thresholds under equalized odds (it needs
  the protected attribute when deciding, which many jurisdictions forbid);
- ``remove-proxy``: drop the features that stand in for a protected attribute (Cramér's V
  >= 0.3, as the proxy detector judges) and protected attributes that are model inputs;
- ``counterfactual-augmentation``: add a copy of the training rows with each protected
  attribute that the model reads swapped to another group, its proxies redrawn from that
  group (Kusner et al. 2017's counterfactual fairness, by data augmentation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from failwell.mitigate.recipes import NotApplicable, Routed, categorical_columns, fit
from failwell.mitigate.recipes import make_estimator as new_model

PROXY_V = 0.3  # the proxy detector's threshold


@dataclass
class Training:
    """What every method trains from: the same rows, features, recipe and seed."""

    frame: pd.DataFrame  # training rows, every column
    y: np.ndarray
    features: list[str]
    protected: list[str]
    recipe: Any
    seed: int = 0
    protected_at_prediction: bool = True
    fairness_attribute: str = ""  # what fairlearn's constraints are about

    @property
    def x(self) -> pd.DataFrame:
        return self.frame[self.features]

    def groups(self) -> np.ndarray:
        """One label per row for the intersection of the protected attributes."""
        return self.frame[self.protected].astype(str).agg(" | ".join, axis=1).to_numpy()


class Deployed:
    """A trained model as the scanner calls it: ``feature_names_in_`` names the columns it
    reads (the protected attribute too, when the method decides with it)."""

    def __init__(self, model: Any, features: list[str], *, sensitive: str | None = None,
                 seed: int = 0, note: str = ""):
        self.model, self.features, self.sensitive, self.seed = model, features, sensitive, seed
        self.feature_names_in_ = np.array(list(dict.fromkeys(
            features + ([sensitive] if sensitive else []))))
        self.classes_ = np.asarray(getattr(model, "classes_", [0, 1]))
        self.note = note
        if sensitive is None and hasattr(model, "predict_proba"):
            self.predict_proba = self._proba

    def _proba(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(x[self.features])

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        if self.sensitive:
            return self.model.predict(x[self.features], sensitive_features=x[self.sensitive],
                                      random_state=self.seed)
        return self.model.predict(x[self.features])


def baseline(t: Training) -> Deployed:
    return Deployed(fit(new_model(t.recipe, t.x, t.seed), t.x, t.y), t.features)


def reweighing(t: Training) -> Deployed:
    from failwell.mitigate import reweighing as weights

    w = weights(t.groups(), t.y)
    return Deployed(fit(new_model(t.recipe, t.x, t.seed), t.x, t.y, w), t.features,
                    note=f"weights {w.min():.2f} to {w.max():.2f} over "
                         f"{len(set(t.groups()))} group x label cells")


def resampling(t: Training) -> Deployed:
    from failwell.mitigate import resample_balanced

    rows = resample_balanced(t.groups(), t.y, seed=t.seed)
    x = t.x.iloc[rows].reset_index(drop=True)
    return Deployed(fit(new_model(t.recipe, x, t.seed), x, t.y[rows]), t.features,
                    note=f"{len(rows):,} rows drawn with replacement")


def smote(t: Training) -> Deployed:
    from failwell.errors import require

    over = require("imblearn.over_sampling", extra="mitigate", purpose="SMOTE")
    cell = pd.Series(t.groups()).astype(str) + " / " + pd.Series(t.y).astype(str)
    sizes = cell.value_counts()
    largest = int(sizes.iloc[0])
    grow = {c: largest for c, n in sizes.items() if 6 <= n < 0.8 * largest}
    if not grow:
        raise NotApplicable(f"no minority cell to grow: every group x label cell with 6 or "
                            f"more rows is within 80 % of the largest ({largest})")
    categorical = categorical_columns(t.x)
    x = t.x.reset_index(drop=True)
    if categorical:
        sampler = over.SMOTENC(categorical_features=[x.columns.get_loc(c) for c in categorical],
                               sampling_strategy=grow, random_state=t.seed, k_neighbors=5)
        kind = "SMOTE-NC"
    else:
        sampler = over.SMOTE(sampling_strategy=grow, random_state=t.seed, k_neighbors=5)
        kind = "SMOTE"
    xs, cells = sampler.fit_resample(x, cell.to_numpy())
    ys = np.array([c.rsplit(" / ", 1)[1] for c in cells], dtype=object)
    ys = pd.Series(ys).astype(pd.Series(t.y).dtype).to_numpy()
    xs = pd.DataFrame(xs, columns=x.columns).astype(x.dtypes.to_dict())
    return Deployed(fit(new_model(t.recipe, xs, t.seed), xs, ys), t.features,
                    note=f"{kind}: {len(xs) - len(x):,} synthetic rows in {len(grow)} cells")


def _fairness_attribute(t: Training) -> str:
    return t.fairness_attribute or t.protected[0]


def exponentiated_gradient(t: Training) -> Deployed:
    from failwell.errors import require

    reductions = require("fairlearn.reductions", extra="mitigate", purpose="fairlearn")
    attr = _fairness_attribute(t)
    reduction = reductions.ExponentiatedGradient(
        Routed(t.recipe, t.x, t.seed), reductions.EqualizedOdds(), max_iter=15)
    reduction.fit(t.x, t.y, sensitive_features=t.frame[attr])
    return Deployed(_Mixture(reduction), t.features,
                    note=f"equalized odds across {attr}, {len(reduction.predictors_)} models "
                         "mixed")


class _Mixture:
    """fairlearn's randomized classifier, scored by its probability of a positive decision."""

    def __init__(self, reduction: Any):
        self.reduction = reduction
        self.classes_ = np.array([0, 1])

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] >= 0.5).astype(int)

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        return self.reduction._pmf_predict(x)


def threshold_optimizer(t: Training) -> Deployed:
    from failwell.errors import require

    attr = _fairness_attribute(t)
    if not t.protected_at_prediction:
        raise NotApplicable(f"it decides with {attr!r}, which is not available when deciding "
                            "(--no-protected-at-prediction)")
    post = require("fairlearn.postprocessing", extra="mitigate", purpose="fairlearn")
    model = post.ThresholdOptimizer(estimator=Routed(t.recipe, t.x, t.seed),
                                    constraints="equalized_odds",
                                    predict_method="predict_proba", objective="accuracy_score")
    model.fit(t.x, t.y, sensitive_features=t.frame[attr])
    return Deployed(model, t.features, sensitive=attr, seed=t.seed,
                    note=f"per-{attr} thresholds (equalized odds); decides with {attr}")


def proxies_of(t: Training) -> dict[str, list[str]]:
    """Features that stand in for each protected attribute, as the proxy detector judges."""
    from failwell.scanner.detectors.proxies import find_proxies

    out = {}
    for attr in t.protected:
        candidates = [c for c in t.features if c != attr]
        found, _ = find_proxies(t.frame, attr, candidates, PROXY_V)
        out[attr] = list(found)
    return out


def remove_proxy(t: Training) -> Deployed:
    proxies = proxies_of(t)
    drop = sorted({c for cols in proxies.values() for c in cols}
                  | {a for a in t.protected if a in t.features})
    if not drop:
        raise NotApplicable(f"no feature is a proxy (Cramér's V >= {PROXY_V}) for "
                            f"{', '.join(t.protected)}, and none of them is a model input")
    keep = [c for c in t.features if c not in drop]
    if not keep:
        raise NotApplicable(f"every feature is a proxy or protected ({', '.join(drop)})")
    x = t.frame[keep]
    return Deployed(fit(new_model(t.recipe, x, t.seed), x, t.y), keep,
                    note=f"dropped {', '.join(drop)}")


def counterfactual_augmentation(t: Training) -> Deployed:
    rng = np.random.default_rng(t.seed)
    proxies = proxies_of(t)
    swapped = [a for a in t.protected if a in t.features or proxies[a]]
    if not swapped:
        raise NotApplicable(f"{', '.join(t.protected)} is neither a model input nor has a "
                            "proxy, so swapping it changes no training row")
    copies = []
    for attr in swapped:
        copy = t.frame.copy()
        values = copy[attr].dropna().unique()
        if len(values) < 2:
            continue
        other = {v: [w for w in values if w != v] for v in values}
        new = np.array([rng.choice(other[v]) if v in other else v for v in copy[attr]],
                       dtype=object)
        for column in proxies[attr]:  # a proxy's value redrawn from the new group's rows
            pools = {g: copy.loc[copy[attr] == g, column].to_numpy() for g in values}
            copy[column] = [rng.choice(pools[g]) if g in pools else v
                            for g, v in zip(new, copy[column], strict=True)]
        copy[attr] = pd.Series(new, index=copy.index).astype(t.frame[attr].dtype)
        copies.append(copy)
    if not copies:
        raise NotApplicable("every protected attribute takes a single value here")
    augmented = pd.concat([t.frame, *copies], ignore_index=True)
    y = np.concatenate([t.y] * (1 + len(copies)))
    x = augmented[t.features]
    changed = ", ".join(f"{a}" + (f" (and {', '.join(proxies[a])})" if proxies[a] else "")
                        for a in swapped)
    return Deployed(fit(new_model(t.recipe, x, t.seed), x, y), t.features,
                    note=f"{len(augmented) - len(t.frame):,} counterfactual rows: {changed} "
                         "swapped")


METHODS: dict[str, Callable[[Training], Deployed]] = {
    "reweighing": reweighing,
    "resampling": resampling,
    "smote": smote,
    "exponentiated-gradient": exponentiated_gradient,
    "threshold-optimizer": threshold_optimizer,
    "remove-proxy": remove_proxy,
    "counterfactual-augmentation": counterfactual_augmentation,
}
