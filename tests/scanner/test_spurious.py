import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from conftest import people
from failwell.scanner import make_dataset, scan
from failwell.scanner.detectors.spurious import single_feature_auc


def _with_scanner(frame, seed, marker: bool):
    """A 'scanner' id: with ``marker`` it agrees with the label 95 % of the time (Clever Hans:
    positives were imaged on the portable machine), otherwise it is random."""
    rng = np.random.default_rng(seed)
    if marker:
        agree = rng.random(len(frame)) < 0.95
        frame["scanner"] = np.where(agree, frame["hired"], 1 - frame["hired"])
    else:
        frame["scanner"] = rng.integers(0, 2, len(frame))
    return frame


def _scan(marker: bool, seed: int = 0):
    train = _with_scanner(people(4000, seed=seed), seed, marker)
    features = ["skill", "experience", "scanner"]
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(
        train[features], train["hired"])
    test = _with_scanner(people(3000, seed=seed + 1), seed + 1, marker)
    ds = make_dataset(test, target="hired", metadata=["scanner"], features=features)
    return scan(ds, model, detectors=["spurious-correlation"])


def test_metadata_marker_is_flagged_by_remove_the_marker_test():
    result = _scan(marker=True)
    hans = [f for f in result.findings if f.failure_mode == "spurious-correlation"]
    assert len(hans) == 1
    f = hans[0]
    assert f.evidence["feature"] == "scanner"
    assert f.metric("auc_drop_when_shuffled").value > 0.1
    assert f.evidence["after_shuffle"] < f.evidence["before"]


@pytest.mark.parametrize("seed", [0, 1])
def test_model_without_marker_is_clean(seed):
    assert _scan(marker=False, seed=seed).findings == []


def test_leaky_column_is_flagged_without_a_model():
    frame = people(3000, seed=3)
    frame["outcome_code"] = frame["hired"] * 10 + np.random.default_rng(0).integers(0, 3, 3000)
    frame["decision"] = (frame["skill"] > 0).astype(int)
    ds = make_dataset(frame, target="hired", prediction="decision")
    result = scan(ds, detectors=["spurious-correlation"])
    assert [f.evidence["feature"] for f in result.findings] == ["outcome_code"]
    assert result.findings[0].failure_mode == "leakage"


def test_single_feature_auc_against_sklearn():
    frame = people(2000, seed=4)
    y = frame["hired"].to_numpy()
    assert single_feature_auc(frame["skill"], y) == pytest.approx(
        roc_auc_score(y, frame["skill"]))
    # a row id memorizes nothing under cross-fitting
    assert single_feature_auc(frame.index.astype(str).to_series(name="id"), y) < 0.56


# -- undeclared shortcuts: nobody passed --metadata ------------------------------------------
def _fit_scan(train, test, features, target="hired", **kw):
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(
        train[features], train[target])
    ds = make_dataset(test, target=target, features=features, **kw)
    return scan(ds, model, detectors=["spurious-correlation"])


def _marker(frame, name, seed, agree=0.93, codes=("A", "B")):
    rng = np.random.default_rng(seed)
    keep = rng.random(len(frame)) < agree
    label = np.where(keep, frame["hired"], 1 - frame["hired"])
    frame[name] = np.where(label == 1, codes[1], codes[0])
    return frame


def _shortcuts(result):
    return {f.evidence["feature"]: f for f in result.findings
            if f.failure_mode in ("spurious-correlation", "leakage")}


def test_undeclared_provenance_marker_is_found_high():
    train = _marker(people(4000, seed=1), "acquisition_site", 1, codes=(3, 7))
    test = _marker(people(3000, seed=2), "acquisition_site", 2, codes=(3, 7))
    found = _shortcuts(_fit_scan(train, test, ["skill", "experience", "acquisition_site"]))
    f = found["acquisition_site"]
    assert f.severity == "high" and f.failure_mode == "spurious-correlation"
    assert "'site'" in f.summary and "remove-the-marker" in f.summary
    assert f.evidence["beyond_others"] > 0.1 and f.metric("importance_share").value > 0.5
    assert set(found) == {"acquisition_site"}


def test_undeclared_marker_with_a_bland_name_is_found_medium():
    train = _marker(people(4000, seed=3), "q7", 3, codes=(11, 42))
    test = _marker(people(3000, seed=4), "q7", 4, codes=(11, 42))
    found = _shortcuts(_fit_scan(train, test, ["skill", "experience", "q7"]))
    assert found["q7"].severity == "medium"
    assert "isolated" in found["q7"].summary


def test_capture_dates_that_separate_the_classes_are_provenance():
    def dated(frame, seed):
        rng = np.random.default_rng(seed)
        late = np.where(rng.random(len(frame)) < 0.92, frame["hired"], 1 - frame["hired"])
        day = np.where(late == 1, rng.integers(200, 365, len(frame)),
                       rng.integers(0, 160, len(frame)))
        frame["collected"] = (pd.Timestamp("2024-01-01")
                              + pd.to_timedelta(day, unit="D")).strftime("%Y-%m-%d")
        return frame

    train, test = dated(people(4000, seed=5), 5), dated(people(3000, seed=6), 6)
    enc = {d: i for i, d in enumerate(sorted(set(train["collected"]) | set(test["collected"])))}
    for frame in (train, test):
        frame["collected_n"] = frame["collected"].map(enc)
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(
        train[["skill", "experience", "collected_n"]], train["hired"])

    def predict(frame):
        x = frame.assign(collected_n=frame["collected"].map(enc))
        return model.predict_proba(x[["skill", "experience", "collected_n"]])[:, 1]

    from failwell.scanner import CallableModel

    ds = make_dataset(test, target="hired", features=["skill", "experience", "collected"])
    found = _shortcuts(scan(ds, CallableModel(predict), detectors=["spurious-correlation"]))
    assert found["collected"].severity == "high"
    assert "capture dates" in found["collected"].summary


def test_real_breast_cancer_features_are_not_flagged_high():
    """Strong, entangled measurements (worst perimeter alone: AUC 0.975) are not shortcuts."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame
    data["malignant"] = 1 - data.pop("target")
    data["hospital_id"] = np.random.default_rng(0).integers(1, 6, len(data))  # innocent
    train, test = data.iloc[::2], data.iloc[1::2]
    features = [c for c in data.columns if c != "malignant"]
    found = _shortcuts(_fit_scan(train, test, features, target="malignant"))
    assert not [c for c, f in found.items() if f.severity in ("high", "critical")]
    assert "hospital_id" not in found


def test_strong_continuous_feature_in_an_ordinary_model_is_not_a_finding():
    frame = people(4000, seed=7)
    features = ["skill", "experience"]
    assert _fit_scan(frame, people(3000, seed=8), features).findings == []
