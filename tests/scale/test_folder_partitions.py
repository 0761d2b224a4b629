"""Hive-style partition folders (``race=Caucasian/part-0.parquet``), as Spark's
``partitionBy``, Dask's ``to_parquet(partition_on=)`` and pyarrow write them: the folder names
are columns, and a ``--where`` on them alone skips the other folders' files unread."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

import failwell
from failwell.scale import open_dataset

distributed = pytest.importorskip("distributed")

ROLES = dict(target="two_year_recid", prediction="score_text",
             prediction_positive=["Medium", "High"], protected=["race", "sex"])
AGGREGATES = ["group-fairness", "data-audit"]


@pytest.fixture(scope="module")
def compas(compas_path) -> pd.DataFrame:
    return pd.read_csv(compas_path)


@pytest.fixture(scope="module")
def by_race(tmp_path_factory, compas) -> str:
    """COMPAS written by pyarrow with one folder per race ("Native%20American" encoded)."""
    folder = tmp_path_factory.mktemp("compas-by-race")
    pads.write_dataset(pa.Table.from_pandas(compas, preserve_index=False), folder,
                       format="parquet", partitioning=["race"], partitioning_flavor="hive")
    assert (folder / "race=Native%20American").is_dir()
    return str(folder)


def _same(a, b) -> None:
    assert [(f.failure_mode, f.severity, f.title) for f in a.findings] == \
        [(f.failure_mode, f.severity, f.title) for f in b.findings]
    assert set(a.metrics) == set(b.metrics)
    for key, value in a.metrics.items():
        assert b.metrics[key] == pytest.approx(value, abs=1e-9, rel=0), key


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_folder_names_are_columns(by_race, compas, engine):
    ds = open_dataset(by_race, **ROLES)
    assert ds.source.folder_columns == ("race",) and ds.n_rows == len(compas)
    kwargs = {"workers": 2} if engine == "dask" else {}
    got = failwell.scan(ds, engine=engine, detectors=AGGREGATES, **kwargs)
    memory = failwell.scan(failwell.make_dataset(compas, **ROLES), detectors=AGGREGATES)
    _same(memory, got)
    assert "Native American" in json.dumps(got.to_dict()["findings"])  # URL-decoded
    assert got.config["engine"]["folder_columns"] == ["race"]
    assert got.config["engine"]["files_skipped"] == 0


def test_where_on_folder_columns_skips_files(by_race, compas):
    where = "race == 'Caucasian' or race == 'African-American'"
    ds = open_dataset(by_race, where=where, **ROLES)
    assert ds.source.files_skipped == 4 and ds.source.files == 2
    assert ds.n_rows == int(compas["race"].isin(["Caucasian", "African-American"]).sum())
    got = failwell.scan(ds, engine="local", detectors=["group-fairness"])
    memory = failwell.scan(failwell.make_dataset(compas, where=where, **ROLES),
                           detectors=["group-fairness"])
    _same(memory, got)
    assert got.config["engine"]["files_skipped"] == 4


def test_where_on_folder_and_file_columns_filters_rows(by_race, compas):
    where = "race == 'Caucasian' and age < 40"  # the folders rule out 5 files, rows the rest
    ds = open_dataset(by_race, where=where, **ROLES)
    assert ds.source.files_skipped == 5
    got = failwell.scan(ds, engine="local", detectors=AGGREGATES)
    memory = failwell.scan(failwell.make_dataset(compas, where=where, **ROLES),
                           detectors=AGGREGATES)
    _same(memory, got)
    assert got.config["n_rows"] == int(((compas.race == "Caucasian") & (compas.age < 40)).sum())


def _write(path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


@pytest.fixture
def by_year_month(tmp_path):
    """Two levels written by hand as Spark names them, with Hive's null marker, a `_SUCCESS`
    file and `.crc` checksums beside the data."""
    rng = np.random.default_rng(3)
    folder = tmp_path / "decisions"
    layout = [("2023", "11"), ("2023", "12"), ("2024", "1"),
              ("2024", "__HIVE_DEFAULT_PARTITION__")]
    for i, (year, month) in enumerate(layout):
        n = 500
        frame = pd.DataFrame({"approved": rng.integers(0, 2, n),
                              "repaid": rng.integers(0, 2, n),
                              "gender": rng.choice(["f", "m"], n)})
        _write(folder / f"year={year}" / f"month={month}" / f"part-{i:05d}.snappy.parquet",
               frame)
        (folder / f"year={year}" / f"month={month}" / f".part-{i:05d}.snappy.parquet.crc"
         ).write_bytes(b"crc")
    (folder / "_SUCCESS").write_text("")
    return folder


def test_numeric_folder_values_and_nulls(by_year_month):
    ds = open_dataset(str(by_year_month), target="repaid", prediction="approved",
                      protected=["gender"])
    assert ds.source.folder_columns == ("year", "month") and ds.n_rows == 2000
    part = ds.source.partitions[-1]
    frame = next(ds.source.batches(part))[0]
    assert frame["year"].dtype == np.int64 and set(frame["year"]) == {2024}
    assert frame["month"].dtype == float and frame["month"].isna().all()  # null marker
    first = next(ds.source.batches(ds.source.partitions[0]))[0]
    assert list(first.columns) == ["approved", "repaid", "gender", "year", "month"]
    assert first["month"].tolist() == [11.0] * 500


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "failwell", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})


def test_cli_where_on_folders(by_year_month, tmp_path):
    out = tmp_path / "r.json"
    done = _cli("scan", str(by_year_month), "--target", "repaid", "--prediction", "approved",
                "--protected", "gender", "--where", "year == 2024", "--detector",
                "group-fairness", "--format", "json", "--output", str(out))
    assert done.returncode in (0, 1), done.stderr
    engine = json.loads(out.read_text())["config"]["engine"]
    assert (engine["files"], engine["files_skipped"]) == (2, 2)
    assert json.loads(out.read_text())["config"]["n_rows"] == 1000
    none = _cli("scan", str(by_year_month), "--target", "repaid", "--where", "year == 1999")
    assert none.returncode == 2 and "No rows are left after --where" in none.stderr
    assert "Traceback" not in none.stderr


def test_mixed_folder_layouts_are_one_clear_error(by_year_month):
    _write(by_year_month / "year=2025" / "part-9.parquet",
           pd.DataFrame({"approved": [1], "repaid": [0], "gender": ["f"]}))
    done = _cli("scan", str(by_year_month), "--target", "repaid")
    assert done.returncode == 2
    assert "same partition folders" in done.stderr and "Traceback" not in done.stderr


def test_auto_streams_a_single_parquet_file_too_large_for_a_frame(tmp_path, monkeypatch):
    from failwell.cli.scan import _engine
    from failwell.scale import source

    path = tmp_path / "one.parquet"
    pd.DataFrame({"repaid": np.arange(1000) % 2, "x": np.arange(1000.0)}).to_parquet(path)
    (tmp_path / "one.csv").write_text("repaid,x\n1,2\n")
    assert _engine("auto", str(path), None, None) == "memory"  # a few kB: one frame
    monkeypatch.setattr(source, "STREAM_BYTES", 1_000)  # as if it held more than 2 GB
    assert _engine("auto", str(path), None, None) == "local"
    assert _engine("memory", str(path), None, None) == "memory"  # asked for: kept
    assert _engine("auto", str(tmp_path / "one.csv"), None, None) == "memory"
