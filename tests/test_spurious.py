import numpy as np
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
