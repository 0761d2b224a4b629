"""Exit codes a CI job can trust: 1 only for findings, 2 for bad input, 70 for a failwell bug;
one line on stderr, and the traceback only when asked for."""

import pytest
from typer.testing import CliRunner

from conftest import people
from failwell.cli import app


def run(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def one_line_error(res, code):
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    assert res.output.strip().startswith(("Error:", "Internal error:")), res.output
    return res.output


@pytest.mark.parametrize("command", [["incident", "list"], ["kb", "info"], ["kb", "stats"],
                                     ["project", "list"], ["lessons", "for", "a triage model"]])
def test_a_file_that_is_not_a_database(tmp_path, command):
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not a database\n" * 200)
    out = one_line_error(run(*command, env={"FAILWELL_DB": str(notes)}), 2)
    assert "not a database" in out


def test_folders_binary_and_non_utf8_inputs(tmp_path):
    frame = people(300, seed=1)
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    folder = tmp_path / "reports"
    folder.mkdir()
    one_line_error(run("scan", data, "--target", "hired", "--output", folder,
                       "--format", "json"), 2)
    latin = tmp_path / "pm.md"
    latin.write_bytes("Résumé du problème".encode("latin-1"))
    assert "UTF-8" in one_line_error(run("incident", "lint", latin), 2)
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    one_line_error(run("incident", "lint", binary), 2)


def test_an_internal_error_is_exit_70_and_the_traceback_only_on_request(tmp_path,
                                                                          monkeypatch):
    import failwell.scanner

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a detector loop")

    monkeypatch.setattr(failwell.scanner, "scan", broken)
    data = tmp_path / "d.csv"
    people(300, seed=2).to_csv(data, index=False)
    args = ["scan", data, "--target", "hired", "--format", "json"]
    out = one_line_error(run(*args), 70)
    assert "RuntimeError: a bug in a detector loop" in out and "--debug" in out
    debug = run("--debug", *args)
    assert isinstance(debug.exception, RuntimeError)  # the traceback is shown, not hidden


def test_no_silent_pass_on_a_typo(tmp_path):
    db = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    assert "No such file: typo.json" in one_line_error(run("lessons", "for", "typo.json",
                                                           "--db", db), 2)
    assert "at least 1" in one_line_error(run("lessons", "for", "a triage model", "--limit",
                                              "-5", "--db", db), 2)
    assert "nope" in one_line_error(run("gate", "audit", "nope", "--db", db), 2)
    for command in ("detectors", "catalog"):
        assert "xml" in one_line_error(run(command, "--format", "xml"), 2)
    found = run("lessons", "for", "a triage model trained on one hospital's images", "--db", db)
    assert found.exit_code == 0 and "pneumonia-portable-marker" in found.output  # text searches


def test_a_database_url_with_a_typo_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = one_line_error(run("incident", "list", env={"FAILWELL_DB": "sqlite:/x.sqlite"}), 2)
    assert "does not parse" in out
    assert list(tmp_path.iterdir()) == []  # no "./sqlite:/" folder was created
