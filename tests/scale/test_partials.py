"""The mergeable pieces on their own: exact quantiles from counts, the bottom-k sample, row
hashes in memory and spilled, and merge's rules."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from failwell.scale.sample import RowSample, key_cut, row_keys
from failwell.scanner.detectors.slices import (
    PROFILE_CAP,
    ValueCounts,
    plan_slices,
    positions_in,
    quantiles_from_counts,
)
from failwell.scanner.duplicates import RowHashes, spilling
from failwell.scanner.partials import Extremes, Failed, merge, merge_all


@pytest.mark.parametrize("seed", range(5))
def test_quantiles_from_counts_equal_numpy(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, rng.integers(2, 5000)).astype(float) * rng.choice([1, 0.37])
    x[rng.random(len(x)) < 0.1] = np.nan
    values, counts = np.unique(x[~np.isnan(x)], return_counts=True)
    qs = np.linspace(0, 1, 5)
    assert np.array_equal(quantiles_from_counts(values, counts, qs), np.nanquantile(x, qs))


def test_slice_plan_from_merged_counts_equals_whole_column():
    rng = np.random.default_rng(1)
    col = pd.Series(rng.integers(0, 300, 20_000).astype(float), name="n")
    col[rng.random(len(col)) < 0.05] = np.nan
    parts = [ValueCounts.of(col.iloc[i:i + 3000]) for i in range(0, len(col), 3000)]
    merged = merge_all(parts)
    whole, pieced = plan_slices(col), plan_slices(col.iloc[:10], merged)
    assert whole.labels == pieced.labels and np.array_equal(whole.codes(col), pieced.codes(col))
    cats = pd.Series(rng.choice([f"c{i}" for i in range(40)] + [None], 20_000), name="c")
    merged = merge_all([ValueCounts.of(cats.iloc[i:i + 7000]) for i in range(0, 20_000, 7000)])
    whole, pieced = plan_slices(cats), plan_slices(cats.iloc[:5], merged)
    assert whole.labels == pieced.labels and len(whole.labels) == 21  # top 20 + other
    assert np.array_equal(whole.codes(cats), pieced.codes(cats))


def test_value_counts_give_up_past_the_cap():
    col = pd.Series(np.arange(30_000.0), name="id")
    merged = merge(ValueCounts.of(col[:9_000]), ValueCounts.of(col[9_000:18_000]))
    assert merged.counts is None  # 18,000 distinct: the plan will use the sample
    assert plan_slices(col.sample(1000, random_state=0), merged).exact is False


def test_sample_is_uniform_and_independent_of_partitioning():
    frame = pd.DataFrame({"v": np.arange(50_000)})
    positions = np.arange(50_000)

    def sample(bounds):
        parts = [RowSample.of(frame.iloc[a:b], positions[a:b], None, None, 3, 1000)
                 for a, b in pairwise(bounds)]
        return merge_all(parts[::-1]).ordered()

    one, many = sample([0, 50_000]), sample([0, 7, 9_000, 33_333, 50_000])
    assert np.array_equal(one.positions, many.positions)
    cut = key_cut(1000, 50_000)  # what partitions keep: ~2.4 % of their rows, not 1000
    parts = [RowSample.of(frame.iloc[a:b], positions[a:b], None, None, 3, 1000, cut)
             for a, b in pairwise([0, 10_000, 20_000, 30_000, 40_000, 50_000])]
    assert max(len(p.positions) for p in parts) < 300
    assert np.array_equal(merge_all(parts).ordered().positions, one.positions)
    assert np.array_equal(one.frame["v"].to_numpy(), one.positions)
    assert 20_000 < one.positions.mean() < 30_000  # not the first rows
    keys = row_keys(3, positions)
    assert keys.min() >= 0 and keys.max() < 1 and abs(keys.mean() - 0.5) < 0.01


def test_row_hashes_in_memory_and_spilled_agree(tmp_path):
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 5_000, 20_000).astype(np.uint64) * np.uint64(2**52 + 7)
    positions = np.arange(len(hashes))
    expected_dup = len(hashes) - len(np.unique(hashes))
    first_seen = pd.Series(hashes).duplicated().to_numpy()
    expected_examples = np.flatnonzero(first_seen)[:10].tolist()
    chunks = [(hashes[i:i + 3000], positions[i:i + 3000]) for i in range(0, 20_000, 3000)]
    in_memory = merge_all([RowHashes.of(h, p) for h, p in chunks[::-1]])
    assert in_memory.duplicate_summary() == (expected_dup, expected_examples)
    with spilling(tmp_path):
        spilled = merge_all([RowHashes.of(h, p) for h, p in chunks])
        assert spilled.duplicate_summary() == (expected_dup, expected_examples)
        assert spilled.hashes.size == 0  # nothing held in memory


def test_merge_rules():
    a = pd.DataFrame({"n": [1.0, 2.0]}, index=pd.Index(["x", None], name="g"))
    b = pd.DataFrame({"n": [5.0]}, index=pd.Index([None], name="g"))
    got = merge(a, b)
    assert got.loc["x", "n"] == 1 and got["n"].sum() == 8 and len(got) == 2
    assert merge({"k": 1, "e": Extremes.of(np.array([0.2, 0.9]))},
                 {"k": 2, "e": Extremes.of(np.array([-1.0]))}) == {"k": 3, "e": Extremes(-1, 0.9)}
    assert isinstance(merge(Failed("boom"), {"x": 1}), Failed)
    assert merge_all([]) is None


@pytest.mark.parametrize("dtype", ["str", object, "string[pyarrow]", "category"])
def test_positions_in_equal_get_indexer(dtype):
    """The Arrow lookup of categories gives pandas' own answer, missing values included."""
    rng = np.random.default_rng(4)
    values = np.array(["auto", "home", "édu", "", "other", "x" * 40], dtype=object)
    col = pd.Series(rng.choice(values, 5000), dtype=object)
    col[rng.random(5000) < 0.05] = None
    col = col.astype(dtype)
    for kept in (pd.Index(["auto", "édu", ""]), pd.Index(["none of these"]),
                 pd.Index([1, 2])):
        expected = kept.get_indexer(col.astype(object))
        assert np.array_equal(positions_in(kept, col), expected), (dtype, list(kept))


def test_value_counts_give_up_early_only_past_the_cap():
    many = pd.Series(np.arange(5 * PROFILE_CAP, dtype=float))
    assert ValueCounts.of(many).counts is None
    late = pd.Series(np.r_[np.zeros(4 * PROFILE_CAP), np.arange(PROFILE_CAP + 1.0)])
    assert ValueCounts.of(late).counts is None  # distinct values only after the head
    few = pd.Series(np.r_[np.arange(PROFILE_CAP, dtype=float), np.zeros(4 * PROFILE_CAP)])
    got = ValueCounts.of(few)
    assert len(got.counts) == PROFILE_CAP and got.counts[0.0] == 4 * PROFILE_CAP + 1
