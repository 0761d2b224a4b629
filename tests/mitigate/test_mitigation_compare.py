"""Mitigations measured: every method trained the same way and scanned on the same held-out
rows; planted unfairness goes down where a method targets it; methods that cannot apply are
skipped with the reason; the choice is recorded with its price."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from failwell.cli import app
from failwell.mitigate.comparison import compare


def applicants(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Hiring data with historical bias against gender F and a zip code that encodes it."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["F", "M"], n)
    skill = rng.normal(0, 1, n)
    years = rng.integers(0, 20, n)
    zip_code = np.where(rng.random(n) < 0.85, np.where(gender == "F", "z1", "z2"),
                        np.where(gender == "F", "z2", "z1"))
    logit = 1.2 * skill + 0.08 * (years - 10) - 1.0 * (gender == "F")
    hired = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"skill": skill, "years": years, "zip": zip_code, "gender": gender,
                         "hired": hired})


@pytest.fixture(scope="module")
def planted():
    return compare(applicants(), target="hired", protected=["gender"],
                   features=["skill", "years", "zip", "gender"], model_recipe="logistic",
                   detectors=["group-fairness", "counterfactual", "overconfidence"])


def test_same_split_same_detectors_for_every_method(planted):
    ran = [r for r in planted.runs if r.status == "ran"]
    assert planted.runs[0].method == "baseline" and len(planted.runs) == 8
    sizes = {r.result.config["n_rows"] for r in ran}
    assert sizes == {planted.test_rows}
    detectors = {tuple(o.detector for o in r.result.outcomes) for r in ran}
    assert len(detectors) == 1


def test_methods_that_target_the_gap_shrink_it(planted):
    table = planted.table().set_index("method")
    base = table.loc["baseline"]
    assert base["gender.flip_rate"] > 0.1  # the model reads gender
    assert base["gender.fpr_gap"] > 0.1 or base["gender.fnr_gap"] > 0.1
    # the model no longer reads gender or its proxy: flips vanish
    assert table.loc["remove-proxy", "gender.flip_rate"] == 0.0
    assert "dropped gender, zip" in table.loc["remove-proxy", "note"]
    assert table.loc["counterfactual-augmentation", "gender.flip_rate"] < \
        base["gender.flip_rate"] / 2
    # error-rate constraints close the error-rate gap, at a cost that is reported
    for method in ("threshold-optimizer", "exponentiated-gradient"):
        assert table.loc[method, "gender.fpr_gap"] < base["gender.fpr_gap"], method
    # threshold-optimizer decides with gender: its own flips are the price
    assert table.loc["threshold-optimizer", "gender.flip_rate"] > 0
    price = planted.price("threshold-optimizer")
    assert "accuracy" in price and "gender.fpr gap" in price


def test_findings_that_disappear_are_listed(planted):
    change = planted.changes(planted.run("remove-proxy"))
    assert "counterfactual-unfairness (gender)" in change["gone"]
    assert planted.changes(planted.baseline) == {"gone": [], "new": []}


def test_a_method_that_does_not_apply_is_skipped_and_the_rest_run():
    frame = applicants(2000, seed=3)
    result = compare(frame, target="hired", protected=["gender"], features=["skill", "years"],
                     methods=["remove-proxy", "counterfactual-augmentation",
                              "threshold-optimizer", "reweighing"],
                     protected_at_prediction=False, detectors=["group-fairness"])
    status = {r.method: (r.status, r.reason) for r in result.runs}
    assert status["remove-proxy"][0] == "skipped" and "no feature is a proxy" in \
        status["remove-proxy"][1]
    assert status["counterfactual-augmentation"][0] == "skipped"
    assert status["threshold-optimizer"][0] == "skipped" and "not available when deciding" \
        in status["threshold-optimizer"][1]
    assert status["reweighing"][0] == "ran"


def test_smote_without_a_minority_cell_is_skipped():
    rng = np.random.default_rng(0)
    n = 800
    frame = pd.DataFrame({"x": rng.normal(size=n), "g": np.repeat(["a", "b"], n // 2),
                          "y": np.tile([0, 1], n // 2)})  # every group x label cell equal
    result = compare(frame, target="y", protected=["g"], features=["x"], methods=["smote"],
                     detectors=["group-fairness"], model_recipe="logistic")
    smote = result.runs[1]
    assert smote.status == "skipped" and "no minority cell" in smote.reason


def test_bad_input_is_one_message(tmp_path):
    path = tmp_path / "hiring.csv"
    applicants(500).to_csv(path, index=False)
    runner = CliRunner()
    for extra, message in [
        (["--method", "magic"], "unknown mitigation"),
        (["--model-recipe", "nonsense"], "module:function"),
        (["--model-recipe", "os:getcwd"], "not an estimator"),
        (["--choose", "reweighing"], "--kb --project"),
        (["--fairness-attribute", "zip"], "must be one of the --protected"),
        (["--deep"], "drop DATA and --target"),
    ]:
        res = runner.invoke(app, ["mitigate", str(path), "--target", "hired", "--protected",
                                  "gender", "--detector", "group-fairness", *extra])
        assert res.exit_code == 2, (extra, res.output)
        assert message in " ".join(res.output.split()), (extra, res.output)
    res = runner.invoke(app, ["mitigate", str(path), "--target", "hired"])
    assert res.exit_code == 2 and "--protected" in res.output


def test_the_choice_is_recorded_as_gate_evidence_and_drafted_into_the_model_card(
        tmp_path, monkeypatch):
    from failwell.governance.store import Governance
    from failwell.kb.store import KnowledgeBase

    db = tmp_path / "kb.sqlite"
    monkeypatch.setenv("FAILWELL_DB", str(db))
    runner = CliRunner()
    project = Path(__file__).resolve().parents[2] / "examples" / "governance" / \
        "loan-approvals.yaml"  # a registered project; the data below is ours
    assert runner.invoke(app, ["project", "new", "--from", str(project)]).exit_code == 0
    data = tmp_path / "hiring.csv"
    applicants(2000).to_csv(data, index=False)
    args = ["mitigate", str(data), "--target", "hired", "--protected", "gender",
            "--feature", "skill", "--feature", "years", "--feature", "zip",
            "--feature", "gender", "--method", "remove-proxy", "--method", "reweighing",
            "--detector", "group-fairness", "--detector", "counterfactual",
            "--kb", "--project", "loan-approvals", "--format", "json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    gov = Governance(KnowledgeBase.open(str(db)))
    record = gov.latest_evidence(gov.project("loan-approvals")[0], "mitigation")
    assert record["passed"] is False and "none chosen" in record["detail"]
    res = runner.invoke(app, [*args, "--choose", "remove-proxy"])
    assert res.exit_code == 0, res.output
    record = gov.latest_evidence(gov.project("loan-approvals")[0], "mitigation")
    assert record["passed"] is True and record["chosen"] == "remove-proxy"
    assert "accuracy" in record["detail"] and "flip rate" in record["detail"]
    from failwell.governance.evidence import judge

    pre_deployment = next(g for g in gov.gates if g.id == "pre-deployment")
    assert "mitigation" in [r.kind for r in pre_deployment.evidence]
    status = judge("mitigation", gov.project("loan-approvals")[0], gov, {})
    assert status.satisfied and "chose remove-proxy" in status.detail
    card = runner.invoke(app, ["card", "model", "loan-approvals", "--output",
                               str(tmp_path / "card.md")])
    assert card.exit_code == 0, card.output
    text = (tmp_path / "card.md").read_text()
    assert "Mitigation: remove-proxy, chosen from a measured comparison" in text
