"""What every command shares: the error boundary, option types, and what happens to a
result (report, knowledge base, upload, exit code).

User errors (:class:`~failwell.errors.FailwellError`) become one message and exit 2 here,
at the boundary; exit 1 means a finding reached ``--fail-on``; 0 means nothing did.
Nothing outside ``failwell.cli`` imports this package.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from failwell.errors import FailwellError, InputError

err = Console(stderr=True)
# click's own exception root: click itself, or the copy newer Typer releases vendor (whose
# exceptions are not click's, so ``click.ClickException`` would miss them)
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
SEVERITIES = ("low", "medium", "high", "critical")
EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 1, 2, 70  # 70: EX_SOFTWARE (sysexits.h)

def boundary(fn):
    """One line and a meaningful exit code for anything that goes wrong; never a traceback.

    2: failwell's own errors (bad input, usage) and the operating system's (a folder where a
    file was expected, no permission, a file that is not UTF-8 or not a database). 70: an
    internal error, a failwell bug: one line, and the traceback with ``--debug`` or
    ``FAILWELL_DEBUG=1``. So a CI job can tell a crash from findings (exit 1).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            _check_outputs(kwargs)
            return fn(*args, **kwargs)
        except FailwellError as exc:
            _fail(str(exc), exc.exit_code)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except KeyboardInterrupt:
            err.print("[red]Interrupted.[/]")
            raise typer.Exit(130) from None
        except UnicodeDecodeError as exc:
            _fail(f"input is not UTF-8 text ({exc.reason} at byte {exc.start}).", EXIT_USAGE)
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            _fail(f"cannot use{where}: {exc.strerror or exc}.", EXIT_USAGE)
        except Exception as exc:
            if _is_not_a_database(exc):
                _fail("the knowledge base (--db / FAILWELL_DB) is not a database failwell can "
                      f"open: {str(exc).splitlines()[0]}", EXIT_USAGE)
            if _cannot_open_database(exc):
                _fail("cannot open a SQLite file (a folder, or a folder without write "
                      f"permission, where the file should be): {exc}", EXIT_USAGE)
            if debugging():
                raise
            first = (str(exc).strip().splitlines() or [""])[0]
            _fail(f"internal error, a failwell bug: {type(exc).__name__}: {first}\n"
                  "Run again with --debug (or FAILWELL_DEBUG=1) for the traceback, and "
                  "please report it.", EXIT_INTERNAL, label="Internal error")
        finally:
            while _opened:  # the knowledge bases the command opened (their pools)
                with contextlib.suppress(Exception):
                    _opened.pop().close()

    return wrapper


def _check_outputs(kwargs: dict[str, Any]) -> None:
    """An --output (file) or --output-dir (folder) that cannot be written is refused before
    the command spends minutes scanning or training, not after."""
    for name, folder in (("output", False), ("output_dir", True)):
        if isinstance(kwargs.get(name), Path):
            writable_path(kwargs[name], folder=folder)


def debugging() -> bool:
    import os

    return os.environ.get("FAILWELL_DEBUG", "").lower() in {"1", "true", "yes"}


def _fail(message: str, code: int, *, label: str = "Error") -> None:
    err.print(f"[bold red]{label}:[/] {escape(message.rstrip())}", highlight=False,
              soft_wrap=True)  # rstrip: pandas' messages end in a newline
    raise typer.Exit(code) from None


def _is_not_a_database(exc: Exception) -> bool:
    import sqlite3

    cause = getattr(exc, "orig", None) or exc
    return isinstance(cause, sqlite3.DatabaseError) and (
        "not a database" in str(cause) or "malformed" in str(cause))


def _cannot_open_database(exc: Exception) -> bool:
    import sqlite3

    cause = getattr(exc, "orig", None) or exc
    return isinstance(cause, sqlite3.OperationalError) and "unable to open" in str(cause)


def parse_params(items: list[str]) -> dict[str, dict[str, Any]]:
    from failwell.errors import InputError

    params: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        detector, dot, name = key.partition(".")
        if not sep or not dot:
            raise InputError(f"--param {item!r}: use DETECTOR.PARAM=VALUE, "
                             "e.g. group-fairness.max_rate_gap=0.05")
        params.setdefault(detector, {})[name] = value
    return params


