"""Docs that cannot drift: commands and detectors named in the README exist, and vice versa."""

import re
from pathlib import Path

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
