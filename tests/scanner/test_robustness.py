import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from conftest import fit_logistic, people
from failwell.scanner import make_dataset, scan
from failwell.scanner.detectors.robustness import add_typo, perturb_numeric


def _scan(model, seed=2):
    ds = make_dataset(people(3000, seed=seed), target="hired",
                      features=["skill", "experience"])
    return scan(ds, model, detectors=["robustness"])


def test_jagged_model_is_fragile():
    train = people(3000, seed=1)
    knn = KNeighborsClassifier(1).fit(train[["skill", "experience"]], train["hired"])
    result = _scan(knn)
    assert len(result.findings) == 1
    assert result.findings[0].metric("flip_rate").value > 0.1
    assert result.findings[0].evidence["examples"]


@pytest.mark.parametrize("seed", [2, 3])
def test_smooth_model_is_robust(seed):
    model = fit_logistic(people(3000, seed=1), ["skill", "experience"])
    result = _scan(model, seed)
    assert result.findings == []
    assert 0 < result.metrics["robustness.numeric-noise.flip_rate"] < 0.05


def test_noise_is_at_the_columns_own_scale():
    rng = np.random.default_rng(0)
    frame = people(20000, seed=0)
    noisy = perturb_numeric(frame["skill"], 0.05, rng)
    assert np.std(noisy - frame["skill"]) == pytest.approx(0.05 * frame["skill"].std(), rel=0.05)
    ints = perturb_numeric(frame["experience"], 0.05, rng)
    assert ints.dtype == frame["experience"].dtype
    assert abs(np.mean(ints - frame["experience"])) < 0.02


def test_typo_changes_one_word():
    rng = np.random.default_rng(0)
    out = add_typo("experienced engineer", rng)
    assert out != "experienced engineer" and sorted(out) == sorted("experienced engineer")
