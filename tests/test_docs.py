"""Docs that cannot drift: commands and detectors named in the README exist, and vice versa."""

import re
from pathlib import Path

import numpy as np
import pytest
import typer.main

from failwell.cli import app
from failwell.scanner.registry import available_detectors

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_commands_exist():
    commands = set(typer.main.get_command(app).commands)
    # commands as written in code blocks (line start) and code spans (after a backtick)
    named = set(re.findall(r"(?:^|`)failwell ([a-z]+)", README, flags=re.M))
    assert {"scan", "compare", "demo"} <= named
    assert named <= commands, named - commands


def test_every_detector_is_documented_in_the_readme():
    table = README.split("## Detectors")[1].split("\n\n")[1]
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", table, flags=re.M))
    assert documented == set(available_detectors())


def test_makefile_targets_in_readme_exist():
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    for target in re.findall(r"make ([a-z-]+)", README):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target


def test_ci_calls_the_readme_test_command():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "make test" in README and "make test" in ci


def test_plugin_guide_example_runs(monkeypatch):
    """The detector in docs/plugins.md, executed as written, through the registry."""
    from conftest import fit_logistic, people
    from failwell.scanner import ScanConfig, make_dataset, registry, scan

    guide = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    code = guide.split("```python")[1].split("```")[0]
    namespace: dict = {}
    exec(compile(code, "plugins.md", "exec"), namespace)
    cls = namespace["BatchLatencyDetector"]
    table = {**registry.available_detectors(), cls.name: cls}
    monkeypatch.setattr(registry, "available_detectors", lambda: table)
    frame = people(500, seed=0)
    model = fit_logistic(frame, ["skill", "experience"])
    ds = make_dataset(frame, target="hired", features=["skill", "experience"])
    slow = scan(ds, model, detectors=[cls.name],
                config=ScanConfig(params={cls.name: {"budget_ms": 0.0}}))
    assert slow.findings[0].failure_mode == "latency-budget"
    assert scan(ds, model, detectors=[cls.name]).findings == []
    assert scan(ds, detectors=[cls.name]).outcomes[0].status == "skipped"


def test_deep_check_guide_example_runs(monkeypatch):
    """The deep check in docs/plugins.md, registered like a plugin and run by deep_scan."""
    torch = pytest.importorskip("torch")
    from failwell.deep import deepscan

    guide = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    code = guide.split("```python")[2].split("```")[0]
    namespace: dict = {}
    exec(compile(code, "plugins.md", "exec"), namespace)
    table = {**deepscan.available_checks(), "saturation": namespace["saturation"]}
    monkeypatch.setattr(deepscan, "available_checks", lambda: table)
    torch.manual_seed(0)
    sure = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    with torch.no_grad():
        sure[1].weight.zero_()
        sure[1].bias.copy_(torch.tensor([50.0, -50.0]))  # always class 0, certain
    x = np.random.default_rng(0).random((64, 1, 4, 4)).astype(np.float32)
    y = np.zeros(64, dtype=int)
    y[:8] = 1
    result = deepscan.deep_scan(sure, x, y, checks=["saturation"])
    (outcome,) = result.outcomes
    assert outcome.status == "ran" and result.metrics["saturation.saturated_share"] == 1.0
    assert [f.title for f in result.findings] == ["100% of inputs are saturated"]
    flat = deepscan.deep_scan(sure, x.reshape(64, 16), y, checks=["saturation"])
    assert flat.outcomes[0].status == "skipped" and "images" in flat.outcomes[0].message


def _readme_commands(section: str) -> list[list[str]]:
    """The failwell commands in the first bash block of a README section, as argv lists."""
    import shlex

    block = README.split(section)[1].split("```bash")[1].split("```")[0]
    lines = [ln.split(" #")[0] if not ln.lstrip().startswith("#") else ""
             for ln in block.replace("\\\n", " ").splitlines()]
    return [shlex.split(ln)[1:] for ln in lines if ln.strip().startswith("failwell ")]


def test_readme_compas_scan_runs_as_written(tmp_path, monkeypatch):
    """The README's first command, on the shared COMPAS file: every detector runs."""
    compas = Path(__file__).resolve().parents[2] / "shared" / "data" / "compas" / \
        "compas-scores-two-years.csv"
    if not compas.is_file():
        pytest.skip("needs ../shared/data/compas")
    import json

    from typer.testing import CliRunner

    argv = _readme_commands("## Scanning your own model")[0]
    argv = [str(compas) if a == "compas.csv" else a for a in argv]
    argv[argv.index("--output") + 1] = str(tmp_path / "compas.json")
    argv[argv.index("--format") + 1] = "json"
    res = CliRunner().invoke(app, argv)
    assert res.exit_code in (0, 1), res.output
    report = json.loads((tmp_path / "compas.json").read_text())
    assert all(d["status"] != "error" for d in report["detectors"]), report["detectors"]
    modes = {f["failure_mode"] for f in report["findings"]}
    assert {"group-unfairness", "proxy-feature", "leakage"} <= modes, modes


def test_readme_loop_commands_run_as_written(tmp_path, monkeypatch):
    repo = Path(__file__).resolve().parents[1]
    if not (repo.parent / "shared" / "data" / "obd" / "bts" / "all.csv").is_file():
        pytest.skip("needs ../shared/data/obd")
    from typer.testing import CliRunner

    monkeypatch.chdir(repo)
    commands = _readme_commands("## Feedback loops in recommenders")
    assert [c[:2] for c in commands] == [["loop", "audit"], ["loop", "ope"],
                                         ["loop", "simulate"]]
    for argv in commands:
        if "--output" in argv:
            argv[argv.index("--output") + 1] = str(tmp_path / "loop.html")
        res = CliRunner().invoke(app, argv)
        assert res.exit_code in (0, 1), (argv, res.output)
    assert "Exposure and the proxy over time" in (tmp_path / "loop.html").read_text()
