import json

import pytest
from typer.testing import CliRunner

from failwell.cli import app
from failwell.errors import InputError
from failwell.scanner.compare import MetricSpec, compare


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
    assert f.metric("worst_guardrail_degradation").value == pytest.approx(0.09)


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
