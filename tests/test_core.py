"""Catalog, findings JSON, the runner's isolation and the plugin registry."""

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import people
from failwell.errors import InputError, UnknownIdError
from failwell.findings import Finding, Metric, ScanResult, Severity
from failwell.scanner import make_dataset, registry, scan
from failwell.scanner.context import SkipDetector
from failwell.taxonomy import load_catalog

REPO = Path(__file__).resolve().parents[1]
CONTRACT_IDS = ["proxy-objective", "historical-bias", "group-unfairness",
                "counterfactual-unfairness", "proxy-feature", "spurious-correlation", "leakage",
                "underperforming-slice", "perturbation-fragility", "adversarial-fragility",
                "domain-shift", "overconfidence", "hallucination", "sycophancy",
                "reversal-curse", "silent-data-corruption", "training-instability",
                "latency-budget"]


def test_catalog_covers_the_contract_and_is_complete():
    cat = load_catalog()
    assert set(CONTRACT_IDS) <= set(cat.failure_modes)
    assert set(cat.patterns) == {"problem-misidentification", "data-optimism",
                                 "organizational-disconnect", "governance-lag"}
    for mode in cat.failure_modes.values():
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", mode.id)
        assert mode.mitigations and mode.warning_signs and mode.references and mode.patterns


def test_unknown_id_suggests_close_ones():
    with pytest.raises(UnknownIdError, match="group-unfairness"):
        load_catalog().failure_mode("group-unfairnes")


def test_every_detector_failure_mode_is_in_the_catalog():
    modes = set(load_catalog().failure_modes)
    for cls in registry.available_detectors().values():
        assert set(cls.failure_modes) <= modes


def test_scan_result_json_round_trip():
    ds = make_dataset(people(2000, seed=1, label_bias=2.0), target="hired",
                      protected=["gender"], features=["skill", "gender"])
    result = scan(ds, detectors=["data-audit"])
    assert result.findings
    again = ScanResult.from_json(result.to_json())
    assert again.to_dict() == json.loads(result.to_json())
    assert again.findings[0].severity is Severity(result.findings[0].severity)


def test_metric_ci_and_non_finite_values_survive_json():
    f = Finding("leakage", Severity.HIGH, "t", "s", "d",
                [Metric("x", float("inf"), 0.1, ci=(0.0, 1.0))], {"v": float("nan")})
    back = ScanResult.from_json(ScanResult(findings=[f]).to_json()).findings[0]
    assert back.metric("x").value == float("inf") and back.metric("x").ci == (0.0, 1.0)
    assert back.evidence["v"] is None


def test_newer_schema_is_refused():
    with pytest.raises(InputError, match="schema_version"):
        ScanResult.from_json('{"schema_version": "2.0", "findings": []}')


def test_severity_order():
    assert Severity.CRITICAL > Severity.HIGH >= "high" > Severity.MEDIUM > Severity.LOW


class Boom:
    name = "boom"
    failure_modes = ("leakage",)
    description = "always crashes"

    def run(self, ctx):
        raise RuntimeError("kaboom")


class Skips:
    name = "skips"
    failure_modes = ("leakage",)
    description = "never applies"

    def run(self, ctx):
        raise SkipDetector("not applicable here")


def test_crashing_detector_becomes_an_error_entry(monkeypatch):
    table = dict(registry.available_detectors())
    table.update({"boom": Boom, "skips": Skips})
    monkeypatch.setattr(registry, "available_detectors", lambda: table)
    ds = make_dataset(people(1000, seed=1, label_bias=2.0), target="hired",
                      protected=["gender"], features=["skill", "gender"])
    result = scan(ds, detectors=["boom", "skips", "data-audit"])
    status = {o.detector: o for o in result.outcomes}
    assert status["boom"].status == "error" and "kaboom" in status["boom"].message
    assert status["skips"].status == "skipped" and status["skips"].message
    assert status["data-audit"].status == "ran" and result.findings
    with pytest.raises(RuntimeError):
        scan(ds, detectors=["boom"], raise_exceptions=True)


