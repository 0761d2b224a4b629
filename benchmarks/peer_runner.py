"""Run one tool's scan on the benchmark split; prints one JSON line.

Executed by bench_peers.py with each tool's own interpreter (its own virtual environment), so
every tool trains the same model recipe (HistGradientBoosting, same hyper-parameters and seed)
on the same rows and scans the same held-out rows. Only the scan is timed.
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


def run_failwell(train, test, model):
    from failwell.scanner import ScanConfig, make_dataset, scan

    t0 = time.perf_counter()
    ds = make_dataset(test, target=TARGET, protected=["race", "sex"], features=[*FEATURES, "race"])
    result = scan(ds, model, config=ScanConfig(reference=train))
    seconds = time.perf_counter() - t0
    return seconds, [f"{f.severity}: {f.title}" for f in result.sorted_findings()]


def run_giskard(train, test, model):
    import giskard

    cols = [*FEATURES, "race", TARGET]
    t0 = time.perf_counter()
    dataset = giskard.Dataset(test[cols], target=TARGET, cat_columns=CATEGORICAL)
    wrapped = giskard.Model(lambda df: model.predict_proba(df[FEATURES]),
                            model_type="classification", classification_labels=[0, 1],
                            feature_names=[*FEATURES, "race"])
    report = giskard.scan(wrapped, dataset, verbose=False, raise_exceptions=False)
    seconds = time.perf_counter() - t0
    return seconds, [f"{i.level}: {i.group.name}: {i.description}"[:160] for i in report.issues]


def run_deepchecks(train, test, model):
    from deepchecks.tabular import Dataset
    from deepchecks.tabular.suites import full_suite

    cols = [*FEATURES, TARGET]
    t0 = time.perf_counter()
    tr = Dataset(train[cols], label=TARGET, cat_features=["sex", "c_charge_degree"])
    te = Dataset(test[cols], label=TARGET, cat_features=["sex", "c_charge_degree"])
    result = full_suite().run(train_dataset=tr, test_dataset=te, model=model)
    seconds = time.perf_counter() - t0
    failed = [f"not passed: {r.get_header()}" for r in result.get_not_passed_checks()]
    return seconds, failed


def main() -> None:
    tool, train_path, test_path = sys.argv[1:4]
    train, test = pd.read_csv(train_path), pd.read_csv(test_path)
    model = train_model(train)
    seconds, found = {"failwell": run_failwell, "giskard": run_giskard,
                      "deepchecks": run_deepchecks}[tool](train, test, model)
    print(json.dumps({"tool": tool, "scan_s": round(seconds, 3), "found": found}))


if __name__ == "__main__":
    main()
