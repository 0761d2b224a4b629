"""docs/governance.md, executed: every command in order, with the exit code it documents."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from failwell.cli import app

REPO = Path(__file__).resolve().parents[2]
GUIDE = (REPO / "docs" / "governance.md").read_text()

pytest.importorskip("sentence_transformers")


def commands() -> list[tuple[str, int]]:
    out = []
    for block in re.findall(r"```bash\n(.*?)```", GUIDE, flags=re.S):
        for line in block.strip().splitlines():
            code = re.search(r"#\s*exits (\d)", line)
            out.append((line.split("#")[0].strip() if code else line.strip(),
                        int(code.group(1)) if code else 0))
    return out


def test_the_worked_example_runs_as_documented(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(REPO / "examples")
    runner = CliRunner()
    outputs = []
    for line, expected in commands():
        if line.startswith("export "):
            name, value = line.removeprefix("export ").split("=", 1)
            monkeypatch.setenv(name, str(tmp_path / Path(value).name))
            continue
        args = shlex.split(line)
        if args[0] == "python":
            subprocess.run([sys.executable, *args[1:]], check=True, cwd=tmp_path)
            continue
        assert args[0] == "failwell", line
        result = runner.invoke(app, args[1:])
        assert result.exit_code == expected, f"{line}\n{result.output}"
        outputs.append((line, result.output))

    text = dict(outputs)
    vague = next(o for line, o in outputs if "vague-project" in line)
    assert "no numeric target" in vague and "problem misidentification" in vague
    missing = next(o for line, o in outputs if "--rationale \"ok\"" in line)
    assert "datasheet" in missing and "missing" in missing
    refused = next(o for line, o in outputs if "Accuracy is fine" in line)
    assert "scan 1" in refused and "high" in refused
    pir = next(o for line, o in outputs if line.startswith("failwell pir"))
    assert "default_rate: 0.041 vs target 0.03" in pir and "missed" in pir
    assert "pir-loan-approvals-" in pir
    listed = text["failwell incident list --project loan-approvals"]
    assert "1 of 1 incident(s)" in listed  # the PIR draft, filed under the project
    audit = text["failwell gate audit loan-approvals"]
    for action in ("project.create", "gate.review", "card.save", "evidence.record",
                   "condition.update"):
        assert action in audit
    assert "no-go" in audit
