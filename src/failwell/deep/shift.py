"""Domain shift: accuracy under corruption families (ImageNet-C style), drift between a
reference and a production dataset, and domain randomization for training loops.

Corruptions take images in [0, 1], shaped (N, C, H, W), with a severity from 1 to 5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage, stats

from failwell.errors import InputError
from failwell.findings import Finding, Metric, ScanResult, Severity
from failwell.scanner.detectors._common import mitigation_for


def _noise(x, s, rng):
    return np.clip(x + rng.normal(0, [0.04, 0.08, 0.12, 0.18, 0.26][s - 1], x.shape), 0, 1)


def _blur(x, s, rng):
    sigma = [0.4, 0.6, 0.8, 1.0, 1.3][s - 1]
    return ndimage.gaussian_filter(x, sigma=(0, 0, sigma, sigma))


def _brightness(x, s, rng):
    return np.clip(x + [0.1, 0.2, 0.3, 0.4, 0.5][s - 1], 0, 1)


def _contrast(x, s, rng):
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return np.clip((x - mean) * [0.75, 0.6, 0.45, 0.3, 0.2][s - 1] + mean, 0, 1)


def _rotate(x, s, rng):
    angle = [5, 10, 15, 20, 30][s - 1]
    return np.clip(ndimage.rotate(x, angle, axes=(2, 3), reshape=False, order=1), 0, 1)


def _translate(x, s, rng):
    shift = [0.05, 0.1, 0.15, 0.2, 0.25][s - 1] * x.shape[-1]
    return ndimage.shift(x, (0, 0, shift, shift), order=1)


CORRUPTIONS: dict[str, Callable] = {
    "gaussian-noise": _noise, "blur": _blur, "brightness": _brightness,
    "contrast": _contrast, "rotation": _rotate, "translation": _translate,
}

# Tabular tensors (N, F): the feature's own spread sets the scale of each change.
_STEP = [0.1, 0.25, 0.5, 0.75, 1.0]


# ``scale`` is each feature's spread; randomize() passes the whole batch's, since a single
# row has none of its own.
def _feature_noise(x, s, rng, scale=None):
    scale = x.std(axis=0) if scale is None else scale
    return x + rng.normal(0, 1, x.shape) * scale * _STEP[s - 1]


def _feature_scaling(x, s, rng, scale=None):  # a unit or calibration change, per feature
    return x * (1 + rng.choice([-1, 1], size=x.shape[1]) * _STEP[s - 1] * 0.5)


def _feature_drift(x, s, rng, scale=None):  # the population moves: every feature shifts
    scale = x.std(axis=0) if scale is None else scale
    return x + rng.choice([-1, 1], size=x.shape[1]) * scale * _STEP[s - 1]


TABULAR_CORRUPTIONS: dict[str, Callable] = {
    "feature-noise": _feature_noise, "feature-scaling": _feature_scaling,
    "feature-drift": _feature_drift,
}


def families_for(x: np.ndarray) -> dict[str, Callable]:
    """Image corruptions for (N, C, H, W) inputs, tabular ones for (N, F)."""
    if x.ndim == 4:
        return CORRUPTIONS
    if x.ndim == 2:
        return TABULAR_CORRUPTIONS
    raise InputError(f"corruptions need images (N, C, H, W) or tables (N, F), not {x.shape}.")


def corrupt(x: np.ndarray, family: str, severity: int, *, seed: int = 0) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    known = families_for(x)
    if family not in known:
        raise InputError(f"unknown corruption {family!r} for inputs shaped {x.shape}; "
                         f"known: {', '.join(known)}.")
    if severity not in range(1, 6):
        raise InputError("severity is 1 to 5.")
    rng = np.random.default_rng(seed)
    return known[family](x, severity, rng).astype(np.float32)


def corruption_table(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                     y: np.ndarray, *, families=None, severities=(1, 2, 3, 4, 5)
                     ) -> dict[str, Any]:
    """Accuracy per family and severity; corruption error (CE) per family is the mean error
    over severities, and the mean corruption error (mCE) their mean. Also relative to the
    clean error, since there is no reference model to normalise by here."""
    families = list(families or families_for(np.asarray(x)))
    clean = float((predict(x) == y).mean())
    table, ce = {}, {}
    for family in families:
        row = {s: float((predict(corrupt(x, family, s)) == y).mean()) for s in severities}
        table[family] = row
        ce[family] = float(np.mean([1 - a for a in row.values()]))
    mce = float(np.mean(list(ce.values())))
    return {"clean_accuracy": clean, "accuracy": table, "corruption_error": ce,
            "mce": mce, "relative_mce": mce - (1 - clean)}


def corruption_fragility(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                         y: np.ndarray, *, max_drop: float = 0.25, severity: int = 3,
                         families=None) -> ScanResult:
    """A ``domain-shift`` finding when a corruption family at ``severity`` (of 5) costs
    more than ``max_drop`` accuracy: the model learned the clean source's quirks."""
    table = corruption_table(predict, x, y, families=families)
    clean = table["clean_accuracy"]
    drops = {f: clean - row[severity] for f, row in table["accuracy"].items()}
    fragile = sorted((f for f, d in drops.items() if d > max_drop), key=lambda f: -drops[f])
    findings = []
    if fragile:
        worst = drops[fragile[0]]
        findings.append(Finding(
            "domain-shift", Severity.HIGH if worst > 2 * max_drop else Severity.MEDIUM,
            f"Accuracy falls under mild corruption ({', '.join(fragile)})",
            f"At severity {severity} of 5, {fragile[0]} cuts accuracy from {clean:.0%} to "
            f"{table['accuracy'][fragile[0]][severity]:.0%}"
            + (f"; {len(fragile) - 1} other famil{'y' if len(fragile) == 2 else 'ies'} cost "
               f"more than {max_drop:.0%} too" if len(fragile) > 1 else "")
            + f". Mean corruption error over all families and severities: "
            f"{table['mce']:.0%} (clean error {1 - clean:.0%}).",
            "corruptions",
            [Metric("corruption_accuracy_drop", worst, max_drop),
             Metric("mean_corruption_error", table["mce"], None)],
            {"families": {f: drops[f] for f in fragile}, "severity": severity},
            mitigation_for("domain-shift")))
    result = ScanResult(findings=findings)
    result.metrics = {"mce": table["mce"], "relative_mce": table["relative_mce"]}
    result.diagnostics = {"corruptions": table}
    return result