def test_third_party_detector_via_entry_point(tmp_path, monkeypatch):
    """A real distribution on sys.path registering into the failwell.detectors group."""
    (tmp_path / "fw_plugin.py").write_text(
        "from failwell.findings import Finding, Severity\n"
        "class Always:\n"
        "    name = 'always'\n"
        "    failure_modes = ('latency-budget',)\n"
        "    description = 'a plugin'\n"
        "    def run(self, ctx):\n"
        "        return [Finding('latency-budget', Severity.LOW, 'slow', '', self.name)]\n"
    )
    dist = tmp_path / "fw_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fw-plugin\nVersion: 1.0\n")
    (tmp_path / "fw_broken.py").write_text(
        "class Wrong:\n"
        "    name = 'wrong'\n"
        "    failure_modes = ('not-a-mode',)\n"
        "    description = 'unknown id'\n"
        "    def run(self, ctx):\n"
        "        return []\n"
    )
    (dist / "entry_points.txt").write_text(
        "[failwell.detectors]\nalways = fw_plugin:Always\nwrong = fw_broken:Wrong\n"
        "missing = fw_nowhere:Nothing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.available_detectors.cache_clear()
    try:
        with pytest.warns(UserWarning, match="skipped") as caught:
            table = registry.available_detectors()
        assert "always" in table and "wrong" not in table and "missing" not in table
        assert any("not-a-mode" in str(w.message) for w in caught)
        ds = make_dataset(people(300, seed=0), target="hired", features=["skill"])
        assert scan(ds, detectors=["always"]).findings[0].title == "slow"
    finally:
        sys.modules.pop("fw_plugin", None)
        sys.modules.pop("fw_broken", None)
        registry.available_detectors.cache_clear()


def test_builtins_registered_in_pyproject_match_registry():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"]["failwell.detectors"]
    assert declared == registry.BUILTIN_DETECTORS


def test_every_extra_named_in_messages_exists():
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
                 ["optional-dependencies"])
    named = set()
    for path in (REPO / "src").rglob("*.py"):
        named |= set(re.findall(r'extra="([a-z0-9-]+)"', path.read_text()))
    assert named and named <= extras


def test_import_is_lazy():
    import subprocess

    code = "import sys, failwell.cli; print('pandas' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]


def test_public_api_stays_callable_after_submodule_imports():
    import failwell
    import failwell.scanner.runner

    assert callable(failwell.scan) and callable(failwell.make_dataset)
    assert callable(failwell.mitigate.reweighing)


def test_nothing_below_the_command_line_imports_it():
    """The command line and the web app sit on one library; the library never reaches up."""
    import ast

    package = REPO / "src" / "failwell"
    offenders = []
    for path in package.rglob("*.py"):
        if (package / "cli") in path.parents or path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(package)}: {n}" for n in names
                          if n == "failwell.cli" or n.startswith("failwell.cli.")]
    assert offenders == []


def test_each_store_touches_only_its_own_tables():
    """One database package; kb, governance and web reach each other's data through
    functions (KnowledgeBase.project_scans, .documents...), never through tables."""
    import ast

    from failwell.db import schema

    own = {
        "kb": {"incidents", "incident_tags", "lessons", "action_items", "scans",
               "scan_findings", "kb_meta", "embeddings"},
        "governance": {"projects", "evidence", "reviews", "conditions", "cards", "audit_log"},
        "web": {"users", "api_tokens", "web_sessions", "login_failures"},
    }
    assert set().union(*own.values()) == {t.name for t in schema.metadata.sorted_tables}
    package = REPO / "src" / "failwell"
    wrong = []
    for area, tables in own.items():
        for path in (package / area).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == "failwell.db.schema":
                    wrong += [f"{path.name}: {a.name}" for a in node.names
                              if a.name != "metadata" and a.name not in tables]
    assert wrong == []
