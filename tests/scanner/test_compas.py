"""The COMPAS reproduction: ProPublica's per-race error rates, to 0.1 percentage point."""

import pytest
from typer.testing import CliRunner

from failwell.cli import app
from failwell.demo import PROPUBLICA_REFERENCE, race_error_rates, scan_compas_scores


def test_filter_leaves_propublica_rows(compas):
    assert len(compas) == 6172


def test_scan_reproduces_propublica_error_rates(compas):
    result = scan_compas_scores(compas)
    rates = race_error_rates(result)
    for race, (n, fpr, fnr) in PROPUBLICA_REFERENCE.items():
        assert rates[race]["n"] == n
        assert rates[race]["false_positive_rate"] == pytest.approx(fpr, abs=0.001)
        assert rates[race]["false_negative_rate"] == pytest.approx(fnr, abs=0.001)
    race = next(f for f in result.findings if f.evidence.get("attributes") == ["race"])
    assert race.failure_mode == "group-unfairness"
    assert {"false_positive_rate_gap", "false_negative_rate_gap"} <= {m.name for m in
                                                                     race.metrics}


def test_independent_recount(compas):
    """The same figures by plain pandas, so the detector is checked against something else."""
    pos = compas["score_text"].isin(["Medium", "High"])
    for race, (_, fpr, fnr) in PROPUBLICA_REFERENCE.items():
        g = compas[compas["race"] == race]
        p = pos[g.index]
        assert (p & (g.two_year_recid == 0)).sum() / (g.two_year_recid == 0).sum() == \
            pytest.approx(fpr, abs=0.0001)
        assert (~p & (g.two_year_recid == 1)).sum() / (g.two_year_recid == 1).sum() == \
            pytest.approx(fnr, abs=0.0001)


def test_cli_scan_reproduces_compas(compas_path, tmp_path):
    out = tmp_path / "compas.json"
    res = CliRunner().invoke(app, [
        "scan", str(compas_path), "--target", "two_year_recid", "--prediction", "score_text",
        "--prediction-positive", "Medium", "--prediction-positive", "High",
        "--protected", "race", "--protected", "sex",
        "--where", "days_b_screening_arrest <= 30 and days_b_screening_arrest >= -30 and "
        "is_recid != -1 and c_charge_degree != 'O' and score_text.notna()",
        "--feature", "age", "--feature", "priors_count", "--feature", "sex",
        "--format", "json", "--output", str(out)])
    assert res.exit_code == 1, res.output  # high-severity fairness findings
    import json

    data = json.loads(out.read_text())
    race = next(f for f in data["findings"] if f["evidence"].get("attributes") == ["race"])
    groups = {g["group"]: g for g in race["evidence"]["groups"]}
    assert groups["African-American"]["false_positive_rate"] == pytest.approx(0.4234, abs=1e-3)
    assert groups["Caucasian"]["false_negative_rate"] == pytest.approx(0.4964, abs=1e-3)


def test_demo_runs_and_writes_reports(compas_path, tmp_path):
    res = CliRunner().invoke(app, ["demo", "--data", str(compas_path),
                                   "--output-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "42.34%" in res.output and "49.64%" in res.output
    assert "NO" not in res.output.split("2. A model")[0].split("match")[1][:400]
    for name in ("compas-scores", "compas-model"):
        for suffix in ("html", "json", "md"):
            assert (tmp_path / f"{name}.{suffix}").stat().st_size > 500


def test_decile_score_with_threshold_gives_the_same_rates(compas):
    """--score decile_score --threshold 5 is ProPublica's Medium/High; deciles are no
    probabilities, so no calibration column and no calibration detector."""
    from failwell.scanner import make_dataset, scan

    ds = make_dataset(compas, target="two_year_recid", score="decile_score", threshold=5,
                      protected=["race"], features=["age", "priors_count"])
    result = scan(ds)
    rates = race_error_rates(result)
    for race, (_, fpr, fnr) in PROPUBLICA_REFERENCE.items():
        assert rates[race]["false_positive_rate"] == pytest.approx(fpr, abs=0.001)
        assert rates[race]["false_negative_rate"] == pytest.approx(fnr, abs=0.001)
        assert "calibration_gap" not in rates[race]
    status = {o.detector: o for o in result.outcomes}
    assert status["overconfidence"].status == "skipped"
    assert "auc" in result.metrics  # a ranking metric is still fine on deciles
