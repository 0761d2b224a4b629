import numpy as np
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
