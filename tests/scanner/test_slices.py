import numpy as np
import pandas as pd
import pytest

from conftest import fit_logistic, people
from failwell.scanner import make_dataset, scan


def _noisy_slice(frame, seed):
    rng = np.random.default_rng(seed)
    m = (frame["group"] == "b") & (frame["experience"] < 5)
    frame.loc[m, "hired"] = rng.integers(0, 2, int(m.sum()))
    return frame


def test_planted_slice_is_found():
    train, test = _noisy_slice(people(6000, seed=1), 3), _noisy_slice(people(4000, seed=2), 4)
    model = fit_logistic(train, ["skill", "experience", "group"])
    ds = make_dataset(test, target="hired", features=["skill", "experience", "group"])
    (finding,) = scan(ds, model, detectors=["performance-slices"]).findings
    worst = finding.evidence["slices"][0]
    assert set(worst["columns"]) == {"experience", "group"}
    assert "group = b" in worst["slice"] and "experience < 5" in worst["slice"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_uniform_errors_give_no_slice(seed):
    frame = people(5000, seed=seed)
    rng = np.random.default_rng(seed)
    flip = rng.random(len(frame)) < 0.2  # errors spread evenly over every slice
    frame["decision"] = np.where(flip, 1 - frame["hired"], frame["hired"])
    ds = make_dataset(frame, target="hired", prediction="decision",
                      features=["skill", "experience", "gender", "group"])
    assert scan(ds, detectors=["performance-slices"]).findings == []


@pytest.mark.parametrize("seed", [0, 1])
def test_calibrated_model_boundary_is_not_a_slice(seed):
    model = fit_logistic(people(4000, seed=seed), ["skill", "experience"])
    ds = make_dataset(people(4000, seed=seed + 9), target="hired",
                      features=["skill", "experience", "gender"])
    assert scan(ds, model, detectors=["performance-slices"]).findings == []


@pytest.mark.parametrize(("threshold", "scale"), [(0.3, None), (640, (300, 850))])
def test_hard_threshold_black_box_boundary_is_not_a_slice(threshold, scale):
    """Scores that are right about every row: the rows near the vendor's cut are wrong more
    often, as the rule implies, and that is neither a slice nor a fairness finding."""
    rng = np.random.default_rng(11)
    n = 8000
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "region": rng.choice(["north", "south", "east"], n)})
    p = 1 / (1 + np.exp(-(1.5 * frame["x1"] + 0.8 * frame["x2"] - 0.5)))
    frame["y"] = (rng.random(n) < p).astype(int)
    frame["score"] = p if scale is None else scale[0] + (scale[1] - scale[0]) * p
    ds = make_dataset(frame, target="y", score="score", threshold=threshold,
                      protected=["region"])
    result = scan(ds, detectors=["performance-slices", "group-fairness"])
    assert result.findings == []
    near = (p - p.mean()).abs() < 0.1
    errors = (frame["score"] >= threshold).astype(int) != frame["y"]
    assert errors[near].mean() > errors[~near].mean()  # the boundary band is really worse


def test_planted_slice_behind_a_hard_threshold_is_still_found():
    rng = np.random.default_rng(12)
    n = 8000
    frame = pd.DataFrame({"x1": rng.normal(size=n),
                          "device": rng.choice(["ios", "android", "web"], n)})
    p = 1 / (1 + np.exp(-1.5 * frame["x1"]))
    frame["score"] = p
    wrong = frame["device"] == "web"  # the score means nothing on web sign-ups
    p_true = np.where(wrong, 1 - p, p)
    frame["y"] = (rng.random(n) < p_true).astype(int)
    ds = make_dataset(frame, target="y", score="score", threshold=0.3)
    (f,) = scan(ds, detectors=["performance-slices"]).findings
    assert "device = web" in f.evidence["slices"][0]["slice"]
