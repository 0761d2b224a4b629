import json

import pytest
from typer.testing import CliRunner

from failwell.cli import app
from failwell.errors import InputError
from failwell.scanner.compare import MetricSpec, Tolerance, compare


def _files(tmp_path, old, new):
    a, b = tmp_path / "old.json", tmp_path / "new.json"
    a.write_text(json.dumps(old))
    b.write_text(json.dumps(new))
    return a, b


def test_proxy_up_guardrail_down_is_flagged(tmp_path):
    a, b = _files(tmp_path, {"ctr": 0.10, "retention_30d": 0.40},
                  {"ctr": 0.14, "retention_30d": 0.31})
    result = compare(a, b, proxy="ctr", guardrails=["retention_30d"])
    (f,) = result.findings
    assert f.failure_mode == "proxy-objective"
    assert f.metric("worst_guardrail_degradation").value == pytest.approx(0.09 / 0.40)
    assert "(-22.5%)" in f.summary and "2% of the old value" in f.summary


def test_the_default_tolerance_is_relative_to_each_metrics_scale(tmp_path):
    """A click-through rate of 0.031 -> 0.036 is +16 %, though only +0.005 in its units."""
    a, b = _files(tmp_path, {"ctr": 0.031, "retention_30d": 0.42},
                  {"ctr": 0.036, "retention_30d": 0.37})
    (f,) = compare(a, b, proxy="ctr", guardrails=["retention_30d"]).findings
    assert f.metric("proxy_improvement").value == pytest.approx(0.005 / 0.031)
    absolute = compare(a, b, proxy="ctr", guardrails=["retention_30d"], tolerance="0.01")
    assert absolute.findings == [] and "absolute" in absolute.config["tolerance_rule"]
    assert [r["counts"] for r in absolute.config["comparison"]] == [False, True]
    assert compare(a, b, proxy="ctr", guardrails=["retention_30d"],
                   tolerance="20%").findings == []


def test_tolerance_forms():
    assert Tolerance.parse("5%") == Tolerance(0.05, relative=True)
    assert Tolerance.parse(0.01) == Tolerance(0.01, relative=False)
    assert str(Tolerance.parse(" 2.5% ")) == "2.5%"
    for bad in ("abc", "-1%", "nan", "inf"):
        with pytest.raises(InputError):
            Tolerance.parse(bad)


def test_a_metric_that_was_zero_counts_any_change_relatively(tmp_path):
    a, b = _files(tmp_path, {"ctr": 0.0, "complaints:down": 0}, {"ctr": 0.02, "complaints": 3})
    a.write_text(json.dumps({"ctr": 0.0, "complaints": 0}))
    result = compare(a, b, proxy="ctr", guardrails=["complaints:down"])
    assert result.findings and result.config["comparison"][0]["relative"] is None


@pytest.mark.parametrize("new", [{"ctr": 0.14, "retention_30d": 0.41},
                                 {"ctr": 0.10, "retention_30d": 0.30},
                                 {"ctr": 0.105, "retention_30d": 0.395}])
def test_no_flag_without_the_trade_off(tmp_path, new):
    a, b = _files(tmp_path, {"ctr": 0.10, "retention_30d": 0.40}, new)
    assert compare(a, b, proxy="ctr", guardrails=["retention_30d"]).findings == []


def test_directions():
    assert not MetricSpec.parse("fairness.race.false_positive_rate_gap").higher_is_better
    assert MetricSpec.parse("accuracy").higher_is_better
    assert not MetricSpec.parse("accuracy:down").higher_is_better
    with pytest.raises(InputError):
        MetricSpec.parse("accuracy:sideways")


def test_compare_scan_results_through_cli(tmp_path):
    old = {"schema_version": "1.0", "findings": [],
           "metrics": {"accuracy": 0.80, "fairness.gender.false_positive_rate_gap": 0.05}}
    new = {"schema_version": "1.0", "findings": [],
           "metrics": {"accuracy": 0.83, "fairness.gender.false_positive_rate_gap": 0.15}}
    a, b = _files(tmp_path, old, new)
    res = CliRunner().invoke(app, ["compare", str(a), str(b), "--proxy", "accuracy",
                                   "--guardrail", "fairness.gender.false_positive_rate_gap"])
    assert res.exit_code == 1, res.output
    res = CliRunner().invoke(app, ["compare", str(a), str(b), "--proxy", "accuracy",
                                   "--guardrail", "acuracy"])
    assert res.exit_code == 2 and "accuracy" in res.output
    res = CliRunner().invoke(app, ["compare", str(a), str(b), "--proxy", "accuracy",
                                   "--guardrail", "fairness.gender.false_positive_rate_gap",
                                   "--tolerance", "0.5"])
    assert res.exit_code == 0 and "No findings" in res.output
    assert "0.5 (absolute, in the metric's own units)" in " ".join(res.output.split())


def test_a_json_list_is_refused(tmp_path):
    a, b = _files(tmp_path, [1, 2], {"ctr": 0.1, "retention_30d": 0.4})
    with pytest.raises(InputError, match="expected a JSON object"):
        compare(a, b, proxy="ctr", guardrails=["retention_30d"])
