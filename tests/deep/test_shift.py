"""Domain shift: corruption tables, drift detection (planted drift found, same-distribution
control clean) and domain randomization that helps on corrupted digits."""

import numpy as np
import pandas as pd
import pytest

from failwell.deep.shift import (
    CORRUPTIONS,
    corrupt,
    corruption_table,
    domain_shift,
    randomize,
)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return x[:1300], d.target[:1300], x[1300:], d.target[1300:]


def logistic(x, y):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=3000).fit(x.reshape(len(x), -1), y)
    return lambda z: model.predict(z.reshape(len(z), -1))


def test_corruptions_hurt_more_at_higher_severity(digits):
    train_x, train_y, x, y = digits
    table = corruption_table(logistic(train_x, train_y), x, y)
    assert set(table["accuracy"]) == set(CORRUPTIONS)
    for family in ("gaussian-noise", "blur", "translation"):
        row = table["accuracy"][family]
        assert row[5] < row[1] <= table["clean_accuracy"] + 0.01, family
    assert table["mce"] > 1 - table["clean_accuracy"]
    assert np.allclose(corrupt(x[:5], "brightness", 1).min(), min(0.1, 1.0), atol=0.11)


def test_planted_tabular_drift_is_found_and_a_control_is_clean():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"age": rng.normal(40, 10, 2000), "income": rng.normal(50, 15, 2000),
                              "region": rng.choice(["n", "s"], 2000)})
    same = pd.DataFrame({"age": rng.normal(40, 10, 2000), "income": rng.normal(50, 15, 2000),
                         "region": rng.choice(["n", "s"], 2000)})
    shifted = same.assign(age=same["age"] + 6)
    assert domain_shift(reference, same).findings == []
    finding = domain_shift(reference, shifted).findings[0]
    assert finding.failure_mode == "domain-shift" and "age" in finding.title
    assert "income" not in finding.title


def test_image_drift_by_the_classifier_two_sample_test(digits):
    _, _, x, _ = digits
    x = x[np.random.default_rng(0).permutation(len(x))]  # digits are ordered by writer
    half = len(x) // 2
    assert domain_shift(x[:half], x[half:], tabular=False).findings == []
    lower_contrast = corrupt(x[half:], "contrast", 3)
    assert domain_shift(x[:half], lower_contrast, tabular=False).findings


def test_domain_randomization_improves_corrupted_accuracy(digits):
    train_x, train_y, x, y = digits
    rng = np.random.default_rng(0)
    augmented = np.concatenate([train_x] + [randomize(train_x, rng=rng, p=1.0)
                                            for _ in range(3)])
    plain = corruption_table(logistic(train_x, train_y), x, y, severities=(3,))
    randomized = corruption_table(logistic(augmented, np.tile(train_y, 4)), x, y,
                                  severities=(3,))
    assert randomized["mce"] <= plain["mce"] - 0.05  # corrupted accuracy up by 5+ points
    assert randomized["clean_accuracy"] >= plain["clean_accuracy"] - 0.03
