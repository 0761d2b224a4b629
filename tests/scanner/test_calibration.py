import itertools

import numpy as np
import pandas as pd
import pytest

from failwell.scanner import make_dataset, scan
from failwell.scanner.detectors.calibration import expected_calibration_error


def _frame(n, seed, sharpen):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < p).astype(int)
    logit = np.log(p / (1 - p)) * sharpen
    return pd.DataFrame({"y": y, "score": 1 / (1 + np.exp(-logit))})


def _scan(frame):
    ds = make_dataset(frame, target="y", score="score", features=[])
    return scan(ds, detectors=["overconfidence"])


def test_overconfident_scores_are_flagged():
    result = _scan(_frame(5000, 0, sharpen=4.0))
    assert len(result.findings) == 1
    f = result.findings[0]
    assert f.evidence["direction"] == "overconfident"
    assert f.metric("expected_calibration_error").value > 0.1


@pytest.mark.parametrize("n", [300, 5000, 50000])
def test_calibrated_scores_are_clean(n):
    assert _scan(_frame(n, 1, sharpen=1.0)).findings == []


def test_ece_matches_plain_numpy():
    frame = _frame(4000, 2, sharpen=2.0)
    p, y = frame["score"].to_numpy(), frame["y"].to_numpy()
    conf = np.maximum(p, 1 - p)
    correct = (p >= 0.5).astype(int) == y
    edges = np.linspace(0.5, 1.0, 11)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        m = (conf >= lo) & ((conf < hi) if hi < 1 else (conf <= hi))
        if m.any():
            ece += m.mean() * abs(conf[m].mean() - correct[m].mean())
    assert expected_calibration_error(p, y) == pytest.approx(ece)
