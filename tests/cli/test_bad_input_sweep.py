"""Every command `failwell --help` lists, fed every kind of bad input: a CI job can trust the
exit code. Bad input is exit 2 with an "Error:" line (or click's usage error), never a
traceback, never exit 1 (that means findings), 0 (a silent pass) or 70 (a failwell bug).

The commands come from the Typer tree, so a new command fails
:func:`test_every_command_has_bad_input_cases` until :data:`TABLE` gives it a template, and
a new file parameter fails it until a template feeds that parameter a file. A template is
one valid invocation with tokens for its files (``IN:name`` an input file, ``DIR:name`` an
input folder, ``OUT:name`` a report to write, ``OUTDIR:name`` a folder to write into,
``DBFILE:name`` a SQLite file that may not exist yet); each case makes one token bad (each
kind in :data:`KINDS`) and the others good. Commands with ``--db`` also get each bad
knowledge base through ``FAILWELL_DB``, options taking numbers get a non-number, and
``--format`` an unknown format. Everything runs in-process in a temporary folder; nothing
trains, serves or downloads (guards turn that into a failure).
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer.main
import typer.testing
from typer.testing import CliRunner

from conftest import REPO, fit_logistic, people
from failwell.cli import app

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root writes into read-only folders
SHARED = REPO.parent / "shared" / "data"
TOKEN = re.compile(r"\b(IN|DIR|OUTDIR|OUT|DBFILE):([A-Za-z0-9_.\-]+)")
KINDS = {
    "IN": ("missing", "empty", "folder", "binary", "latin-1"),
    "DIR": ("missing", "empty-folder", "file"),
    "OUT": ("folder", "read-only"),
    "OUTDIR": ("file", "read-only"),
    "DBFILE": ("folder", "binary", "not-a-database", "read-only"),
}
DB_KINDS = ("folder", "not-a-database", "read-only")  # binary takes not-a-database's path
PROJECT, LIVE, DRAFT = "loan-approvals", "sweep-live", "sweep-draft"
ORACLE = f"{__name__}:oracle"  # --callable: a model that gets every question right
FACTS = [("Ada Lovelace", "the first programmer"), ("Émile Zola", "the author of Nana")]


def oracle(prompt: str) -> str:
    """Knows the facts both ways and the capital, so the LLM probes reach a verdict."""
    for a, b in FACTS:
        if f"{a} is" in prompt:
            return b
        if f"{b} is" in prompt:
            return a
    return "Yamoussoukro"

ID = "latency-budget-ensemble"  # a library incident every new knowledge base holds


@dataclass(frozen=True)
class T:
    """One valid invocation; ``run=False``: too slow or impossible to run for real here
    (training, serving, a model folder), so only its bad-input cases run."""

    argv: tuple[str, ...]
    run: bool = True


def t(*argv: str, run: bool = True) -> T:
    return T(tuple(argv), run)


# command -> (templates, extra bad cases: argv appended to the first template). The first
# template is the one the --db, non-number and --format cases extend.
TABLE: dict[str, tuple[list[T], list[list[str]]]] = {
    "scan": ([
        t("scan", "IN:data.csv", "--target", "hired", "--detector", "data-audit",
          "--reference", "IN:reference.csv", "--kb", "--project", PROJECT,
          "--format", "json", "--output", "OUT:report.json"),
        t("scan", "IN:data.csv", "--target", "hired", "--detector", "data-audit",
          "--model", "IN:model.skops", "--format", "json"),
    ], [["--max-model-rows", "0"], ["--max-model-rows", "-5"], ["--fail-on", "severe"],
        ["--detector", "no-such-detector"], ["--param", "nonsense"],
        ["--reference-group", "gender"]]),
    "compare": ([
        t("compare", "IN:old-metrics.json", "IN:new-metrics.json", "--project", PROJECT,
          "--format", "json"),
        t("compare", "IN:old.json", "IN:new.json", "--proxy", "data.minority_class_share",
          "--guardrail", "data.duplicate_share", "--format", "json",
          "--output", "OUT:compare.json"),
    ], [["--tolerance", "-1"], ["--fail-on", "severe"]]),
    "loop audit": ([
        t("loop", "audit", "IN:logs.csv", "--item", "sku", "--reward", "clicked", "--time",
          "ts", "--propensity", "pscore", "--reference", "IN:explore.csv", "--guardrail",
          "returned:lower", "--kb", "--project", PROJECT, "--format", "json",
          "--output", "OUT:loop.json", "--fail-on", "critical"),
    ], [["--windows", "1"], ["--margin", "2"], ["--guardrail", "returned:sideways"],
        ["--fail-on", "severe"], ["--item", "no_such_column"]]),
    "loop ope": ([
        t("loop", "ope", "IN:explore.csv", "--item", "sku", "--reward", "clicked",
          "--propensity", "pscore", "--time", "ts", "--candidate", "top:3", "--format", "json"),
    ], [["--candidate", "top:0"], ["--train-fraction", "1.5"], ["--estimator", "ipw"],
        ["--method", "jackknife"], ["--context", "sku"]]),
    "loop simulate": ([
        t("loop", "simulate", "--users", "20", "--items", "30", "--rounds", "3", "--k", "5",
          "--format", "json", "--output", "OUT:rounds.csv"),
    ], [["--k", "50"], ["--epsilon", "2"], ["--strategy", "bogus"], ["--model", "nonsense"],
        ["--model", "os:no_such_function"]]),
    "mitigate": ([
        t("mitigate", "IN:data.csv", "--target", "hired", "--protected", "gender",
          "--method", "reweighing", "--method", "remove-proxy", "--detector", "group-fairness",
          "--model-recipe", "logistic", "--kb", "--project", PROJECT, "--choose",
          "reweighing", "--format", "json", "--output", "OUT:mitigation.json"),
    ], [["--method", "magic"], ["--model-recipe", "nonsense"], ["--test-size", "2"],
        ["--fairness-attribute", "skill"], ["--choose", "magic"], ["--format", "html"]]),
    "detectors": ([t("detectors")], []),
    "catalog": ([t("catalog")], []),
    "demo": ([
        t("demo", "--data", "IN:compas.csv", "--output-dir", "OUTDIR:demo", run=False),
        t("demo", "--llm", "--data", "DIR:experiment1", "--output-dir", "OUTDIR:demo",
          run=False),
    ], []),
    "serve": ([t("serve", "--port", "8765", run=False)],
              [["--port", "-1"], ["--port", "70000"], ["--workers", "0"]]),
    "pir": ([t("pir", LIVE, "--outcome", "default_rate=0.02",
               "--outcome", "approval_rate_gap=0.01")],
            [["--outcome", "default_rate=high"], ["--outcome", "nonsense"]]),
    "deep scan": ([
        t("deep", "scan", "IN:model.pt2", "IN:x.npz", "--production", "IN:production.npz",
          "--roi", "IN:roi.npy", "--check", "drift", "--no-quantize", "--no-cold-start",
          "--kb", "--project", PROJECT, "--format", "json", "--output", "OUT:deep.json"),
    ], [["--batch-size", "0"], ["--batch-size", "-1"], ["--eps", "-0.1"],
        ["--latency-budget-ms", "0"], ["--latency-budget-ms", "-5"],
        ["--attack", "nope"], ["--check", "nope"], ["--device", "tpu"]]),
    "llm reversal": ([
        t("llm", "reversal", "--forward", "IN:forward.jsonl", "--reverse", "IN:reverse.jsonl",
          "--callable", ORACLE, "--cache", "DBFILE:cache.sqlite", "--format", "json",
          "--output", "OUT:reversal.json"),
        t("llm", "reversal", "--facts", "IN:facts.jsonl", "--callable", ORACLE,
          "--no-cache", "--format", "json"),
        t("llm", "reversal", "--facts", "IN:facts.jsonl", "--hf-model", "DIR:hf-model",
          "--no-cache", run=False),
    ], [["--concurrency", "0"], ["--concurrency", "-1"], ["--max-tokens", "0"],
        ["--max-tokens", "-1"], ["--mode", "nope"]]),
    "llm sycophancy": ([
        t("llm", "sycophancy", "IN:questions.jsonl", "--callable", ORACLE,
          "--no-cache", "--format", "json", "--output", "OUT:sycophancy.json"),
        t("llm", "sycophancy", "IN:questions.jsonl", "--callable", ORACLE,
          "--cache", "DBFILE:cache.sqlite", "--format", "json"),
        t("llm", "sycophancy", "--hf-model", "DIR:hf-model", "--no-cache", run=False),
    ], [["--concurrency", "0"], ["--max-tokens", "0"], ["--max-tokens", "-1"]]),
    "llm grounding": ([
        t("llm", "grounding", "IN:answers.jsonl", "--format", "json",
          "--output", "OUT:grounding.json", run=False),
        t("llm", "grounding", "IN:answers.jsonl", "--nli-model", "DIR:nli-model", run=False),
    ], []),
    "llm grounding-eval": ([
        t("llm", "grounding-eval", "IN:claims.jsonl", run=False),
        t("llm", "grounding-eval", "IN:claims.jsonl", "--nli-model", "DIR:nli-model",
          run=False),
    ], []),
    "llm serve": ([t("llm", "serve", "--hf-model", "DIR:hf-model", run=False)],
                  [["--port", "-1"]]),
    "llm train-demo-model": ([
        t("llm", "train-demo-model", "OUTDIR:tiny-model", "--data", "DIR:experiment1",
          "--size", "test", run=False),
    ], [["--size", "huge"]]),
    "user add": ([t("user", "add", "bob", "--role", "viewer")], [["--role", "king"]]),
    "user list": ([t("user", "list")], []),
    "token issue": ([t("token", "issue", "alice", "--name", "ci-2")],
                    [["--scope", "everything"], ["--name", " "]]),
    "token revoke": ([t("token", "revoke", "--user", "alice", "--name", "ci")], []),
    "token list": ([t("token", "list")], [["--user", "nobody"]]),
    "incident template": ([t("incident", "template")], []),
    "incident new": ([t("incident", "new", "--from", "IN:postmortem.md", "--format", "json")],
                     []),
    "incident edit": ([t("incident", "edit", DRAFT, "--from", "IN:edited.md")], []),
    "incident show": ([t("incident", "show", ID)], []),
    "incident list": ([t("incident", "list")],
                      [["--limit", "0"], ["--limit", "-1"], ["--since", "yesterday"],
                       ["--severity", "extreme"], ["--status", "nope"],
                       ["--pattern", "nope"]]),
    "incident lint": ([t("incident", "lint", "IN:lint.md")], []),
    "incident publish": ([t("incident", "publish", DRAFT)], []),
    "incident delete": ([t("incident", "delete", DRAFT, "--yes")], []),
    "incident retire": ([t("incident", "retire", ID, "--reason", "superseded")],
                        [["--reason", " "]]),
    "incident suggest": ([t("incident", "suggest", "IN:suggest.md")], []),
    "kb search": ([t("kb", "search", "marker")],
                  [["--limit", "0"], ["--limit", "-1"], ["--mode", "nope"],
                   ["--until", "31/12/2020"]]),
    "kb import": ([
        t("kb", "import", "IN:import.md", "--no-embed"),
        t("kb", "import", "IN:import.json", "--no-embed"),
        t("kb", "import", "IN:import.csv", "--no-embed"),
    ], [["--limit", "0"], ["--limit", "-1"]]),
    "kb embed": ([t("kb", "embed")], []),
    "kb export": ([
        t("kb", "export", "OUT:export.json", "--format", "json"),
        t("kb", "export", "OUT:export.csv", "--format", "csv"),
        t("kb", "export", "OUTDIR:export"),
    ], [["--since", "soon"]]),
    "kb stats": ([t("kb", "stats")], [["--period", "decade"]]),
    "kb info": ([t("kb", "info")], []),
    "lessons for": ([
        t("lessons", "for", "IN:subject.json"),
        t("lessons", "for", "IN:subject.md"),
    ], [["--limit", "0"]]),
    "project new": ([t("project", "new", "--from", "IN:project.yaml", "--gates",
                       "IN:gates.yaml")], []),
    "project show": ([t("project", "show", PROJECT)], []),
    "project list": ([t("project", "list")], []),
    "gate status": ([t("gate", "status", PROJECT, "--gates", "IN:gates.yaml")], []),
    "gate review": ([t("gate", "review", PROJECT, "--gate", "data-readiness", "--decision",
                       "no-go", "--rationale", "not ready", "--reviewer", "risk officer",
                       "--gates", "IN:gates.yaml")],
                    [["--decision", "maybe"], ["--gate", "launch"]]),
    "gate evidence": ([t("gate", "evidence", PROJECT, "--kind", "end-user-signoff",
                         "--note", "signed by the branch managers")],
                      [["--kind", "nope"]]),
    "gate condition": ([t("gate", "condition", PROJECT, "1")], [["--status", "nope"]]),
    "gate kinds": ([t("gate", "kinds")], []),
    "gate audit": ([t("gate", "audit", PROJECT)], []),
    "card model": ([t("card", "model", PROJECT, "--set", "intended_use=@IN:section.md",
                      "--output", "OUT:card.md")], [["--set", "nonsense"]]),
    "card data": ([t("card", "data", PROJECT, "--set", "motivation=@IN:section.md",
                     "--output", "OUT:datasheet.md")], [["--set", "nonsense"]]),
}

# Bad arguments that replace one positional of the first template (cases above append).
POSITIONAL = {
    "gate condition": [["gate", "condition", PROJECT, "-1"], ["gate", "condition", PROJECT,
                                                               "first"]],
    "incident show": [["incident", "show", "no-such-incident"]],
    "incident publish": [["incident", "publish", "no-such-incident"]],
    "incident delete": [["incident", "delete", "no-such-incident", "--yes"]],
    "incident retire": [["incident", "retire", "no-such-incident", "--reason", "typo"]],
    "token revoke": [["token", "revoke", "999"], ["token", "revoke", "first"]],
    "token issue": [["token", "issue", "nobody", "--name", "ci-3"]],
    "project show": [["project", "show", "no-such-project"]],
    "gate audit": [["gate", "audit", "no-such-project"]],
    "lessons for": [["lessons", "for", "typo.json"]],
    "kb import": [["kb", "import", "genai-incidents", "--limit", "0"]],
}


# -- the command tree --------------------------------------------------------------------

def leaf_commands() -> dict[str, object]:
    """Every command `failwell --help` lists, groups recursed, by its path."""
    out = {}

    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            out[" ".join(path)] = command

    walk(TREE, ())
    return out


TREE = typer.main.get_command(app)
COMMANDS = leaf_commands()


def _annotation(param):
    return getattr(getattr(param, "type_descriptor", None), "annotation", None)


def _is_option(param) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def _numbers(command) -> list[str]:
    kinds = {int, float, list[int], list[float]}
    return [p.opts[0] for p in command.params if _is_option(p) and _annotation(p) in kinds]


def _has(command, name: str) -> bool:
    return any(p.name == name for p in command.params)


# -- the cases -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    command: str
    argv: tuple[str, ...]
    bad: str = ""  # the token made bad, or "" when argv itself is the bad input
    kind: str = ""
    db: str = ""  # a kind of bad FAILWELL_DB
    label: str = ""  # what is bad, when argv itself is

    @property
    def id(self) -> str:
        what = (f"db={self.db}" if self.db else f"{self.bad}={self.kind}" if self.bad
                else self.label)
        return f"{self.command}|{what}"


def _cases() -> list[Case]:
    cases = []
    for command, (templates, extras) in TABLE.items():
        if command not in COMMANDS:
            continue  # reported by test_every_command_has_bad_input_cases
        seen = set()
        for template in templates:
            for prefix, name in TOKEN.findall(" ".join(template.argv)):
                for kind in KINDS[prefix]:
                    if (f"{prefix}:{name}", kind) in seen:
                        continue
                    seen.add((f"{prefix}:{name}", kind))
                    cases.append(Case(command, template.argv, f"{prefix}:{name}", kind))
        first = templates[0].argv
        cases += [Case(command, (*first, *extra), label=" ".join(extra)) for extra in extras]
        cases += [Case(command, tuple(argv), label=" ".join(argv[len(command.split()):]))
                  for argv in POSITIONAL.get(command, [])]
        click_command = COMMANDS[command]
        cases += [Case(command, (*first, option, "many"), label=f"{option} many")
                  for option in _numbers(click_command)]
        if _has(click_command, "fmt"):
            cases.append(Case(command, (*first, "--format", "xml"), label="--format xml"))
        if _has(click_command, "db"):
            cases += [Case(command, first, db=kind) for kind in DB_KINDS]
    return cases


CASES = _cases()

# Known failures in code this sweep may not change (the llm commands are being reworked
# elsewhere). Delete an entry once it passes.
KNOWN: dict[str, str] = {}  # command|case -> why it is expected to fail (none today)


def _params(cases):
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=KNOWN[c.id])]
                         if c.id in KNOWN else []) for c in cases]


# -- good and bad files --------------------------------------------------------------------

class Guard(BaseException):
    """Raised where a command would train, serve or download: it should have refused its
    input first. A BaseException, so no error boundary turns it into an exit code."""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Good contents for every token, and a knowledge base holding a registered project
    (with a condition), a project at its post-implementation review, a draft postmortem,
    a user and a token."""
    folder = tmp_path_factory.mktemp("world")
    good: dict[str, object] = {}
    frame = people(200, seed=1)
    good["data.csv"] = frame.to_csv(index=False)
    good["reference.csv"] = people(200, seed=2).to_csv(index=False)  # no overlap finding
    import skops.io as sio

    features = ["skill", "experience", "gender", "group"]
    good["model.skops"] = sio.dumps(fit_logistic(frame, features))
    from failwell.scanner import make_dataset, scan

    result = scan(make_dataset(frame, target="hired"), detectors=["data-audit"])
    good["old.json"] = good["new.json"] = good["subject.json"] = result.to_json()
    metrics = {"selection_rate": 0.3, "fairness.gender.disparate_impact": 0.9}  # the guard's
    good["old-metrics.json"] = good["new-metrics.json"] = json.dumps(metrics)
    rng = np.random.default_rng(0)
    x = rng.random((24, 1, 8, 8)).astype("float32")
    buf = io.BytesIO()
    np.savez(buf, x=x, y=np.arange(24) % 4)
    good["x.npz"] = buf.getvalue()
    buf = io.BytesIO()
    np.savez(buf, x=x[::-1].copy())
    good["production.npz"] = buf.getvalue()
    buf = io.BytesIO()
    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    np.save(buf, mask)
    good["roi.npy"] = buf.getvalue()
    good["model.pt2"] = _exported_model(folder)
    facts = FACTS
    good["forward.jsonl"] = "".join(json.dumps({"prompt": f"{a} is", "completion": b},
                                               ensure_ascii=False) + "\n" for a, b in facts)
    good["reverse.jsonl"] = "".join(json.dumps({"prompt": f"{b} is", "completion": a},
                                               ensure_ascii=False) + "\n" for a, b in facts)
    good["facts.jsonl"] = "".join(json.dumps(
        {"a": a, "b": b, "forward": "{a} is", "reverse": "{b} is"}, ensure_ascii=False) + "\n"
        for a, b in facts)
    good["questions.jsonl"] = json.dumps(
        {"question": "What is the capital of Côte d'Ivoire?", "answer": "Yamoussoukro",
         "wrong": "Abidjan"}, ensure_ascii=False) + "\n"
    good["answers.jsonl"] = json.dumps(
        {"question": "Where is Zürich?", "contexts": ["Zürich is in Switzerland."],
         "answer": "Zürich is in Switzerland."}, ensure_ascii=False) + "\n"
    good["claims.jsonl"] = json.dumps(
        {"contexts": ["Zürich is in Switzerland."], "split": "test",
         "claims": [{"text": "Zürich is in Switzerland.", "label": "supported"}]},
        ensure_ascii=False) + "\n"
    good["logs.csv"], good["explore.csv"] = (_impressions(rng, 3000, share=0.6),
                                             _impressions(rng, 3000, share=0.0))
    good["hf-model"] = good["nli-model"] = None  # no model folder here: bad kinds only
    compas = SHARED / "compas" / "compas-scores-two-years.csv"
    good["compas.csv"] = compas if compas.is_file() else None
    experiment = SHARED / "reversal_curse" / "experiment1"
    good["experiment1"] = experiment if experiment.is_dir() else None
    for name in ("demo", "tiny-model", "export"):
        good[name] = "OUTDIR"
    for name in ("report.json", "compare.json", "deep.json", "reversal.json",
                 "sycophancy.json", "grounding.json", "export.json", "export.csv",
                 "card.md", "datasheet.md", "cache.sqlite", "loop.json", "rounds.csv",
                 "mitigation.json"):
        good[name] = "OUT"

    library = (REPO / "src" / "failwell" / "kb" / "library" / f"{ID}.md").read_text("utf-8")

    def postmortem(new_id: str, title: str) -> str:
        return (library.replace(f"id: {ID}", f"id: {new_id}")
                .replace("title: Prize-winning ensemble", f"title: {title}"))

    good["postmortem.md"] = postmortem("sweep-new", "Café recommender").replace(
        "status: published", "status: draft")
    good["edited.md"] = postmortem(DRAFT, "Café recommender, edited").replace(
        "status: published", "status: draft")
    good["import.md"] = postmortem("sweep-import", "Imported café recommender")
    good["lint.md"] = "The café's review queue had no owner, so alerts went unread.\n"
    good["suggest.md"] = ("The recommender optimised click-through; retention fell and "
                          "nobody at the café noticed.\n")
    good["subject.md"] = "A triage model trained on one hospital's images (Zürich).\n"
    good["section.md"] = "Approving small-business loans in Besançon.\n"
    project = (REPO / "examples" / "governance" / "loan-approvals.yaml").read_text("utf-8")
    good["project.yaml"] = project.replace(f"id: {PROJECT}", "id: sweep-new").replace(
        "name: Small-business loan approvals", "name: Crédit approvals")
    gates = (REPO / "src" / "failwell" / "governance" / "gates.yaml").read_text("utf-8")
    good["gates.yaml"] = "# Stage gates for the café\n" + gates

    db = folder / "kb.sqlite"
    env = {"FAILWELL_DB": str(db)}

    def setup(*argv, **more):
        res = CliRunner().invoke(app, [str(a) for a in argv], env=env | more)
        assert res.exit_code == 0, (argv, res.output)
        return res

    (folder / "project.yaml").write_text(project, encoding="utf-8")
    live = project.replace(f"id: {PROJECT}", f"id: {LIVE}")
    (folder / "live.yaml").write_text(live, encoding="utf-8")
    setup("project", "new", "--from", folder / "project.yaml")
    setup("gate", "review", PROJECT, "--gate", "problem-framing", "--decision",
          "go-with-conditions", "--rationale", "sweep", "--reviewer", "risk officer",
          "--condition", "name the end users", "--override-reason", "sweep")
    setup("project", "new", "--from", folder / "live.yaml")
    for gate in ("problem-framing", "data-readiness", "build-validate", "pre-deployment"):
        setup("gate", "review", LIVE, "--gate", gate, "--decision", "go", "--rationale",
              "sweep", "--reviewer", "risk officer", "--override-reason", "sweep")
    (folder / "draft.md").write_text(postmortem(DRAFT, "Café recommender").replace(
        "status: published", "status: draft"), encoding="utf-8")
    setup("incident", "new", "--from", folder / "draft.md", "--format", "json")
    setup("user", "add", "alice", "--role", "admin", FAILWELL_PASSWORD="correct horse")
    setup("token", "issue", "alice", "--name", "ci")
    setup("kb", "export", folder / "all.json", "--format", "json", "--project",
          "movie-recommendations")
    setup("kb", "export", folder / "all.csv", "--format", "csv", "--project",
          "movie-recommendations")
    good["import.json"] = (folder / "all.json").read_text("utf-8").replace(ID, "sweep-json")
    good["import.csv"] = (folder / "all.csv").read_text("utf-8").replace(ID, "sweep-csv")
    return good, db


