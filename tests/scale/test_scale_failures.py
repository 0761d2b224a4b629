"""What a partitioned scan does when the cluster misbehaves: a killed worker is retried, a
model that keeps killing workers is one clear error, an unreachable scheduler is exit 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import failwell
from failwell.scale import open_dataset
from failwell.scale.engines import ScaleError

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

from scale_models import always_dies, dies_once, logistic_score, make_case  # noqa: E402

ROLES = dict(target="label", protected=["region"], features=["x1", "x2", "age"])
CHECKS = ["group-fairness", "overconfidence"]


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    frame = make_case(60_000, seed=11)
    folder = tmp_path_factory.mktemp("parts")
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 6)):
        frame.iloc[rows].to_parquet(folder / f"p{i}.parquet", index=False)
    return folder, frame


def _cluster():
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                    host="127.0.0.1",
                                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})


def test_killed_worker_is_retried(parts, tmp_path, monkeypatch):
    folder, frame = parts
    marker = tmp_path / "killed"
    monkeypatch.setenv("FAILWELL_TEST_KILL_MARKER", str(marker))  # before the workers start
    expected = failwell.scan(failwell.make_dataset(frame, **ROLES), logistic_score,
                             detectors=CHECKS)
    with _cluster() as cluster, distributed.Client(cluster) as client:
        result = failwell.scan(open_dataset(str(folder), **ROLES), dies_once, engine="dask",
                               client=client, detectors=CHECKS)
    assert marker.exists()  # a worker really died mid-scan
    assert [f.title for f in result.findings] == [f.title for f in expected.findings]
    assert result.metrics["accuracy"] == pytest.approx(expected.metrics["accuracy"], abs=1e-12)
    assert all(o.status == "ran" for o in result.outcomes)


def test_worker_killer_is_one_clear_error(parts):
    folder, _ = parts
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), _cluster() as cluster, \
            distributed.Client(cluster) as client, \
            pytest.raises(ScaleError, match="workers kept dying"):
        failwell.scan(open_dataset(str(folder), **ROLES), always_dies, engine="dask",
                      client=client, detectors=CHECKS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "failwell", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})


def test_unreachable_scheduler_exits_2(parts):
    folder, _ = parts
    done = _cli("scan", str(folder), "--target", "label", "--scheduler",
                f"tcp://127.0.0.1:{_free_port()}")
    assert done.returncode == 2
    assert "Could not reach the Dask scheduler" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize("args, message", [
    (["--engine", "memory", "--scheduler", "tcp://127.0.0.1:1"], "need --engine dask"),
    (["--engine", "warp"], "--engine 'warp'"),
    (["--storage-option", "novalue"], "--storage-option 'novalue'"),
])
def test_bad_engine_options_exit_2(parts, args, message):
    folder, _ = parts
    done = _cli("scan", str(folder), "--target", "label", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_csv_on_a_streaming_engine_is_one_message(tmp_path):
    path = tmp_path / "t.csv"
    make_case(100).to_csv(path, index=False)
    done = _cli("scan", str(path), "--target", "label", "--engine", "local")
    assert done.returncode == 2
    assert "Parquet" in done.stderr and "Traceback" not in done.stderr


def test_folder_without_parquet_is_one_message(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    done = _cli("scan", str(tmp_path), "--target", "label")
    assert done.returncode == 2
    assert "No Parquet files" in done.stderr and "Traceback" not in done.stderr
