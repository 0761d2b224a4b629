"""Each main command imports only what it uses (issue 19): ``python -X importtime`` of a fresh
process, and a failure naming the heavy module a command pulled in without needing it.

A heavy module costs a cold start 0.1-10 s (torch about 1 s, sentence-transformers 8-11 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMPAS = Path(__file__).resolve().parents[3] / "shared" / "data" / "compas" / \
    "compas-scores-two-years.csv"
HEAVY = {  # module -> what it is for
    "torch": "deep checks, training monitor, the one-off embedding export",
    "transformers": "local LLMs, the one-off embedding export",
    "sentence_transformers": "the embedding fallback",
    "onnx": "the one-off embedding export",
    "onnxruntime": "embeddings",
    "tokenizers": "embeddings",
    "captum": "deep attributions",
    "matplotlib": "plots in HTML reports",
    "fairlearn": "mitigations",
    "fastapi": "the web app",
    "starlette": "the web app",
    "uvicorn": "the web app",
    "httpx": "LLM endpoints, uploads",
    "sklearn": "scans",
    "scipy": "scans",
    "pandas": "scans",
    "polars": "Polars input",
    "sqlalchemy": "the knowledge base",
    "alembic": "database migrations (only when the schema is behind)",
    "psycopg": "PostgreSQL",
    "sqlalchemy.dialects.postgresql": "PostgreSQL",
}
SCAN = ["scan", str(COMPAS), "--target", "two_year_recid", "--prediction", "score_text",
        "--prediction-positive", "Medium", "--prediction-positive", "High",
        "--protected", "race", "--protected", "sex", "--reference-group", "race=Caucasian",
        "--where", "is_recid != -1 and c_charge_degree != 'O'", "--format", "json"]
KB = {"sqlalchemy"}
EMBED = KB | {"onnxruntime", "tokenizers"}
CASES = [  # (argv, heavy modules it may import)
    (["--help"], set()),
    (["kb", "search", "--help"], set()),
    (["scan", "--help"], set()),
    (["mitigate", "--help"], set()),
    (["loop", "audit", "--help"], set()),
    (["catalog"], set()),
    (["incident", "lint", "{postmortem}"], set()),
    (["incident", "list"], KB),
    (["kb", "search", "model learned a hospital marker"], EMBED),
    (["lessons", "for", "a triage model trained on one hospital's images"], EMBED),
    (["incident", "suggest", "pneumonia-portable-marker"], EMBED),
    (SCAN, {"pandas", "sklearn", "scipy"}),
]


def imported(argv: list[str], env: dict[str, str]) -> set[str]:
    """Every module a fresh ``failwell argv`` imported (dotted names and their packages)."""
    code = "import sys; from failwell.cli import main; sys.argv[0] = 'failwell'; main()"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *argv], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            parts = name.split(".")
            names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return names


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("importcost")
    env = os.environ | {"FAILWELL_DB": str(home / "kb.sqlite"), "COLUMNS": "100"}
    seed = subprocess.run([sys.executable, "-m", "failwell", "incident", "list"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert seed.returncode == 0, seed.stderr
    template = subprocess.run([sys.executable, "-m", "failwell", "incident", "template"],
                              env=env, capture_output=True, text=True, timeout=60)
    (home / "postmortem.md").write_text(template.stdout, encoding="utf-8")
    env["POSTMORTEM"] = str(home / "postmortem.md")
    return env


@pytest.mark.parametrize(("argv", "allowed"), CASES, ids=lambda c: " ".join(c)[:40]
                         if isinstance(c, list) else None)
def test_command_imports_only_what_it_uses(argv, allowed, env):
    if argv is SCAN and not COMPAS.is_file():
        pytest.skip("needs ../shared/data/compas")
    argv = [a.replace("{postmortem}", env["POSTMORTEM"]) for a in argv]
    needless = sorted((set(HEAVY) - allowed) & imported(argv, env))
    assert not needless, (f"`failwell {' '.join(argv[:3])}` imports " + "; ".join(
        f"{m} ({HEAVY[m]})" for m in needless))


def test_the_check_sees_a_heavy_import(env):
    """The control: a command that does use a heavy module is seen to import it."""
    assert "onnxruntime" in imported(["kb", "search", "model learned a hospital marker"], env)
