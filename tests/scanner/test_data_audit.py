import numpy as np
import pandas as pd
import pytest

from conftest import people
from failwell.mitigate import resample_balanced, reweighing
from failwell.scanner import ScanConfig, make_dataset, scan


def _audit(frame, **kw):
    ds = make_dataset(frame, target="hired", protected=["gender", "group"],
                      features=["skill", "experience", "gender", "group"])
    return scan(ds, detectors=["data-audit"], **kw)


def test_clean_data_has_no_finding():
    assert _audit(people(4000, seed=0)).findings == []


def test_historical_bias_in_labels():
    result = _audit(people(4000, seed=1, label_bias=1.5))
    (f,) = result.findings
    assert f.failure_mode == "historical-bias" and f.evidence["attribute"] == "gender"
    assert "reweighing" in f.mitigation


def test_imbalance_missing_duplicates_and_representation():
    frame = people(4000, seed=2)
    frame["hired"] = (np.arange(4000) < 200).astype(int)
    frame.loc[::5, "experience"] = np.nan
    frame = pd.concat([frame, frame.iloc[:200]], ignore_index=True)
    frame.loc[:60, "group"] = "rare"
    modes = {f.failure_mode for f in _audit(frame).findings}
    assert {"class-imbalance", "data-quality", "underrepresentation"} <= modes


def test_train_test_overlap_is_leakage():
    train, test = people(2000, seed=3), people(1000, seed=4)
    test = pd.concat([test, train.iloc[:100]], ignore_index=True)
    result = _audit(test, config=ScanConfig(reference=train))
    (leak,) = [f for f in result.findings if f.failure_mode == "leakage"]
    assert leak.metric("train_test_overlap").value == pytest.approx(100 / 1100)


def test_identical_coarse_features_by_chance_are_not_leakage():
    """Distinct people sharing a few coarse values is not leakage (chance level measured)."""
    rng = np.random.default_rng(0)

    def coarse(n):
        return pd.DataFrame({"age_band": rng.integers(0, 3, n), "sex": rng.choice(["F", "M"], n),
                             "hired": rng.integers(0, 2, n)})

    train, test = coarse(2000), coarse(1000)
    ds = make_dataset(test, target="hired")
    result = scan(ds, detectors=["data-audit"], config=ScanConfig(reference=train))
    assert result.metrics["data.train_test_overlap"] == 1.0
    assert not [f for f in result.findings if f.failure_mode == "leakage"]


def test_reweighing_makes_group_and_label_independent():
    frame = people(5000, seed=5, label_bias=2.0)
    w = reweighing(frame["gender"], frame["hired"])
    assert w.mean() == pytest.approx(1.0)
    rates = {g: np.average(frame["hired"][frame["gender"] == g], weights=w[frame["gender"] == g])
             for g in ("F", "M")}
    assert rates["F"] == pytest.approx(rates["M"])
    assert abs(frame[frame.gender == "F"].hired.mean() - frame[frame.gender == "M"].hired.mean()) \
        > 0.2
    idx = resample_balanced(frame["gender"], frame["hired"])
    re = frame.iloc[idx]
    gap = re[re.gender == "F"].hired.mean() - re[re.gender == "M"].hired.mean()
    assert abs(gap) < 0.01


def test_copying_into_a_duplicate_heavy_training_set_is_flagged():
    """Training repeats itself (augmented copies) as much as the test set copies from it:
    internal duplicates must not mask the copying."""
    train = people(2000, seed=11)
    train = pd.concat([train, train.iloc[:300], train.iloc[:300]], ignore_index=True)
    test = pd.concat([people(1000, seed=12), train.iloc[500:700]], ignore_index=True)
    result = _audit(test, config=ScanConfig(reference=train))
    (leak,) = [f for f in result.findings if f.failure_mode == "leakage"]
    assert leak.metric("train_test_overlap").value == pytest.approx(200 / 1200)
    assert leak.metric("chance_overlap").value < 0.01
    # the same training set with no copying: clean
    clean = _audit(people(1000, seed=13), config=ScanConfig(reference=train))
    assert not [f for f in clean.findings if f.failure_mode == "leakage"]
