"""Score the scanner on the frozen scanner sets (cases nobody here wrote).

- ``blackbox_cases.py``: proxies named and followed from a decision column, slices on a
  hard-threshold score, fairness on clean controls (36 cases);
- ``shortcut_cases.py``: undeclared shortcut columns found without ``--metadata``, strong
  causal features and innocent provenance columns left alone (40 cases).

Run ``python tests/scanner_truth.py`` (``make bench-truth``) to print every figure; the
floors in ``test_frozen_sets.py`` hold them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

FROZEN = Path(__file__).parent / "data" / "frozen"


def load_cases(name: str) -> list:
    spec = importlib.util.spec_from_file_location(f"frozen_{name}", FROZEN / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.CASES


# -- black boxes --------------------------------------------------------------------------
def scan_blackbox(case):
    from failwell.scanner import make_dataset, scan

    frame = case.build()
    kw = ({"prediction": case.decision, "prediction_positive": (1,)} if case.decision
          else {"score": case.score, "threshold": case.threshold})
    ds = make_dataset(frame, target=case.target, protected=list(case.protected), **kw)
    return scan(ds, detectors=["proxy-features", "performance-slices", "group-fairness"])


def blackbox_figures(cases=None) -> dict:
    """Counts of each judgment right and wrong over the set."""
    cases = cases if cases is not None else load_cases("blackbox_cases")
    c = {k: [0, 0] for k in ("proxy_found", "not_proxy_clean", "followed_found",
                             "not_followed_clean", "bad_slice_found", "clean_slices",
                             "clean_fairness")}
    misses: list[str] = []

    def tally(key: str, ok: bool, what: str) -> None:
        c[key][0] += ok
        c[key][1] += 1
        if not ok:
            misses.append(what)

    for case in cases:
        result = scan_blackbox(case)
        proxy = {f.evidence["attribute"]: f.evidence for f in result.findings
                 if f.failure_mode == "proxy-feature"}
        for attr, cols in case.proxies.items():
            for col in cols:
                tally("proxy_found", col in proxy.get(attr, {}).get("proxies", {}),
                      f"{case.name}: proxy {attr}~{col} missed")
        for attr, cols in case.not_proxies.items():
            for col in cols:
                tally("not_proxy_clean", col not in proxy.get(attr, {}).get("proxies", {}),
                      f"{case.name}: {col} named a proxy of {attr}")
        for attr, cols in case.followed.items():
            ev = proxy.get(attr, {})
            for col in cols:
                ok = col in ev.get("followed", []) or (ev.get("followed_jointly", False)
                                                       and col in ev.get("proxies", {}))
                tally("followed_found", ok, f"{case.name}: decisions follow {col} ({attr}), "
                      "not reported")
        for attr, cols in case.not_followed.items():
            ev = proxy.get(attr, {})
            for col in cols:
                ok = col not in ev.get("followed", []) and not (
                    ev.get("followed_jointly", False) and col in ev.get("proxies", {}))
                tally("not_followed_clean", ok, f"{case.name}: {col} ({attr}) reported as "
                      "followed")
        slices = [f for f in result.findings if f.failure_mode == "underperforming-slice"]
        if case.bad_slice:
            cols = {col for f in slices for s in f.evidence["slices"] for col in s["columns"]}
            tally("bad_slice_found", bool(cols & set(case.bad_slice)),
                  f"{case.name}: bad slice on {case.bad_slice} missed")
        if case.clean_slices:
            tally("clean_slices", not slices, f"{case.name}: slice reported on a clean case: "
                  + "; ".join(f.title for f in slices))
        if case.clean_fairness:
            unfair = [f for f in result.findings if f.failure_mode == "group-unfairness"]
            tally("clean_fairness", not unfair, f"{case.name}: unfairness on a clean case: "
                  + "; ".join(f.title for f in unfair))
    return {"cases": len(cases), "counts": c, "misses": misses}


# -- shortcuts ----------------------------------------------------------------------------
def train_case_model(case, train):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x = train.drop(columns=[case.target])
    categorical = [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c])
                   or pd.api.types.is_bool_dtype(x[c])]
    numeric = [c for c in x.columns if c not in categorical]
    num_steps = [SimpleImputer(strategy="median")]
    if case.model == "logreg":
        num_steps.append(StandardScaler())
    encode = ColumnTransformer([
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
         categorical),
        ("num", make_pipeline(*num_steps), numeric)])
    estimator = {"hgb": lambda: HistGradientBoostingClassifier(random_state=0),
                 "logreg": lambda: LogisticRegression(max_iter=1000),
                 "forest": lambda: RandomForestClassifier(200, random_state=0)}[case.model]()
    x = x.astype({c: str for c in categorical})
    model = make_pipeline(encode, estimator).fit(x, train[case.target])
    return model, categorical


def scan_shortcut(case):
    from failwell.scanner import CallableModel, make_dataset, scan

    train, test = case.build()
    model, categorical = train_case_model(case, train)
    columns = [c for c in train.columns if c != case.target]

    def predict(frame):
        return model.predict_proba(frame[columns].astype({c: str for c in categorical}))[:, 1]

    ds = make_dataset(test, target=case.target, protected=list(case.protected),
                      features=columns)
    return scan(ds, CallableModel(predict), detectors=["spurious-correlation"])


def shortcut_figures(cases=None) -> dict:
    """Planted shortcuts found (any severity) and strong/innocent columns not flagged high."""
    cases = cases if cases is not None else load_cases("shortcut_cases")
    found, planted, clean, controls, clean_cases, control_cases = 0, 0, 0, 0, 0, 0
    misses: list[str] = []
    for case in cases:
        result = scan_shortcut(case)
        flagged = {f.evidence.get("feature"): f for f in result.findings
                   if f.failure_mode in ("spurious-correlation", "leakage")}
        high = {c for c, f in flagged.items() if str(f.severity) in ("high", "critical")}
        for col in case.shortcuts:
            planted += 1
            found += col in flagged
            if col not in flagged:
                misses.append(f"{case.name}: shortcut {col} missed")
        for col in case.not_shortcuts:
            controls += 1
            clean += col not in high
            if col in high:
                misses.append(f"{case.name}: {col} flagged {flagged[col].severity}: "
                              f"{flagged[col].title}")
        if not case.shortcuts:
            control_cases += 1
            noisy = high - set(case.shortcuts)
            clean_cases += not noisy
            if noisy:
                misses.append(f"{case.name}: control case flagged high on {sorted(noisy)}")
    return {"cases": len(cases), "shortcuts_found": (found, planted),
            "not_shortcut_clean": (clean, controls),
            "control_cases_clean": (clean_cases, control_cases), "misses": misses}


def _print(figures: dict) -> None:
    for key, value in figures.items():
        if key == "misses":
            for line in value:
                print("   miss:", line)
        elif key == "counts":
            for name, (ok, n) in value.items():
                print(f"  {name:<22} {ok}/{n}" + (f" = {ok / n:.3f}" if n else ""))
        elif isinstance(value, tuple):
            print(f"  {key:<22} {value[0]}/{value[1]}"
                  + (f" = {value[0] / value[1]:.3f}" if value[1] else ""))
        else:
            print(f"  {key:<22} {value}")


if __name__ == "__main__":
    import time

    which = sys.argv[1:] or ["blackbox", "shortcut"]
    for name in which:
        t0 = time.perf_counter()
        figures = blackbox_figures() if name == "blackbox" else shortcut_figures()
        print(f"== {name} ({time.perf_counter() - t0:.1f} s)")
        _print(figures)