def _exported_model(folder: Path) -> bytes:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4)).eval()
    path = folder / "model.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(2, 1, 8, 8),)), str(path))
    return path.read_bytes()


BINARY = bytes(range(256)) * 16  # NUL bytes and invalid UTF-8
LATIN = "Résumé du problème: le café était fermé.\n"


def _impressions(rng, n: int, *, share: float) -> str:
    """A small impression log: ``share`` of it on 3 of 40 items, the rest even."""
    item = np.where(rng.random(n) < share, rng.integers(0, 3, n), rng.integers(0, 40, n))
    return pd.DataFrame({
        "ts": pd.Timestamp("2026-05-01") + pd.to_timedelta(rng.integers(0, 6 * 86400, n),
                                                           unit="s"),
        "sku": [f"item-{i}" for i in item], "clicked": (rng.random(n) < 0.05).astype(int),
        "pscore": 0.025, "returned": (rng.random(n) < 0.02).astype(int)}).to_csv(index=False)


def _make_good(path: Path, content) -> None:
    if content in ("OUT", "OUTDIR"):
        return  # written by the command
    if isinstance(content, Path):
        if content.is_dir():
            path.mkdir()
            for name in ("d2p_prompts_train.jsonl", "p2d_prompts_train.jsonl"):
                (path / name).write_bytes((content / name).read_bytes())
        else:
            shutil.copyfile(content, path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def _make_bad(path: Path, kind: str, content) -> Path:
    if kind == "missing":
        return path
    if kind == "read-only":
        folder = path.parent / "read-only"
        folder.mkdir(exist_ok=True)
        path = folder / path.name
        folder.chmod(0o555)
    elif kind in ("empty",):
        path.write_bytes(b"")
    elif kind in ("folder", "empty-folder"):
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(BINARY)
    elif kind == "latin-1":
        text = content if isinstance(content, str) and not content.isascii() else LATIN
        path.write_bytes(text.encode("latin-1"))
    elif kind in ("file", "not-a-database"):
        path.write_text("this is not a database, nor a folder\n" * 200, encoding="utf-8")
    else:
        raise AssertionError(kind)
    return path


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """No user file is read or written; embeddings stay off (the encoder is slow to load
    and beside the point); training, serving and downloading raise :class:`Guard`."""
    for name in ("HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "FAILWELL_CACHE_DIR",
                 "FAILWELL_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "home"))
    for name in ("FAILWELL_DB", "FAILWELL_GATES", "FAILWELL_TOKEN", "OPENAI_BASE_URL",
                 "OPENAI_MODEL", "OPENAI_API_KEY", "FAILWELL_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAILWELL_PASSWORD", "correct horse")
    import uvicorn

    import failwell.demo
    import failwell.kb.embeddings
    import failwell.kb.transfer
    import failwell.llm.server
    import failwell.llm.tinylm

    def guard(what):
        def refuse(*args, **kwargs):
            raise Guard(f"{what} started before the bad input was refused")
        return refuse

    monkeypatch.setattr(failwell.kb.embeddings, "available", lambda: False)
    # the runner rebuilds the click tree on every call (70 ms); build it once
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: TREE, raising=False)
    monkeypatch.setattr(uvicorn, "run", guard("the web server"))
    monkeypatch.setattr(failwell.llm.server, "serve", guard("the LLM server"))
    monkeypatch.setattr(failwell.llm.tinylm, "train_reversal_model", guard("training"))
    monkeypatch.setattr(failwell.demo, "scan_compas_scores", guard("the COMPAS demo"))
    monkeypatch.setattr(failwell.kb.transfer, "import_genai_incidents",
                        guard("the genai-incidents download"))
    yield tmp_path
    for folder in tmp_path.rglob("read-only"):
        folder.chmod(0o755)


def _materialize(argv, world, where: Path, bad: str = "", kind: str = ""):
    """argv with every token replaced by a path under ``where``: the bad one made bad, the
    others good. None when a good file cannot be made here (e.g. no model folder)."""
    good, _ = world
    out = []
    for arg in argv:
        for prefix, name in TOKEN.findall(arg):
            token = f"{prefix}:{name}"
            path = where / name
            if token == bad:
                path = _make_bad(path, kind, good.get(name))
            else:
                content = good.get(name, "missing")
                assert content != "missing", f"no good content for {token}"
                if content is None:
                    return None
                if not path.exists():
                    _make_good(path, content)
            arg = arg.replace(token, str(path))
        out.append(arg)
    return out


def _invoke(argv, env):
    try:
        return CliRunner().invoke(app, argv, env=env)
    except Guard as exc:
        pytest.fail(f"failwell {shlex.join(argv)}\n  {exc}", pytrace=False)


def _describe(argv, env, res) -> str:
    shown = {k: v for k, v in env.items() if k == "FAILWELL_DB"}
    text = (f"failwell {shlex.join(argv)}" + (f"  (env {shown})" if shown else "")
            + f"\n  exit {res.exit_code}\n  stdout: {res.stdout[-1500:]!r}"
            f"\n  stderr: {res.stderr[-1500:]!r}")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        text += "\n" + "".join(traceback.format_exception(res.exception))[-3000:]
    return text


def _database(world, where: Path) -> str:
    import sqlite3

    copy = where / "kb.sqlite"
    with sqlite3.connect(world[1]) as source, sqlite3.connect(copy) as target:
        source.backup(target)  # reads through a write-ahead log a copy would miss
    return str(copy)


# -- the tests -----------------------------------------------------------------------------

def test_every_command_has_bad_input_cases():
    """A new command, or a new file parameter of a command, needs a template here."""
    missing = sorted(set(COMMANDS) - set(TABLE))
    assert not missing, f"commands without bad-input cases in TABLE: {missing}"
    stale = sorted(set(TABLE) - set(COMMANDS))
    assert not stale, f"TABLE names commands that no longer exist: {stale}"
    uncovered = []
    for name, command in COMMANDS.items():
        fed = set()
        for template in TABLE[name][0]:
            args = [TOKEN.sub(lambda m: f"/sweep/{m.group(2)}", a) for a in template.argv]
            ctx = command.make_context(name, args[len(name.split()):],
                                       resilient_parsing=True)
            fed |= {key for key, value in ctx.params.items() if "/sweep/" in str(value)}
        for param in command.params:
            if _annotation(param) in (Path, Path | None) and param.name not in fed:
                uncovered.append(f"{name} {param.opts[0] if _is_option(param) else param.name}")
    assert not uncovered, f"file parameters no template feeds a file: {uncovered}"


@pytest.mark.parametrize("command", sorted(TABLE))
def test_the_templates_run_on_good_input(command, world, sandbox):
    """Each template works on good input, so each bad case fails for its own reason."""
    for template in TABLE[command][0]:
        if not template.run:
            continue
        where = sandbox / f"good{abs(hash(template))}"
        where.mkdir()
        argv = _materialize(template.argv, world, where)
        assert argv is not None
        env = {"FAILWELL_DB": _database(world, where)}
        res = _invoke(argv, env)
        assert res.exit_code == 0, _describe(argv, env, res)


@pytest.mark.parametrize("case", _params(CASES))
def test_bad_input_is_exit_2_with_one_error_line(case, world, sandbox):
    if "read-only" in (case.kind, case.db) and ROOT:
        pytest.skip("root writes into read-only folders")
    where = sandbox / "case"
    where.mkdir()
    argv = _materialize(case.argv, world, where, case.bad, case.kind)
    if argv is None:
        pytest.skip("no good file for another token here")
    env = {"FAILWELL_DB": _database(world, where)}
    if case.db:
        env["FAILWELL_DB"] = str(_make_bad(where / "bad.sqlite", case.db, None))
    res = _invoke(argv, env)
    problems = []
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        problems.append("an exception escaped (a traceback)")
    if "Traceback" in res.output:
        problems.append("a traceback in the output")
    if res.exit_code != 2:
        problems.append({0: "exit 0: the bad input passed silently",
                         1: "exit 1 means findings, and there were none",
                         70: "exit 70 (internal error) on bad input"}.get(
                             res.exit_code, f"exit {res.exit_code}, not 2"))
    lines = res.stderr.rstrip().splitlines() or [""]
    errors = [line for line in lines if line.startswith("Error:")]
    if not lines[0].startswith("Usage:") and (len(errors) != 1 or errors[0] != lines[-1]):
        problems.append("stderr does not end in one line starting with 'Error:' (or click's "
                        "usage error)")
    assert not problems, "; ".join(problems) + "\n" + _describe(argv, env, res)
