"""Pruning from footer statistics never drops a row the filter keeps, and does skip.

Soundness is checked on 400 random expressions over sorted, constant, null-holding, NaN-holding,
string, boolean and timestamp columns: every row group in which pandas' own ``eval`` keeps a row
must survive pruning. The scan over the pruned data must then equal the in-memory scan.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import failwell
from failwell.scale import open_dataset
from failwell.scale.pruning import may_match, parse
from failwell.scale.source import open_parquet

pytest.importorskip("fsspec")

GROUP = 250


def _table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = GROUP * 24
    block = np.arange(n) // GROUP
    frame = pd.DataFrame({
        "day": np.sort(rng.integers(0, 60, n)),  # sorted: min/max separate the groups
        "amount": rng.normal(100, 30, n).round(1),
        "region": np.array(["east", "north", "south", "west"])[(block // 6) % 4],
        "code": pd.array(rng.integers(0, 5, n), dtype="Int64"),
        "flag": block % 3 == 0,
        "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(block, unit="D"),
        "label": rng.integers(0, 2, n),
        "group": rng.choice(["a", "b"], n),
    })
    frame.loc[block == 5, "amount"] = 5.0  # a constant group
    frame.loc[(block == 6) & (np.arange(n) % 7 == 0), "amount"] = np.nan  # constant but NaN
    frame.loc[block == 6, "amount"] = frame.loc[block == 6, "amount"].where(
        frame.loc[block == 6, "amount"].isna(), 5.0)
    frame.loc[block == 8, "code"] = 2  # constant ...
    frame.loc[(block == 8) & (np.arange(n) % 5 == 0), "code"] = pd.NA  # ... with nulls
    frame.loc[block == 9, "code"] = 3  # constant, no nulls
    frame.loc[block == 10, "code"] = pd.NA  # all null: no statistics
    return frame


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    frame = _table()
    out = tmp_path_factory.mktemp("stats")
    half = len(frame) // 2
    for i, part in enumerate([frame.iloc[:half], frame.iloc[half:]]):
        table = pa.Table.from_pandas(part, preserve_index=False)
        # real NaN values, not nulls (pandas would write nulls; Spark writes NaN)
        nan = pa.array(part["amount"].to_numpy(), type=pa.float64(), from_pandas=False)
        table = table.set_column(table.schema.get_field_index("amount"), "amount", nan)
        pq.write_table(table, out / f"part-{i}.parquet", row_group_size=GROUP)
    return out


def _random_where(rng: np.random.Generator, frame: pd.DataFrame, depth: int = 0) -> str:
    if depth < 2 and rng.random() < 0.45:
        joiner = rng.choice([" and ", " or ", " & ", " | "])
        left = _random_where(rng, frame, depth + 1)
        right = _random_where(rng, frame, depth + 1)
        text = f"({left}){joiner}({right})"
        return f"not ({text})" if rng.random() < 0.1 else text
    column = rng.choice(["day", "amount", "region", "code", "flag", "ts"])
    values = frame[column].dropna()
    pick = values.iloc[int(rng.integers(len(values)))]
    if column == "day":
        literal = str(int(pick) + int(rng.integers(-2, 3)))
    elif column == "amount":
        literal = str(rng.choice([5.0, float(pick), float(pick) + 0.05]))
    elif column == "region":
        literal = repr(str(rng.choice(["east", "north", "south", "west", "m", "zz"])))
    elif column == "code":
        literal = str(int(rng.integers(-1, 6)))
    elif column == "flag":
        literal = str(bool(rng.random() < 0.5))
    else:
        literal = repr(str(pick.date()))
    if rng.random() < 0.15 and column in ("day", "code", "region"):
        others = ", ".join([literal, literal if column == "region" else str(rng.integers(9))])
        return f"{column} {rng.choice(['in', 'not in'])} [{others}]"
    op = rng.choice(["==", "!=", "<", "<=", ">", ">="])
    return f"{literal} {op} {column}" if rng.random() < 0.2 else f"{column} {op} {literal}"


def test_pruning_never_drops_a_matching_row_group(folder):
    whole = open_parquet(str(folder))
    frames = [next(whole.batches(p))[0] for p in whole.partitions]
    rng = np.random.default_rng(7)
    checked = pruned_some = 0
    for _ in range(400):
        where = _random_where(rng, pd.concat(frames, ignore_index=True))
        try:
            truth = [bool(np.asarray(f.eval(where), dtype=bool).any()) for f in frames]
        except Exception:
            continue  # pandas cannot evaluate it either
        checked += 1
        try:
            kept = open_parquet(str(folder), where=where)
        except failwell.InputError:
            assert not any(truth), where  # "no rows left" only when truly none
            continue
        kept_groups = {(p.path, p.row_group) for p in kept.partitions}
        for part, has_rows in zip(whole.partitions, truth, strict=True):
            if has_rows:
                assert (part.path, part.row_group) in kept_groups, where
        pruned_some += len(kept_groups) < len(whole.partitions)
        assert sum(p.rows for p in kept.partitions) == kept.n_rows
    assert checked >= 300
    assert pruned_some >= checked // 4  # it does skip, often


def test_sorted_column_skips_exactly_the_groups_below(folder):
    whole = open_parquet(str(folder))
    frames = [next(whole.batches(p))[0] for p in whole.partitions]
    needed = sum(f["day"].max() >= 40 for f in frames)
    kept = open_parquet(str(folder), where="day >= 40")
    assert len(kept.partitions) == needed < len(whole.partitions)
    assert kept.row_groups_skipped == len(whole.partitions) - needed
    assert [p.offset for p in kept.partitions] == \
        list(np.cumsum([0] + [p.rows for p in kept.partitions])[:-1])  # renumbered


def test_null_and_nan_pass_not_equal():
    assert may_match(parse("code != 2"), {"code": (2, 2, True)})  # a null != 2 is True
    assert not may_match(parse("code != 3"), {"code": (3, 3, False)})
    assert may_match(parse("code not in [2]"), {"code": (2, 2, True)})
    assert not may_match(parse("code == 4"), {"code": (2, 3, True)})
    assert may_match(parse("x > 1"), {"x": (float("nan"), 2.0, True)})  # unusable bounds


def test_what_it_cannot_read_is_a_possible_match():
    bounds = {"day": (0, 10, False), "ts": (pd.Timestamp("2024-01-01"),
                                            pd.Timestamp("2024-01-02"), False)}
    for where in ("day.between(50, 60)", "`day` > 50", "@limit < day", "ts > '2030-01-01'",
                  "day > other", "abs(day) > 50", "day > 50 or unknown == 1"):
        assert may_match(parse(where), bounds), where
    assert not may_match(parse("day > 50 and unknown == 1"), bounds)
    assert not may_match(parse("50 < day"), bounds)  # the literal on the left
    assert not may_match(parse("0 <= day < 0"), bounds) and may_match(parse("0 <= day < 1"),
                                                                      bounds)


def test_scan_of_pruned_data_equals_memory(folder):
    where = "day >= 30 and region != 'east'"
    whole = pd.read_parquet(folder)
    roles = dict(target="label", prediction="flag", protected=["group"])
    ds = open_dataset(str(folder), where=where, **roles)
    assert ds.source.row_groups_skipped > 0
    got = failwell.scan(ds, engine="local", detectors=["group-fairness", "data-audit"])
    memory = failwell.scan(failwell.make_dataset(whole, where=where, **roles),
                           detectors=["group-fairness", "data-audit"])
    assert got.config["n_rows"] == int(whole.eval(where).sum())
    assert got.config["engine"]["row_groups_skipped"] == ds.source.row_groups_skipped
    for key, value in memory.metrics.items():
        assert got.metrics[key] == pytest.approx(value, abs=1e-9, rel=0), key
    assert [f.title for f in got.findings] == [f.title for f in memory.findings]
