"""Partitioned scans give the in-memory scan's answers: locally streamed and on Dask.

COMPAS (real data) must match exactly, every finding and metric; a generated 2,000,000-row
case in 16 partitions must match exactly on the aggregates and within the sample's stated
precision on the figures drawn from the cross-partition sample.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest
from scale_models import make_case
from sklearn.linear_model import LogisticRegression

import failwell
from failwell.scale import open_dataset

distributed = pytest.importorskip("distributed")

COMPAS_ROLES = dict(target="two_year_recid", prediction="score_text",
                    prediction_positive=["Medium", "High"], protected=["race", "sex"])
SAMPLED = ("auc", "proxy.", "single_auc.", "counterfactual.", "robustness.", "spurious.",
           "slices.significant")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1",
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}
                                  ) as c, distributed.Client(c) as client:
        yield client


@pytest.fixture(scope="module")
def compas_parts(tmp_path_factory, compas_path):
    frame = pd.read_csv(compas_path)
    folder = tmp_path_factory.mktemp("compas-parts")
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 4)):
        frame.iloc[rows].to_parquet(folder / f"part-{i}.parquet", index=False,
                                    row_group_size=1000)
    return folder, pd.read_parquet(folder)


def _view(result) -> tuple[list, dict]:
    d = result.to_dict()
    return ([(f["failure_mode"], f["severity"], f["title"]) for f in d["findings"]],
            d["metrics"])


def _same(a, b, sampled: tuple[str, ...] = ()) -> None:
    findings_a, metrics_a = _view(a)
    findings_b, metrics_b = _view(b)
    assert findings_a == findings_b
    assert set(metrics_a) == set(metrics_b)
    for key, value in metrics_a.items():
        if not key.startswith(sampled):
            assert metrics_b[key] == pytest.approx(value, abs=1e-9, rel=0), key


def test_compas_local_and_dask_equal_memory(compas_parts, cluster):
    folder, whole = compas_parts
    memory = failwell.scan(failwell.make_dataset(whole, **COMPAS_ROLES))
    local = failwell.scan(open_dataset(str(folder), **COMPAS_ROLES), engine="local")
    dask = failwell.scan(open_dataset(str(folder), **COMPAS_ROLES), engine="dask",
                         client=cluster)
    _same(memory, local)
    _same(memory, dask)
    # every finding's evidence too (group tables, slices, examples), not only the headline
    assert json.dumps(memory.to_dict()["findings"], sort_keys=True, default=str) == \
        json.dumps(dask.to_dict()["findings"], sort_keys=True, default=str)
    engine = dask.config["engine"]
    assert (engine["name"], engine["files"], engine["partitions"], engine["workers"]) == \
        ("dask", 4, 8, 2)
    assert local.config["engine"]["name"] == "local" and local.config["n_rows"] == len(whole)
    from failwell.findings import check_scan_dict
    from failwell.report.terminal import render_terminal

    assert "engine dask: 8 partitions on 2 worker(s)" in render_terminal(dask, width=200)
    check_scan_dict(dask.to_dict(), source="a Dask scan")  # the web app takes it as any scan
    # Dask's dashboard is named in the result (and the progress line) and answers on loopback
    assert local.config["engine"]["dashboard"] is None
    assert engine["dashboard"].startswith("http://127.0.0.1:")
    assert httpx.get(engine["dashboard"], follow_redirects=True, timeout=30).status_code == 200


def test_compas_model_shipped_as_skops(compas_parts, cluster, tmp_path):
    """A scikit-learn model crosses to the workers as skops bytes and gives the same scan."""
    folder, whole = compas_parts
    features = ["age", "priors_count", "juv_fel_count", "juv_misd_count"]
    model = LogisticRegression(max_iter=500).fit(whole[features], whole["two_year_recid"])
    roles = dict(target="two_year_recid", protected=["race", "sex"], features=features)
    memory = failwell.scan(failwell.make_dataset(whole, **roles), model)
    dask = failwell.scan(open_dataset(str(folder), **roles), model, engine="dask",
                         client=cluster)
    _same(memory, dask)
    assert "group-unfairness" in {f[0] for f in _view(dask)[0]}
    assert dask.timings["partials.predict"] > 0  # called on the workers, per partition


@pytest.fixture(scope="module")
def big_case(tmp_path_factory):
    frame = make_case(2_000_000)
    folder = tmp_path_factory.mktemp("big-case")
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 16)):
        frame.iloc[rows].to_parquet(folder / f"part-{i:02d}.parquet", index=False)
    return folder, frame


@pytest.mark.slow
def test_two_million_rows_in_16_partitions(big_case, cluster):
    folder, frame = big_case
    roles = dict(target="label", score="score", protected=["region", "gender"])
    detectors = ["data-audit", "group-fairness", "overconfidence", "performance-slices",
                 "proxy-features"]
    memory = failwell.scan(failwell.make_dataset(frame, **roles), detectors=detectors)
    dask = failwell.scan(open_dataset(str(folder), **roles), engine="dask", client=cluster,
                         detectors=detectors)
    assert dask.config["engine"]["partitions"] == 16 and dask.config["n_rows"] == 2_000_000
    findings_m, metrics_m = _view(memory)
    findings_d, metrics_d = _view(dask)
    # Slices of a column with over 10,000 distinct values are cut at the sample's quantiles,
    # so their labels move a little; every other finding is word for word the same.
    assert [f[:2] for f in findings_d] == [f[:2] for f in findings_m]
    assert [f for f in findings_d if f[0] != "underperforming-slice"] == \
        [f for f in findings_m if f[0] != "underperforming-slice"]
    assert dask.diagnostics["slices_from_sample"] == ["x1", "x2"]
    assert {f[0] for f in findings_m} >= {"group-unfairness", "overconfidence",
                                          "underperforming-slice"}
    for key, value in metrics_m.items():  # counts and rates from aggregates: exact
        if not key.startswith(SAMPLED):
            assert metrics_d[key] == pytest.approx(value, abs=1e-9, rel=0), key
    # the group tables are equal counts, group by group
    table_m = next(f for f in memory.findings if f.evidence.get("attributes") == ["region"])
    table_d = next(f for f in dask.findings if f.evidence.get("attributes") == ["region"])
    assert [(g["group"], g["n"], g["tp"], g["fp"]) for g in table_m.evidence["groups"]] == \
        [(g["group"], g["n"], g["tp"], g["fp"]) for g in table_d.evidence["groups"]]
    # figures from the 100,000-row sample: within their sampling error
    assert metrics_d["auc"] == pytest.approx(metrics_m["auc"], abs=0.01)
    for key in (k for k in metrics_m if k.startswith("proxy.")):
        assert metrics_d[key] == pytest.approx(metrics_m[key], abs=0.05), key
    slice_m = next(f for f in memory.findings if f.failure_mode == "underperforming-slice")
    slice_d = next(f for f in dask.findings if f.failure_mode == "underperforming-slice")
    head_m, head_d = slice_m.evidence["slices"][0], slice_d.evidence["slices"][0]
    assert head_d["columns"] == head_m["columns"]
    assert head_d["n"] == pytest.approx(head_m["n"], rel=0.03)  # bins within ~0.5 % in rank
    assert head_d["excess"] == pytest.approx(head_m["excess"], abs=0.01)


def test_model_function_called_on_workers(big_case, cluster):
    """A module:function model is imported by name on each worker (no pickled code)."""
    folder, frame = big_case
    from scale_models import logistic_score

    roles = dict(target="label", protected=["region"], features=["x1", "x2", "age"])
    sub = frame.iloc[:200_000]
    one = folder.parent / "one-file"
    one.mkdir(exist_ok=True)
    sub.to_parquet(one / "a.parquet", index=False, row_group_size=50_000)
    memory = failwell.scan(failwell.make_dataset(sub, **roles), logistic_score,
                           detectors=["group-fairness", "overconfidence"])
    dask = failwell.scan(open_dataset(str(one), **roles), logistic_score, engine="dask",
                         client=cluster, detectors=["group-fairness", "overconfidence"])
    _same(memory, dask, sampled=("auc",))  # 200,000 rows: the AUC comes from the sample
    assert dask.metrics["auc"] == pytest.approx(memory.metrics["auc"], abs=0.01)
    assert dask.config["engine"]["partitions"] == 4


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_duplicates_and_overlap_counted_exactly(tmp_path, engine, request):
    """Row hashes: spilled to bucket files locally, shuffled across the workers on Dask;
    either way the same exact counts and example rows as in memory."""
    frame = make_case(30_000, seed=3)
    frame = pd.concat([frame, frame.iloc[:500], frame.iloc[100:150]], ignore_index=True)
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 5)):
        frame.iloc[rows].to_parquet(tmp_path / f"p{i}.parquet", index=False)
    training = pd.concat([make_case(5_000, seed=4), frame.iloc[20_000:20_900]])
    roles = dict(target="label", score="score")
    config = failwell.ScanConfig(reference=training)
    memory = failwell.scan(failwell.make_dataset(frame, **roles), detectors=["data-audit"],
                           config=config)
    client = request.getfixturevalue("cluster") if engine == "dask" else None
    scanned = failwell.scan(open_dataset(str(tmp_path), **roles), detectors=["data-audit"],
                            engine=engine, client=client, config=config)
    _same(memory, scanned)
    dup = next(f for f in scanned.findings if f.title.endswith("duplicate rows (1.8%)"))
    assert dup.evidence["example_rows"] == list(range(30_000, 30_010))
    leak = next(f for f in scanned.findings if f.failure_mode == "leakage").evidence
    expected = next(f for f in memory.findings if f.failure_mode == "leakage").evidence
    for key in ("example_rows", "columns_compared", "training_rows"):
        assert leak[key] == expected[key], key
    for key in ("expected_by_chance", "p_value"):
        assert leak[key] == pytest.approx(expected[key], rel=1e-9), key


def test_where_filter_applies_per_partition(compas_parts):
    folder, whole = compas_parts
    where = "age < 40"
    memory = failwell.scan(failwell.make_dataset(whole, where=where, **COMPAS_ROLES),
                           detectors=["group-fairness", "data-audit"])
    local = failwell.scan(open_dataset(str(folder), where=where, **COMPAS_ROLES),
                          detectors=["group-fairness", "data-audit"], engine="local")
    _same(memory, local)
    assert local.config["n_rows"] == int((whole["age"] < 40).sum())

