"""`failwell loop audit` on the command line: reports, and one clear message (exit 2) for
each kind of bad log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from failwell.cli import app

ARGS = ["--item", "sku", "--reward", "clicked", "--time", "ts", "--propensity", "pscore"]


def log(n: int = 4000, *, seed: int = 0, focus: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    item = np.where(rng.random(n) < focus, rng.integers(0, 3, n), rng.integers(0, 60, n))
    return pd.DataFrame({
        "ts": (pd.Timestamp("2026-02-01") + pd.to_timedelta(rng.integers(0, 8 * 86400, n),
                                                            unit="s")).astype(str),
        "sku": item, "clicked": (rng.random(n) < 0.04).astype(int), "pscore": 1 / 60})


def run(tmp_path, frame: pd.DataFrame, *extra: str, reference: pd.DataFrame | None = None,
        suffix: str = ".parquet"):
    path = tmp_path / f"logs{suffix}"
    frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    argv = ["loop", "audit", str(path), *ARGS, *extra]
    if reference is not None:
        reference.to_csv(tmp_path / "ref.csv", index=False)
        argv += ["--reference", str(tmp_path / "ref.csv")]
    return CliRunner().invoke(app, argv)


def test_json_and_html_reports(tmp_path):
    res = run(tmp_path, log(focus=0.7, seed=1), "--format", "json", reference=log(seed=2))
    assert res.exit_code == 1, res.output  # a medium finding, --fail-on medium
    body = json.loads(res.stdout)
    assert body["config"]["verdict"] == "feedback-loop"
    assert body["findings"][0]["failure_mode"] == "feedback-loop"
    assert {w["log"] for w in body["diagnostics"]["loop_windows"]} == {"logs", "reference"}
    html = tmp_path / "loop.html"
    res = run(tmp_path, log(focus=0.7, seed=1), "--output", str(html), "--fail-on", "high",
              reference=log(seed=2))
    assert res.exit_code == 0, res.output
    page = html.read_text("utf-8")
    assert "Exposure and the proxy over time" in page and "feedback-loop" in page


def test_clean_logs_exit_0(tmp_path):
    res = run(tmp_path, log(seed=1), "--format", "json", reference=log(seed=2))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["config"]["verdict"] == "clean"


def test_inconclusive_is_exit_2_after_the_report(tmp_path):
    res = run(tmp_path, log(n=120, focus=0.5, seed=1), "--format", "json",
              reference=log(n=120, seed=2))
    assert res.exit_code == 2, res.output
    assert json.loads(res.stdout)["config"]["verdict"] == "inconclusive"
    assert "Inconclusive" in res.stderr


def bad(frame: pd.DataFrame, column: str, values) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[frame.index[[3, 7]], column] = values
    return frame


@pytest.mark.parametrize(("frame", "extra", "message"), [
    (bad(log(), "pscore", [0.0, 0.0]), [], "outside (0, 1]"),
    (bad(log(), "pscore", [1.5, 2.0]), [], "2 row(s), the first at row 4 (1.5)"),
    (bad(log(), "pscore", ["n/a", None]), [], "not numbers"),
    (log().assign(sku=7), [], "same item"),
    (log().assign(clicked=0), [], "no rewards"),
    (bad(log(), "clicked", [None, None]), [], "empty or not numbers"),
    (bad(log(), "ts", ["yesterday", "soon"]), [], "cannot be parsed"),
    (log(), ["--propensity", "pscor"], "no column 'pscor'; did you mean 'pscore'"),
    (log(), ["--windows", "1"], "--windows"),
    (log(), ["--guardrail", "clicked:sideways"], "COLUMN:lower"),
])
def test_bad_logs_are_one_message_and_exit_2(tmp_path, frame, extra, message):
    res = run(tmp_path, frame, *extra, suffix=".csv")
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split()), res.output
    assert "Traceback" not in res.output


OBD = Path(__file__).resolve().parents[3] / "shared" / "data" / "obd" / "random" / "all.csv"
OPE = ["loop", "ope", str(OBD), "--item", "item_id", "--reward", "click"]


@pytest.mark.skipif(not OBD.is_file(), reason="needs ../shared/data/obd")
def test_ope_of_the_uniform_policy_on_uniform_logs_is_the_logged_rate():
    res = CliRunner().invoke(app, [*OPE, "--propensity", "propensity_score", "--format",
                                   "json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    clicks = pd.read_csv(OBD, usecols=["click"])["click"]
    ips = next(e for e in body["estimates"] if e["estimator"] == "ips")
    assert ips["value"] == pytest.approx(clicks.mean(), abs=1e-12)
    assert body["logged_reward"] == pytest.approx(clicks.mean(), abs=1e-12)
    assert {e["estimator"] for e in body["estimates"]} == {"ips", "snips", "dr"}


def shaped_wrong(frame, history, items):  # a candidate callable for the test below
    return np.ones((len(frame), len(items) - 1))


@pytest.mark.skipif(not OBD.is_file(), reason="needs ../shared/data/obd")
@pytest.mark.parametrize(("extra", "message"), [
    ([], "need the logging policy's propensity"),
    (["--propensity", "propensity_score", "--candidate", "top:0"], "K must be a whole number"),
    (["--propensity", "propensity_score", "--candidate", "top:many"], "K must be"),
    (["--propensity", "propensity_score", "--candidate", "nonsense"], "module:function"),
    (["--propensity", "propensity_score", "--candidate", "test_loop_cli:shaped_wrong"],
     "returned shape"),
    (["--propensity", "propensity_score", "--estimator", "ipw"], "unknown estimator"),
    (["--propensity", "propensity_score", "--method", "jackknife"], "method must be"),
])
def test_ope_bad_input_is_one_message(extra, message):
    res = CliRunner().invoke(app, [*OPE, *extra])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())


def popularity_recommender(logs: pd.DataFrame):  # a user model for the test below
    """Scores every item by its clicks so far: the same for every user."""
    clicks = logs.groupby("item")["click"].sum()
    users = int(logs["user"].max()) + 1
    scores = np.zeros((users, 30))
    scores[:, clicks.index.to_numpy()] = clicks.to_numpy()
    return scores + np.arange(30) * 1e-9  # ties broken the same way every round


def test_simulate_cli_with_a_user_model(tmp_path):
    out = tmp_path / "rounds.csv"
    res = CliRunner().invoke(app, [
        "loop", "simulate", "--users", "20", "--items", "30", "--rounds", "4", "--k", "5",
        "--strategy", "baseline", "--model", "test_loop_cli:popularity_recommender",
        "--format", "json", "--output", str(out)])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert set(body["summary"]) == {"baseline", "custom"}
    rounds = pd.read_csv(out)
    assert len(rounds) == 8 and set(rounds["strategy"]) == {"baseline", "custom"}
    # one ranking for everyone: what users see is as homogeneous as it gets
    custom = body["summary"]["custom"]
    assert custom["jaccard"] == pytest.approx(1.0)
    assert custom["homogenization"] > body["summary"]["baseline"]["homogenization"]
