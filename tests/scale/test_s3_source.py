"""Partitioned Parquet on ``s3://``, read through s3fs from a real S3 server on loopback.

moto's server mode answers real HTTP on 127.0.0.1 (a free port), so the requests, the
signatures, the range reads of the footers and the listing of a prefix all happen as they
would against a bucket: no mock of failwell's own, no ``mock_aws``. COMPAS (real data) is
uploaded as 4 Parquet files of row groups of 1,000 rows; scanning the URL, from the API,
from the CLI and from Dask worker processes, must give the in-memory scan's findings and
metrics.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import failwell
from failwell.cli import app
from failwell.scale import open_dataset

BUCKET = "bucket"
URL = f"s3://{BUCKET}/compas/"
FILES = 4
ROW_GROUP = 1000
# COMPAS's features, plus what the detectors should catch: leakage (is_recid, r_charge_degree),
# floats and strings with nulls. The file's 50 columns would take the proxy and spurious-
# correlation detectors ~30 s per scan on names and case numbers, and test nothing more here.
FEATURES = ["sex", "age", "age_cat", "race", "juv_fel_count", "juv_misd_count",
            "juv_other_count", "priors_count", "c_charge_degree", "c_charge_desc",
            "days_b_screening_arrest", "decile_score", "is_recid", "r_charge_degree"]
ROLES = dict(target="two_year_recid", prediction="score_text",
             prediction_positive=["Medium", "High"], protected=["race", "sex"],
             features=FEATURES)
CLI_ROLES = ["--target", "two_year_recid", "--prediction", "score_text",
             "--prediction-positive", "Medium", "--prediction-positive", "High",
             "--protected", "race", "--protected", "sex",
             *(arg for f in FEATURES for arg in ("--feature", f))]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


class S3:
    """The running server: its endpoint, a boto3 client on it, and what was uploaded."""

    def __init__(self, endpoint: str, client, pieces: list[pd.DataFrame]):
        self.endpoint = endpoint
        self.client = client
        self.pieces = pieces
        self.options = {"endpoint_url": endpoint}

    @property
    def whole(self) -> pd.DataFrame:
        return pd.concat(self.pieces, ignore_index=True)

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=BUCKET, Key=key, Body=body)

    def put_parquet(self, key: str, frame: pd.DataFrame) -> None:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False, row_group_size=ROW_GROUP)
        self.put(key, buf.getvalue())


@pytest.fixture(scope="module")
def s3(compas_path):
    """A moto S3 server on 127.0.0.1 holding COMPAS as s3://bucket/compas/part-{0..3}.parquet.

    The environment (fake credentials, no ~/.aws files, loopback past any proxy) is set
    before anything starts, so Dask worker processes spawned later inherit it, and is
    restored afterwards."""
    import boto3  # moto[server], boto3 and s3fs are dev dependencies: missing is a failure
    from moto.server import ThreadedMotoServer
    from threadpoolctl import threadpool_limits

    # one OpenMP thread, as `make test` sets: the spurious-correlation detector's boosting
    # otherwise spins threads against every other process on a small, busy machine (10x)
    with pytest.MonkeyPatch.context() as mp, threadpool_limits(limits=1):
        for key, value in CREDENTIALS.items():
            mp.setenv(key, value)
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(key, raising=False)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        for key in ("NO_PROXY", "no_proxy"):
            mp.setenv(key, ",".join(filter(None, [os.environ.get(key), "127.0.0.1",
                                                  "localhost"])))
        quiet = logging.getLogger("werkzeug")  # one log line per request otherwise
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            client = boto3.client("s3", endpoint_url=endpoint)
            client.create_bucket(Bucket=BUCKET)
            frame = pd.read_csv(compas_path)
            pieces = [frame.iloc[rows].reset_index(drop=True)
                      for rows in np.array_split(np.arange(len(frame)), FILES)]
            store = S3(endpoint, client, pieces)
            for i, piece in enumerate(pieces):
                store.put_parquet(f"compas/part-{i}.parquet", piece)
            # the bad inputs: a prefix without Parquet, and a .parquet that is not Parquet
            store.put("notes/README.txt", b"no data here\n")
            store.put("broken/part-0.parquet", b"this is a CSV, not Parquet\na,b\n1,2\n" * 50)
            yield store
            client.close()
        finally:
            server.stop()
            quiet.setLevel(level)


@pytest.fixture(scope="module")
def memory(s3):
    """The reference: the in-memory scan of the same rows as one pandas frame."""
    return failwell.scan(failwell.make_dataset(s3.whole, **ROLES)).to_dict()


@pytest.fixture(scope="module")
def local(s3):
    ds = open_dataset(URL, storage_options=s3.options, **ROLES)
    return failwell.scan(ds, engine="local").to_dict()


def headlines(result: dict) -> list[tuple[str, str, str]]:
    return [(f["failure_mode"], f["severity"], f["title"]) for f in result["findings"]]


def assert_same_scan(got: dict, want: dict) -> None:
    assert headlines(got) == headlines(want)
    assert set(got["metrics"]) == set(want["metrics"])
    for key, value in want["metrics"].items():
        assert got["metrics"][key] == pytest.approx(value, abs=1e-9, rel=0, nan_ok=True), key


def cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(res) -> str:
    """Exit 2 and one 'Error:' line on stderr: no traceback, nothing on stdout."""
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.stdout == "", res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.stderr
    return lines[0]


def test_the_api_on_s3_gives_the_in_memory_scan(s3, local, memory):
    assert len(memory["findings"]) >= 5  # COMPAS has findings to compare, not an empty list
    assert_same_scan(local, memory)
    # the evidence behind every finding too (group tables, slices, example rows)
    assert json.dumps(local["findings"], sort_keys=True, default=str) == \
        json.dumps(memory["findings"], sort_keys=True, default=str)
    engine = local["config"]["engine"]
    row_groups = sum(math.ceil(len(p) / ROW_GROUP) for p in s3.pieces)
    assert row_groups > FILES  # several row groups per file, so partitions are not files
    assert (engine["name"], engine["files"], engine["partitions"], engine["source"]) == \
        ("local", FILES, row_groups, URL)
    assert local["config"]["n_rows"] == len(s3.whole) == 7214


def test_the_cli_on_s3_writes_the_api_findings(s3, local, memory, tmp_path):
    out = tmp_path / "scan.json"
    res = cli("scan", URL, *CLI_ROLES, "--storage-option", f"endpoint_url={s3.endpoint}",
              "--format", "json", "--output", out)
    assert res.exit_code == 1, res.output  # COMPAS has high-severity findings
    data = json.loads(out.read_text())
    assert data["findings"] == json.loads(json.dumps(local["findings"], default=str))
    assert_same_scan(data, local)
    assert_same_scan(data, memory)
    engine = data["config"]["engine"]
    assert (engine["name"], engine["files"], engine["partitions"]) == \
        ("local", FILES, local["config"]["engine"]["partitions"])


def test_dask_workers_read_from_s3(s3, memory):
    import distributed

    ds = open_dataset(URL, storage_options=s3.options, **ROLES)
    # dashboard_address=None still starts the scheduler's HTTP server on 8787, and warns
    # (an error under this suite's filterwarnings) when another cluster holds that port
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                  silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        # separate processes, started after the fixture set the credentials
        seen = client.run(lambda: (os.getpid(), os.environ.get("AWS_ACCESS_KEY_ID")))
        assert len(seen) == 2
        assert {key for _, key in seen.values()} == {"testing"}
        assert os.getpid() not in {pid for pid, _ in seen.values()}
        result = failwell.scan(ds, engine="dask", client=client).to_dict()
    assert_same_scan(result, memory)
    engine = result["config"]["engine"]
    assert (engine["name"], engine["files"], engine["workers"]) == ("dask", FILES, 2)
    assert engine["partitions"] == sum(math.ceil(len(p) / ROW_GROUP) for p in s3.pieces)


@pytest.mark.parametrize("url, says", [
    ("s3://no-such-bucket/compas/", ("No such", "s3://no-such-bucket/compas/")),
    (f"s3://{BUCKET}/notes/", ("No Parquet files", f"s3://{BUCKET}/notes/")),
    (f"s3://{BUCKET}/broken/", ("Parquet footer", "broken/part-0.parquet")),
], ids=["missing-bucket", "no-parquet-files", "not-parquet"])
def test_bad_s3_input_is_one_clear_error(s3, tmp_path, url, says):
    out = tmp_path / "scan.json"
    res = cli("scan", url, *CLI_ROLES, "--storage-option", f"endpoint_url={s3.endpoint}",
              "--format", "json", "--output", out)
    message = one_line_error(res)
    for words in says:
        assert words in message, message
    assert not out.exists()


def test_a_prefix_opened_again_sees_the_objects_added_since(s3):
    """A long-lived process (the web app, a notebook, a nightly job) scans a prefix, new
    partitions land, it scans again: the new rows must be there."""
    first, second = s3.pieces[:2]
    s3.put_parquet("growing/part-0.parquet", first)
    before = open_dataset(f"s3://{BUCKET}/growing/", storage_options=s3.options, **ROLES)
    assert before.n_rows == len(first)
    s3.put_parquet("growing/part-1.parquet", second)
    after = open_dataset(f"s3://{BUCKET}/growing/", storage_options=s3.options, **ROLES)
    assert (after.n_rows, after.source.files) == (len(first) + len(second), 2)
