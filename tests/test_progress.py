"""Long work shows it is alive when stderr is not a terminal (CI logs, pipes): a log line
every few seconds, nothing at all for short work, and stdout stays clean JSON."""

import io
import json
import os
import subprocess
import sys
import time

from conftest import people
from failwell.progress import LogLines, progress_bar


def test_log_lines_repeat_the_latest_state_while_a_step_blocks():
    stream = io.StringIO()
    with LogLines("importing", stream, interval=0.05) as progress:
        progress("", 3, 10)
        time.sleep(0.3)  # one step that blocks: the lines keep coming
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 3
    assert all(line.startswith("failwell: importing: 3/10 (") for line in lines)


def test_short_work_prints_nothing(monkeypatch):
    from rich.console import Console

    stream = io.StringIO()
    monkeypatch.delenv("FAILWELL_PROGRESS_SECONDS", raising=False)
    with progress_bar(Console(file=stream)) as progress:
        progress("data-audit", 1, 2)
    assert stream.getvalue() == ""


def test_a_piped_scan_logs_its_steps_on_stderr(tmp_path):
    data = tmp_path / "d.csv"
    people(3000, seed=3).to_csv(data, index=False)
    env = os.environ | {"FAILWELL_PROGRESS_SECONDS": "0.1"}
    done = subprocess.run([sys.executable, "-m", "failwell", "scan", str(data), "--target",
                           "hired", "--protected", "gender", "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode in (0, 1), done.stderr
    json.loads(done.stdout)  # the report alone on stdout
    lines = [line for line in done.stderr.splitlines() if line.startswith("failwell: scanning")]
    assert lines, done.stderr
    assert any("/" in line for line in lines)
