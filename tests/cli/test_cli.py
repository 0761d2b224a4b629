"""The CLI through its runner: exit codes, output contract, and every bad input."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from typer.testing import CliRunner

from conftest import fit_logistic, people
from failwell.cli import app

runner = CliRunner()


@pytest.fixture
def fair_csv(tmp_path):
    frame = people(2000, seed=0)
    flip = np.random.default_rng(0).random(len(frame)) < 0.15  # errors spread evenly
    frame["decision"] = np.where(flip, 1 - frame["hired"], frame["hired"])
    path = tmp_path / "fair.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def biased_csv(tmp_path):
    frame = people(3000, seed=1)
    frame["decision"] = ((frame["skill"] > 0) & (frame["gender"] == "M")).astype(int)
    path = tmp_path / "biased.csv"
    frame.to_csv(path, index=False)
    return path


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_every_command_has_help():
    for command in ("scan", "compare", "detectors", "catalog", "demo"):
        res = invoke(command, "--help")
        assert res.exit_code == 0 and "Usage" in res.output


def test_scan_help_explains_roles_with_example():
    res = invoke("scan", "--help")
    for word in ("--target", "--protected", "--metadata", "--text", "two_year_recid"):
        assert word in res.output


def test_clean_scan_exits_zero_and_json_contract(fair_csv):
    res = invoke("scan", fair_csv, "--target", "hired", "--prediction", "decision",
                 "--protected", "gender", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["schema_version"] == "1.0"
    for f in data["findings"]:
        assert {"failure_mode", "severity", "title", "metrics", "evidence"} <= f.keys()
        assert f["severity"] not in ("high", "critical")


def test_finding_at_fail_on_exits_one(biased_csv, tmp_path):
    out = tmp_path / "r.json"
    res = invoke("scan", biased_csv, "--target", "hired", "--prediction", "decision",
                 "--protected", "gender", "--output", out)
    assert res.exit_code == 1
    data = json.loads(out.read_text())
    assert any(f["failure_mode"] == "group-unfairness" for f in data["findings"])
    res = invoke("scan", biased_csv, "--target", "hired", "--prediction", "decision",
                 "--protected", "gender", "--fail-on", "critical", "--format", "json")
    assert res.exit_code == 0


@pytest.mark.parametrize("fmt,marker", [("html", "<!doctype html>"), ("md", "# "),
                                        ("terminal", "finding")])
def test_report_formats(biased_csv, fmt, marker):
    res = invoke("scan", biased_csv, "--target", "hired", "--prediction", "decision",
                 "--protected", "gender", "--format", fmt)
    assert res.exit_code == 1
    assert marker in res.stdout


def test_html_report_is_self_contained_with_plots(biased_csv, tmp_path):
    out = tmp_path / "r.html"
    invoke("scan", biased_csv, "--target", "hired", "--prediction", "decision",
           "--protected", "gender", "--format", "html", "--output", out)
    html = out.read_text()
    assert "<svg" in html
    assert not re.search(r'(src|href)="https?:', html) and "<link" not in html
    assert "false positive" in html.lower()


def test_html_escapes_user_text(tmp_path):
    frame = people(2000, seed=2)
    frame["gender"] = frame["gender"].map({"F": "<script>alert(1)</script>", "M": "M"})
    frame["decision"] = ((frame["skill"] > 0) & (frame["gender"] == "M")).astype(int)
    path = tmp_path / "x.csv"
    frame.to_csv(path, index=False)
    res = invoke("scan", path, "--target", "hired", "--prediction", "decision",
                 "--protected", "gender", "--format", "html")
    assert "<script>alert(1)</script>" not in res.stdout
    assert "&lt;script&gt;" in res.stdout


def _error(res):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    return res.output


def test_misspelled_column_names_close_match(fair_csv):
    out = _error(invoke("scan", fair_csv, "--target", "hierd"))
    assert "'hierd'" in out and "'hired'" in out


def test_non_binary_target(fair_csv):
    out = _error(invoke("scan", fair_csv, "--target", "experience"))
    assert "binary" in out


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty" in _error(invoke("scan", empty, "--target", "y"))
    header_only = tmp_path / "header.csv"
    header_only.write_text("y,x\n")
    assert "no rows" in _error(invoke("scan", header_only, "--target", "y"))


def test_nan_in_target(tmp_path):
    frame = people(500, seed=0).astype({"hired": float})
    frame.loc[3, "hired"] = np.nan
    path = tmp_path / "nan.csv"
    frame.to_csv(path, index=False)
    assert "missing value" in _error(invoke("scan", path, "--target", "hired"))


def test_untrusted_pickle(fair_csv, tmp_path):
    import joblib

    model = fit_logistic(people(500, seed=0), ["skill", "experience"])
    path = tmp_path / "m.pkl"
    joblib.dump(model, path)
    assert "--trust-model" in _error(invoke("scan", fair_csv, "--target", "hired",
                                            "--model", path))
    res = invoke("scan", fair_csv, "--target", "hired", "--model", path, "--trust-model",
                 "--format", "json")
    assert res.exit_code in (0, 1)


def test_model_needing_missing_columns_is_refused_up_front(tmp_path, fair_csv):
    frame = people(500, seed=0)
    model = fit_logistic(frame, ["skill", "experience"])
    path = tmp_path / "m.skops"
    sio.dump(model, path)
    broken = tmp_path / "broken.csv"
    pd.read_csv(fair_csv).rename(columns={"skill": "skil"}).to_csv(broken, index=False)
    out = _error(invoke("scan", broken, "--target", "hired", "--model", path))
    assert "missing from the data: 'skill' (did you mean 'skil'?)" in out
    assert "Detector" not in out  # refused up front, not six detector failures


def test_predict_crash_inside_detector_is_reported_and_scan_continues(tmp_path, fair_csv):
    mod = tmp_path / "flaky_model.py"
    mod.write_text(
        "import numpy as np\n"
        "def predict(df):\n"
        "    if len(df) and df['skill'].abs().max() > 50:\n"
        "        raise ValueError('input out of range')\n"
        "    return 1 / (1 + np.exp(-df['skill'].to_numpy()))\n"
    )
    frame = pd.read_csv(fair_csv)
    frame.loc[0, "skill"] = 60.0  # the noise variant keeps it above 50 -> robustness crashes
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        out = tmp_path / "r.json"
        res = invoke("scan", data, "--target", "hired", "--model", "flaky_model:predict",
                     "--feature", "skill", "--output", out)
    finally:
        sys.path.remove(str(tmp_path))
    assert res.exit_code == 2
    assert "failed in detector" in res.output and "input out of range" in res.output
    report = json.loads(out.read_text())  # the report was still written, nothing lost
    assert {d["status"] for d in report["detectors"]} >= {"ran", "error"}


def test_bad_options(fair_csv):
    _error(invoke("scan", fair_csv, "--target", "hired", "--fail-on", "severe"))
    _error(invoke("scan", fair_csv, "--target", "hired", "--format", "pdf"))
    out = _error(invoke("scan", fair_csv, "--target", "hired", "--detector", "fairnes"))
    assert "group-fairness" in out or "Unknown detector" in out
    out = _error(invoke("scan", fair_csv, "--target", "hired", "--param", "robustness.nope=1"))
    assert "noise_scale" in out
    _error(invoke("scan", fair_csv.parent / "missing.csv", "--target", "hired"))


def test_detectors_and_catalog_listing():
    res = invoke("detectors", "--format", "json")
    names = {d["name"] for d in json.loads(res.stdout)}
    assert {"group-fairness", "counterfactual", "performance-slices"} <= names
    res = invoke("catalog", "--format", "json")
    assert "reversal-curse" in {m["id"] for m in json.loads(res.stdout)["failure_modes"]}


def test_clean_scan_report_still_shows_the_evidence(fair_csv, tmp_path):
    """No findings is a result a review board signs off: the report must show why."""
    out = tmp_path / "clean.html"
    res = invoke("scan", fair_csv, "--target", "hired", "--prediction", "decision",
                 "--protected", "gender", "--format", "html", "--output", out)
    assert res.exit_code == 0
    html = out.read_text()
    assert "No findings." in html and "Per-group metrics: gender" in html and "<svg" in html
    assert "Slices with the most excess error" in html
    data = json.loads(invoke("scan", fair_csv, "--target", "hired", "--prediction", "decision",
                             "--protected", "gender", "--format", "json").stdout)
    groups = {g["group"]: g for g in data["diagnostics"]["groups"]["gender"]}
    assert set(groups) == {"F", "M"} and not any(g["uncertain"] for g in groups.values())


def test_reference_group_on_the_command_line(tmp_path):
    frame = people(3000, seed=5)
    frame["decision"] = ((frame["skill"] > 0) | (frame["group"] == "a")).astype(int)
    path = tmp_path / "x.csv"
    frame.to_csv(path, index=False)
    base = ["scan", path, "--target", "hired", "--prediction", "decision", "--protected",
            "group", "--format", "json"]
    res = invoke(*base, "--reference-group", "group=b")
    assert res.exit_code == 1, res.output
    (f,) = [f for f in json.loads(res.stdout)["findings"]
            if f["failure_mode"] == "group-unfairness"]
    assert f["evidence"]["reference_group"] == "b"
    out = _error(invoke(*base, "--reference-group", "group=c"))
    assert "no such value of 'group'" in out and "'a', 'b'" in out
    assert "use ATTR=VALUE" in _error(invoke(*base, "--reference-group", "group"))
