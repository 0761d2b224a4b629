"""Run one tool's scan on one benchmark case; prints one JSON line.

Executed by bench_peers.py with each tool's own interpreter (its own virtual environment), so
every tool trains the same model recipe (HistGradientBoosting, same hyper-parameters and seed)
on the same rows and scans the same held-out rows. Only the scan is timed.

Cases: ``compas`` (a ColumnTransformer pipeline, 2,469 held-out rows) and ``credit``
(50,000 x 30 synthetic credit rows whose label depends on sex, with the model behind a pandas
one-hot wrapper that re-encodes every call: the shape most users hand to a scanner).
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

warnings.filterwarnings("ignore")
os.environ.setdefault("GSK_DISABLE_ANALYTICS", "True")
FEATURES = ["sex", "age", "priors_count", "juv_fel_count", "juv_misd_count", "juv_other_count",
            "c_charge_degree"]
CATEGORICAL = ["sex", "c_charge_degree", "race"]
TARGET = "two_year_recid"


def train_model(train: pd.DataFrame):
    encode = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["sex", "c_charge_degree"])],
        remainder="passthrough")
    model = make_pipeline(encode, HistGradientBoostingClassifier(max_iter=100, max_depth=3,
                                                                 random_state=0))
    return model.fit(train[FEATURES], train[TARGET])


CREDIT_TARGET = "default"
CREDIT_CATEGORICAL = ["sex", "purpose", "housing", "region", "employment", "education",
                      "marital", "channel", "product", "branch"]


def credit_case(n: int, seed: int) -> pd.DataFrame:
    """30 feature columns (10 categorical); the label leans on sex (historical bias)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "sex": rng.choice(["F", "M"], n),
        "purpose": rng.choice(["car", "home", "education", "business", "other"], n),
        "housing": rng.choice(["own", "rent", "free"], n, p=[0.5, 0.4, 0.1]),
        "region": rng.choice([f"r{i}" for i in range(12)], n),
        "employment": rng.choice(["salaried", "self", "none", "retired"], n),
        "education": rng.choice(["primary", "secondary", "tertiary"], n),
        "marital": rng.choice(["single", "married", "divorced"], n),
        "channel": rng.choice(["branch", "web", "broker"], n),
        "product": rng.choice(["card", "loan", "mortgage", "overdraft"], n),
        "branch": rng.choice([f"b{i}" for i in range(30)], n),
    })
    for i in range(20):
        frame[f"x{i:02d}"] = rng.normal(size=n).round(4)
    frame["x00"] = (frame["x00"] * 15000 + 45000).round(0)  # income
    frame["x01"] = (frame["x01"] * 12 + 40).clip(18, 90).round(0)  # age
    logit = (-1.0 - 0.00003 * (frame["x00"] - 45000) + 0.8 * frame["x02"] - 0.6 * frame["x03"]
             + 0.4 * frame["x04"] + 0.9 * (frame["sex"] == "F") + 0.5 * (frame["housing"] == "rent")
             + 0.3 * (frame["employment"] == "none"))
    frame[CREDIT_TARGET] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


class OneHotModel:
    """HistGradientBoosting behind a pandas one-hot step re-run on every call (as users do)."""

    def __init__(self, train: pd.DataFrame, features: list[str], categorical: list[str]):
        self.features, self.categorical = features, categorical
        x = self._encode(train)
        self.columns = list(x.columns)
        self.model = HistGradientBoostingClassifier(max_iter=100, max_depth=3, random_state=0)
        self.model.fit(x, train[CREDIT_TARGET])
        self.classes_ = self.model.classes_

    def _encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        x = pd.get_dummies(frame[self.features], columns=self.categorical, dtype=float)
        return x if not hasattr(self, "columns") else x.reindex(columns=self.columns,
                                                                 fill_value=0.0)

    def predict_proba(self, frame: pd.DataFrame):
        return self.model.predict_proba(self._encode(frame))

    def predict(self, frame: pd.DataFrame):
        return self.model.predict(self._encode(frame))


CASES = {
    "compas": {"target": TARGET, "features": FEATURES, "protected": ["race", "sex"],
               "audit_only": ["race"], "categorical": CATEGORICAL,
               "model_categorical": ["sex", "c_charge_degree"]},
    "credit": {"target": CREDIT_TARGET, "protected": ["sex"], "audit_only": [],
               "categorical": CREDIT_CATEGORICAL, "model_categorical": CREDIT_CATEGORICAL},
}


def case_spec(case: str, train: pd.DataFrame) -> dict:
    spec = dict(CASES[case])
    if case == "credit":
        spec["features"] = [c for c in train.columns if c != CREDIT_TARGET]
    return spec


def build_model(case: str, train: pd.DataFrame, spec: dict):
    if case == "compas":
        return train_model(train)
    return OneHotModel(train, spec["features"], spec["categorical"])


def run_failwell(train, test, model, spec):
    from failwell.scanner import ScanConfig, make_dataset, scan

    t0 = time.perf_counter()
    ds = make_dataset(test, target=spec["target"], protected=spec["protected"],
                      features=[*spec["features"], *spec["audit_only"]])
    result = scan(ds, model, config=ScanConfig(reference=train))
    seconds = time.perf_counter() - t0
    found = [f"{f.severity}: {f.title}" for f in result.sorted_findings()]
    extra = {k: result.timings.get(k) for k in ("model_calls", "rows_predicted", "model_s")}
    return seconds, found, extra


def run_giskard(train, test, model, spec):
    import giskard

    inputs = [*spec["features"], *spec["audit_only"]]
    t0 = time.perf_counter()
    dataset = giskard.Dataset(test[[*inputs, spec["target"]]], target=spec["target"],
                              cat_columns=spec["categorical"])
    wrapped = giskard.Model(lambda df: model.predict_proba(df[spec["features"]]),
                            model_type="classification", classification_labels=[0, 1],
                            feature_names=inputs)
    report = giskard.scan(wrapped, dataset, verbose=False, raise_exceptions=False)
    seconds = time.perf_counter() - t0
    found = [f"{i.level}: {i.group.name}: {i.description}"[:160] for i in report.issues]
    return seconds, found, {}


def run_deepchecks(train, test, model, spec):
    from deepchecks.tabular import Dataset
    from deepchecks.tabular.suites import full_suite

    cols = [*spec["features"], spec["target"]]
    t0 = time.perf_counter()
    tr = Dataset(train[cols], label=spec["target"], cat_features=spec["model_categorical"])
    te = Dataset(test[cols], label=spec["target"], cat_features=spec["model_categorical"])
    result = full_suite().run(train_dataset=tr, test_dataset=te, model=model)
    seconds = time.perf_counter() - t0
    failed = [f"not passed: {r.get_header()}" for r in result.get_not_passed_checks()]
    return seconds, failed, {}


def main() -> None:
    tool, case, train_path, test_path = sys.argv[1:5]
    train, test = pd.read_csv(train_path), pd.read_csv(test_path)
    spec = case_spec(case, train)
    model = build_model(case, train, spec)
    seconds, found, extra = {"failwell": run_failwell, "giskard": run_giskard,
                             "deepchecks": run_deepchecks}[tool](train, test, model, spec)
    print(json.dumps({"tool": tool, "case": case, "scan_s": round(seconds, 3), "found": found,
                      **extra}))


if __name__ == "__main__":
    main()