def parse_pairs(items: list[str], option: str, example: str) -> dict[str, str]:
    from failwell.errors import InputError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InputError(f"{option} {item!r}: use ATTR=VALUE, e.g. {example}")
        out[key] = value
    return out


def _check_severity(value: str) -> str:
    if value not in SEVERITIES:
        raise typer.BadParameter(f"choose one of {', '.join(SEVERITIES)}")
    return value


def _check_format(value: str) -> str:
    from failwell.report import FORMATS

    if value not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}")
    return value


def writable_path(path: Path, *, folder: bool = False) -> Path:
    """Refuse an output path that cannot be written before any work is done: a folder
    where a file goes (or a file where a folder goes), or a place without write permission."""
    import os

    if path.exists() and path.is_dir() != folder:
        raise InputError(f"{path} is a {'file' if folder else 'folder'}; give a "
                         f"{'folder' if folder else 'file'}.")
    if path.is_file() and not os.access(path, os.W_OK):
        raise InputError(f"cannot write {path}: permission denied.")
    start = path if folder else path.parent
    parent = next((p for p in (start, *start.parents) if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: {parent} is not a folder failwell may "
                         "write to.")
    return path


# Report and knowledge-base options shared by every command that scans or probes.
ReportFmt = Annotated[str, typer.Option("--format", callback=_check_format,
                                        help="terminal, json, html or md.")]
ReportOutput = Annotated[Path | None, typer.Option(help="Write the report here.")]
FailOn = Annotated[str, typer.Option(callback=_check_severity,
                                     help="Exit 1 at this severity or above.")]
RecordInKb = Annotated[bool, typer.Option(
    "--kb", help="Record the findings in the knowledge base and show related lessons.")]
# --db for scans that record with --kb, and --db for the kb, governance and web commands.
RecordDatabaseUrl = Annotated[str | None, typer.Option(
    "--db", envvar="FAILWELL_DB", help="Knowledge base for --kb.")]
KbProject = Annotated[str | None, typer.Option(
    help="With --kb: record the scan as evidence for this governance project.")]
Upload = Annotated[str | None, typer.Option(
    help="Send the result to a failwell web app, e.g. https://failwell.example.org "
         "(token in FAILWELL_TOKEN, with the 'scans' scope).")]


# Knowledge-base options and output shared by the kb, governance and web commands.
DatabaseUrl = Annotated[str | None, typer.Option(
    "--db", envvar="FAILWELL_DB", show_envvar=True,
    help="SQLite file or SQLAlchemy URL (default ~/.local/share/failwell/kb.sqlite).")]
Fmt = Annotated[str, typer.Option("--format", help="terminal or json.")]


_opened: list = []  # knowledge bases opened by the running command; boundary closes them


def open_kb(db: str | None):
    """The knowledge base, closed when the command ends (its pool holds connections)."""
    from failwell.kb.store import KnowledgeBase

    kb = KnowledgeBase.open(db)
    _opened.append(kb)
    return kb


def read_text(path: Path) -> str:
    """A UTF-8 text file named on the command line, or one clear error: missing, a folder,
    not UTF-8, or empty (nothing to read is a mistake, not a clean result)."""
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file.")
    if not path.is_file():
        raise InputError(f"No such file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text.") from None
    if not text.strip():
        raise InputError(f"{path} is empty.")
    return text


def check_fmt(fmt: str, allowed=("terminal", "json")) -> None:
    if fmt not in allowed:
        raise InputError(f"--format {fmt!r} is not one of {', '.join(allowed)}.")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def finish(result, fmt: str, output: Path | None, title: str, fail_on: str, *,
           kb: bool = False, db: str | None = None, project: str | None = None,
           upload: str | None = None) -> None:
    """What every scan and probe does with its result: write the report, record it in the
    knowledge base (--kb), send it to the web app (--upload), and exit by severity."""
    emit(result, fmt, output, title=title)
    if kb:
        _record_in_kb(result, db, project)
    if upload:
        upload_scan(result, upload, project=project)
    exit_for(result, fail_on)


def upload_scan(result, url: str, *, project: str | None = None,
                token: str | None = None) -> str:
    """POST the result to ``URL/api/scans``; prints and returns the scan's page."""
    import os

    from failwell.errors import FailwellError, require

    httpx = require("httpx", extra="web", purpose="Uploading scans")
    token = token or os.environ.get("FAILWELL_TOKEN")
    if not token:
        raise InputError("--upload needs an API token in FAILWELL_TOKEN (failwell token "
                         "issue USER --name ci --scope scans).")
    base = url.rstrip("/")
    from failwell.findings import check_scan_dict

    body = result.to_dict()
    check_scan_dict(body, source="the scan result to upload")  # the server's rules, here first
    try:
        response = httpx.post(f"{base}/api/scans", json=body,
                              params={"project": project} if project else None,
                              headers={"Authorization": f"Bearer {token}"}, timeout=60)
    except httpx.HTTPError as exc:
        raise FailwellError(f"could not reach {base}: {exc}") from None
    if response.status_code != 201:
        detail = response.json().get("detail") if response.headers.get(
            "content-type", "").startswith("application/json") else response.text[:200]
        if isinstance(detail, list):  # a 422: each refused field's path and why
            detail = "; ".join(".".join(str(p) for p in e.get("loc", [])[1:]) + ": "
                               + str(e.get("msg")) for e in detail if isinstance(e, dict))
        raise FailwellError(f"{base} refused the upload (HTTP {response.status_code}): "
                            f"{detail}")
    page = base + response.json()["url"]
    err.print(f"uploaded: {page}")
    return page


def check_project(project: str | None, kb: bool, db: str | None) -> None:
    """--project needs --kb, and an unknown project fails before the scan runs."""
    if project and not kb:
        raise InputError("--project records the scan in the knowledge base: add --kb.")
    if project:
        governance(db).project(project)


def governance(db: str | None):
    from failwell.governance.store import Governance

    return Governance(open_kb(db))


def _record_in_kb(result, db: str | None, project: str | None = None) -> None:
    """Store the scan and print the proxy guard and the lessons of incidents with the same
    failure modes (to stderr, so a JSON report on stdout stays clean)."""
    from failwell.workflows import record_scan

    recorded = record_scan(governance(db), result, project=project)
    err.print(f"Recorded as scan {recorded.scan_id} in the knowledge base"
              + (f" for project {project}." if project else "."))
    if recorded.proxy_guard:
        err.print(recorded.proxy_guard, highlight=False)
    for h in recorded.lessons:
        err.print(f"[bold]Lessons from {escape(h.title)}[/] [dim]({h.incident}; "
                  f"{', '.join(h.failure_modes)})[/]", highlight=False)
        for lesson in h.lessons:
            err.print(f"  • {escape(lesson['text'])}", highlight=False)


def emit(result, fmt: str, output: Path | None, *, title: str) -> None:
    from failwell.report import render, write

    if output is not None:
        write(result, fmt if fmt != "terminal" else _fmt_from_suffix(output), output,
              title=title)
        err.print(f"report written to {output}")
    if fmt == "terminal":
        _print_terminal(result)
    elif output is None:
        sys.stdout.write(render(result, fmt, title=title) + "\n")


def _print_terminal(result) -> None:
    from failwell.report.terminal import build_renderable

    Console().print(build_renderable(result))


def _fmt_from_suffix(path: Path) -> str:
    return {".html": "html", ".htm": "html", ".md": "md"}.get(path.suffix.lower(), "json")


def exit_for(result, fail_on: str) -> None:
    errors = result.errors
    for o in errors:
        first = escape(o.message.splitlines()[0])
        err.print(f"[bold red]Detector {o.detector!r} failed:[/] {first}", soft_wrap=True,
                  highlight=False)
    if errors:
        err.print(f"[red]Scan incomplete: {len(errors)} detector(s) failed.[/]")
        raise typer.Exit(EXIT_USAGE)
    worst = result.worst_severity()
    if worst is not None and worst >= fail_on:
        raise typer.Exit(EXIT_FINDINGS)




def narrow_table(*columns: str, rows: list[list[str]], whole: tuple[str, ...] = ("id",),
                 **kwargs: Any) -> Any:
    """A table that stays readable at 80 columns: the ``whole`` columns (ids, tags) never
    shrink below their longest cell, so an id can be copied; the others wrap, long words
    fold, and nothing is cut off with an ellipsis."""
    from rich.table import Table

    table = Table(**kwargs)
    for i, name in enumerate(columns):
        if name in whole:
            widest = max([len(name), *(len(str(r[i]).split("\n")[0]) for r in rows)])
            table.add_column(name, no_wrap=True, min_width=widest)
        else:
            table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table
