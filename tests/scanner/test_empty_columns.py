"""A column with no values at all (common after a --where filter) is skipped by the
surrogate models, not a crash of the detectors that use them (scikit-learn 1.9's binning
fails on it)."""

import numpy as np

from conftest import people
from failwell.scanner import make_dataset, scan


def test_an_all_missing_column_does_not_break_the_surrogates(tmp_path):
    frame = people(1500, seed=4)
    frame["never_recorded"] = np.nan
    frame["decision"] = (frame["skill"] > 0.5).astype(int)
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    ds = make_dataset(path, target="hired", prediction="decision", protected=["gender"])
    result = scan(ds, detectors=["proxy-features", "spurious-correlation"])
    assert [o.status for o in result.outcomes] == ["ran", "ran"], result.outcomes