def randomize(x: np.ndarray, *, rng: np.random.Generator, families=None,
              max_severity: int = 3, p: float = 0.5) -> np.ndarray:
    """Domain randomization for a training batch: each input (image or table row), with
    probability ``p``, gets a random corruption family at a random severity up to
    ``max_severity``."""
    out = np.array(x, dtype=np.float32, copy=True)
    known = families_for(out)
    families = list(families or known)
    spread = {"scale": out.std(axis=0)} if out.ndim == 2 else {}
    for i in np.nonzero(rng.random(len(out)) < p)[0]:
        family = families[rng.integers(len(families))]
        severity = int(rng.integers(1, max_severity + 1))
        out[i:i + 1] = known[family](out[i:i + 1], severity, rng, **spread)
    return out


# -- drift between a reference and a production dataset ---------------------------------

@dataclass
class FeatureDrift:
    feature: str
    test: str  # "ks" or "chi2"
    statistic: float
    p_value: float
    psi: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index over reference quantile bins (0.1 is a common alert)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    ref = np.histogram(reference, edges)[0] / len(reference)
    cur = np.histogram(current, edges)[0] / len(current)
    ref, cur = np.clip(ref, 1e-4, None), np.clip(cur, 1e-4, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def feature_drift(reference, current) -> list[FeatureDrift]:
    """KS for numeric columns, chi-square for categorical ones, and PSI for numeric."""
    import pandas as pd

    ref, cur = pd.DataFrame(reference), pd.DataFrame(current)
    missing = [c for c in ref.columns if c not in cur.columns]
    if missing:
        raise InputError(f"the current data lacks column(s) {', '.join(map(str, missing))}.")
    out = []
    for col in ref.columns:
        a, b = ref[col].dropna(), cur[col].dropna()
        if pd.api.types.is_numeric_dtype(a) and a.nunique() > 10:
            result = stats.ks_2samp(a.to_numpy(float), b.to_numpy(float))
            out.append(FeatureDrift(str(col), "ks", float(result.statistic),
                                    float(result.pvalue), psi(a.to_numpy(float),
                                                              b.to_numpy(float))))
        else:
            table = pd.crosstab(np.r_[np.zeros(len(a)), np.ones(len(b))],
                                np.r_[a.astype(str), b.astype(str)])
            chi2, p, _, _ = stats.chi2_contingency(table.to_numpy())
            out.append(FeatureDrift(str(col), "chi2", float(chi2), float(p), float("nan")))
    return out


def classifier_two_sample_test(reference: np.ndarray, current: np.ndarray, *,
                               seed: int = 0) -> dict[str, float]:
    """Can a classifier tell the two samples apart? Cross-validated AUC of reference vs
    current (0.5: indistinguishable), with a one-sided test against 0.5 (Mann-Whitney on the
    out-of-fold scores). Works on high-dimensional inputs (images are flattened)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_predict

    a = np.asarray(reference, dtype=np.float32).reshape(len(reference), -1)
    b = np.asarray(current, dtype=np.float32).reshape(len(current), -1)
    features = np.vstack([a, b])
    labels = np.r_[np.zeros(len(a)), np.ones(len(b))]
    scores = cross_val_predict(HistGradientBoostingClassifier(max_iter=100, random_state=seed),
                               features, labels, cv=5, method="predict_proba")[:, 1]
    test = stats.mannwhitneyu(scores[labels == 1], scores[labels == 0], alternative="greater")
    auc = test.statistic / (len(a) * len(b))
    return {"auc": float(auc), "p_value": float(test.pvalue)}


def domain_shift(reference, current, *, alpha: float = 0.01, min_auc: float = 0.6,
                 tabular: bool = True) -> ScanResult:
    """A ``domain-shift`` finding when the production data differs from the reference: per
    feature (Bonferroni over features) for tables, and by the classifier two-sample test."""
    findings, diagnostics = [], {}
    drifted: list[FeatureDrift] = []
    if tabular:
        per_feature = feature_drift(reference, current)
        diagnostics["features"] = [f.to_dict() for f in per_feature]
        drifted = [f for f in per_feature if f.p_value < alpha / max(len(per_feature), 1)]
    c2st = classifier_two_sample_test(np.asarray(reference, dtype=float) if not tabular
                                      else _numeric(reference),
                                      np.asarray(current, dtype=float) if not tabular
                                      else _numeric(current))
    diagnostics["classifier_two_sample_test"] = c2st
    separable = c2st["auc"] >= min_auc and c2st["p_value"] < alpha
    if drifted or separable:
        names = ", ".join(f.feature for f in drifted[:5])
        findings.append(Finding(
            "domain-shift", Severity.HIGH if c2st["auc"] >= 0.75 else Severity.MEDIUM,
            "Production data differs from the reference"
            + (f" ({names})" if names else ""),
            (f"{len(drifted)} feature(s) drifted (p < {alpha:g}, Bonferroni). " if tabular
             else "") + f"A classifier tells the two samples apart with AUC "
            f"{c2st['auc']:.2f} (p = {c2st['p_value']:.2g}).",
            "domain-shift",
            [Metric("two_sample_auc", c2st["auc"], min_auc),
             Metric("drifted_features", float(len(drifted)), 0.0)],
            {"drifted": [f.to_dict() for f in drifted]}, mitigation_for("domain-shift")))
    result = ScanResult(findings=findings)
    result.diagnostics = diagnostics
    result.metrics = {"two_sample_auc": c2st["auc"]}
    return result


def _numeric(frame) -> np.ndarray:
    import pandas as pd

    df = pd.DataFrame(frame)
    return pd.get_dummies(df, dtype=float).to_numpy(dtype=float)
