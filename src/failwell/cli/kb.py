"""Knowledge-base commands: ``failwell incident ...``, ``failwell kb ...``, ``failwell lessons``.

Thin over :mod:`failwell.kb`; every command takes ``--db`` (default: ``FAILWELL_DB``, else
the per-user SQLite file) and most have a ``--format json`` twin of their terminal output.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from failwell.cli.common import (
    EXIT_FINDINGS,
    DatabaseUrl,
    Fmt,
    boundary,
    check_fmt,
    err,
    narrow_table,
    open_kb,
    print_json,
    read_text,
)
from failwell.errors import InputError
from failwell.progress import counter, progress_bar

incident_app = typer.Typer(help="Blameless postmortems: new, edit, show, list, lint, publish.",
                           no_args_is_help=True)
kb_app = typer.Typer(help="The knowledge base: search, import, export, stats.",
                     no_args_is_help=True)
lessons_app = typer.Typer(help="Lessons of related past incidents.", no_args_is_help=True)

Patterns = Annotated[list[str], typer.Option("--pattern", help="Systemic pattern id.")]
Modes = Annotated[list[str], typer.Option("--failure-mode", help="Failure mode id.")]
Severities = Annotated[list[str], typer.Option("--severity", help="low/medium/high/critical.")]
Projects = Annotated[list[str], typer.Option("--project", help="Project or system name.")]
Statuses = Annotated[list[str], typer.Option("--status", help="draft/in-review/published.")]
Sources = Annotated[list[str], typer.Option(
    "--source", help="user, library, import or genai-incidents.")]
Since = Annotated[str | None, typer.Option(help="Occurred on or after (YYYY-MM-DD).")]
Until = Annotated[str | None, typer.Option(help="Occurred on or before (YYYY-MM-DD).")]

console = Console()


def _date(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"--{name} {value!r} is not a date (use YYYY-MM-DD).") from None


def _filters(patterns, modes, severities, projects, statuses, sources, since, until):
    from failwell.kb.postmortem import STATUSES
    from failwell.kb.store import Filters
    from failwell.taxonomy import load_catalog

    catalog = load_catalog()
    for p in patterns:
        catalog.pattern(p)
    for m in modes:
        catalog.failure_mode(m)
    for s in severities:
        if s not in ("low", "medium", "high", "critical"):
            raise InputError(f"--severity {s!r} is not one of low, medium, high, critical.")
    for s in statuses:
        if s not in STATUSES:
            raise InputError(f"--status {s!r} is not one of {', '.join(STATUSES)}.")
    return Filters(patterns=list(patterns), failure_modes=list(modes),
                   severities=list(severities), projects=list(projects),
                   statuses=list(statuses), sources=list(sources),
                   since=_date(since, "since"), until=_date(until, "until"))


def _read_text(path: Path) -> str:
    return read_text(path)  # missing, a folder, not UTF-8 or empty: one error, exit 2


# -- incident --------------------------------------------------------------------------

@incident_app.command("template")
def incident_template(
    id: Annotated[str, typer.Option(help="The new incident's id (kebab-case).")] = "new-incident",
) -> None:
    """Print a blank postmortem to fill in, then `failwell incident new --from FILE`."""
    from failwell.kb.postmortem import TEMPLATE

    sys.stdout.write(TEMPLATE.format(id=id, title="One line saying what failed"))


def _slug(title: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "incident"


def _interactive() -> tuple[Any, None]:
    from failwell.kb.postmortem import from_dict

    title = typer.prompt("Title (one line, what failed)")
    data = {
        "id": typer.prompt("Id", default=_slug(title)),
        "title": title,
        "project": typer.prompt("Project or system", default=""),
        "severity": typer.prompt("Severity (low/medium/high/critical)", default="medium"),
        "occurred": typer.prompt("Occurred (YYYY-MM-DD)", default="") or None,
        "impact": typer.prompt("Impact: who and what was harmed", default=""),
        "decision_supported": typer.prompt("Decision the system supported", default=""),
        "success_definition": typer.prompt("How success was defined", default=""),
        "summary": typer.prompt("Summary (what happened)"),
    }
    return from_dict(data, source="your answers"), None


@incident_app.command("new")
@boundary
def incident_new(
    from_file: Annotated[Path | None, typer.Option(
        "--from", help="A Markdown postmortem (see `failwell incident template`).")] = None,
    accept_suggestions: Annotated[bool, typer.Option(
        help="Add the suggested patterns and failure modes without asking.")] = False,
    db: DatabaseUrl = None,
    fmt: Fmt = "terminal",
) -> None:
    """Record a postmortem (from a file, or by answering questions) as a draft; shows blame
    framing, suggested tags and similar past incidents."""
    from failwell.kb.postmortem import from_markdown
    from failwell.workflows import add_incident

    check_fmt(fmt)
    if from_file is not None:
        markdown = _read_text(from_file)
        pm = from_markdown(markdown, source=str(from_file))
    else:
        pm, markdown = _interactive()
    interactive = from_file is None and fmt == "terminal"  # answering questions already

    def accept(s) -> bool:
        return accept_suggestions or (interactive and typer.confirm(
            f"Tag {s.kind.replace('_', ' ')} {s.id!r} (score {s.score}, from: "
            f"{s.sentence[:80]!r})?"))

    recorded = add_incident(open_kb(db), pm, markdown, accept=accept)
    if fmt == "json":
        print_json(recorded.to_dict())
        return
    console.print(f"[green]Recorded[/] {pm.id} as {pm.status}.")
    _show_flags(recorded.flags)
    for s in recorded.suggestions:
        mark = "[green]added[/]" if s in recorded.accepted else "suggested"
        console.print(f"  {mark} {s.kind.replace('_', ' ')} [bold]{s.id}[/] ({s.score}, "
                      f"{s.via}): {s.sentence[:100]!r}", highlight=False)
    _show_related(recorded.related, pm.project)


def _show_flags(flags) -> None:
    for f in flags:
        console.print(f"[yellow]blame framing[/] ({f.why}): [bold]{f.sentence}[/]",
                      highlight=False)
        console.print(f"  [dim]trigger:[/] {f.trigger!r}  [green]suggest:[/] {f.suggestion}",
                      highlight=False)
    if flags:
        console.print(f"{len(flags)} blame-framing flag(s); reword before publishing.")


def _show_related(related, project: str) -> None:
    if not related:
        return
    console.print("[bold]Similar past incidents[/]")
    for r in related:
        warning = r.warning(project)
        line = (f"  {r.id}: {r.title} [dim]({r.project or 'no project'}; "
                f"actions {r.actions_closed}/{r.actions_total} closed)[/]")
        console.print(line, highlight=False)
        if warning:
            console.print(f"  [bold yellow]! {warning}[/]", highlight=False)


@incident_app.command("edit")
@boundary
def incident_edit(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    from_file: Annotated[Path | None, typer.Option(
        "--from", help="Replace with this Markdown file (default: open $EDITOR).")] = None,
    db: DatabaseUrl = None,
) -> None:
    """Edit a postmortem as Markdown. Invalid edits are refused and kept in a recovery file;
    the stored version is untouched."""
    from failwell.kb.postmortem import from_markdown

    kb = open_kb(db)
    stored = kb.get(incident_id)
    if from_file is not None:
        text = _read_text(from_file)
    else:
        edited = _edit_in_editor(stored.markdown, incident_id)
        if edited == stored.markdown:
            console.print("No changes.")
            return
        text = edited
    try:
        pm = from_markdown(text, source=incident_id)
        if pm.id != incident_id:
            raise InputError(f"the id changed from {incident_id!r} to {pm.id!r}; ids are "
                             "permanent (record a new incident instead).")
        kb.update(pm, markdown=text)
    except InputError:
        if from_file is None:
            import tempfile

            handle, name = tempfile.mkstemp(prefix=f"failwell-edit-{incident_id}-",
                                            suffix=".md")  # never overwrites an earlier one
            keep = Path(name)
            with open(handle, "w", encoding="utf-8") as fh:
                fh.write(text)
            err.print(f"Your edit was kept in {keep}; fix it and run "
                      f"`failwell incident edit {incident_id} --from {keep}`.")
        raise
    console.print(f"[green]Updated[/] {incident_id}.")


def _edit_in_editor(text: str, name: str) -> str:
    """Open ``text`` in $VISUAL / $EDITOR (default vi) and return what was saved."""
    import os
    import shlex
    import subprocess
    import tempfile

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.md"
        path.write_text(text, encoding="utf-8")
        try:
            code = subprocess.call([*shlex.split(editor), str(path)])
        except OSError as exc:
            raise InputError(f"cannot start the editor {editor!r} ({exc.strerror}); set "
                             "EDITOR, or use --from FILE.") from None
        if code != 0:
            raise InputError(f"the editor {editor!r} exited with {code}; nothing changed.")
        return path.read_text(encoding="utf-8")


@incident_app.command("show")
@boundary
def incident_show(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    db: DatabaseUrl = None,
    fmt: Annotated[str, typer.Option("--format", help="md, json or terminal.")] = "md",
) -> None:
    """Print a postmortem: its Markdown (default), JSON, or a terminal summary."""
    check_fmt(fmt, ("md", "json", "terminal"))
    kb = open_kb(db)
    stored = kb.get(incident_id)
    if fmt == "md":
        sys.stdout.write(stored.markdown)
    elif fmt == "json":
        print_json(stored.to_dict())
    else:
        pm = stored.postmortem
        closed, total = stored.actions_closed
        console.print(f"[bold]{pm.title}[/] ({pm.id})", highlight=False)
        console.print(f"{pm.severity} · {pm.status} · {pm.project or 'no project'} · "
                      f"occurred {pm.occurred or '?'} · actions {closed}/{total} closed",
                      highlight=False)
        console.print(pm.summary, highlight=False)
        if stored.attribution:
            console.print(f"[dim]Source: {stored.attribution}[/]", highlight=False)
        from failwell.kb.events import links_for

        for link in links_for(kb, incident_id):
            console.print(f"[dim]Same event as {link['id']} (shares "
                          f"{', '.join(link['names'])})[/]", highlight=False)


@incident_app.command("list")
@boundary
def incident_list(
    db: DatabaseUrl = None, fmt: Fmt = "terminal",
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 50,
    pattern: Patterns = [], failure_mode: Modes = [],  # noqa: B006
    severity: Severities = [], project: Projects = [],  # noqa: B006
    status: Statuses = [], source: Sources = [],  # noqa: B006
    since: Since = None, until: Until = None,
) -> None:
    """List incidents, newest first."""
    check_fmt(fmt)
    filters = _filters(pattern, failure_mode, severity, project, status, source, since, until)
    kb = open_kb(db)
    rows = kb.list(filters, limit=limit)
    if fmt == "json":
        print_json([r.to_dict() for r in rows])
        return
    console.print(narrow_table(
        "id", "title", "severity", "status", "project", "occurred",
        rows=[[r.id, r.title, r.severity, r.status, r.project, str(r.occurred or "")]
              for r in rows]))
    console.print(f"{len(rows)} of {kb.count(filters)} incident(s)")


@incident_app.command("lint")
@boundary
def incident_lint(
    file: Annotated[Path, typer.Argument(help="Markdown postmortem or plain text.")],
    fmt: Fmt = "terminal",
) -> None:
    """Flag blame framing (a person as the cause, "human error", "should have", "careless")
    and suggest a systemic rewording. Exit 1 when anything is flagged, 0 when clean."""
    from failwell.kb.blameless import lint

    check_fmt(fmt)
    flags = lint(_read_text(file))
    if fmt == "json":
        print_json([f.to_dict() for f in flags])
    else:
        _show_flags(flags)
        if not flags:
            console.print("[green]No blame framing found.[/]")
    if flags:
        raise typer.Exit(EXIT_FINDINGS)


@incident_app.command("publish")
@boundary
def incident_publish(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    override_reason: Annotated[str | None, typer.Option(
        help="Publish despite open blame flags; the reason is stored with the incident.")
    ] = None,
    db: DatabaseUrl = None,
) -> None:
    """Publish a postmortem. Open blame-framing flags block it unless overridden."""
    flags = open_kb(db).publish(incident_id, override_reason=override_reason)
    note = f" (overriding {len(flags)} flag(s): {override_reason})" if flags else ""
    console.print(f"[green]Published[/] {incident_id}{note}.", highlight=False)


@incident_app.command("delete")
@boundary
def incident_delete(
    incident_id: Annotated[str, typer.Argument(help="Incident id (a draft or in review).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    db: DatabaseUrl = None,
) -> None:
    """Delete a draft or in-review postmortem (a mistake, an unfilled template). Published
    postmortems are kept (`incident retire` takes them out of search); the deletion is
    written to the audit log."""
    import getpass

    from failwell.governance.store import Governance

    kb = open_kb(db)
    kb.get(incident_id)  # a clear error for an unknown id before asking
    if not yes and not typer.confirm(f"Delete {incident_id}?"):
        raise typer.Exit(1)
    kb.delete_draft(incident_id, audit=Governance(kb).entry(
        getpass.getuser(), "incident.delete", {"id": incident_id}))
    console.print(f"Deleted {incident_id}.", highlight=False)


@incident_app.command("retire")
@boundary
def incident_retire(
    incident_id: Annotated[str, typer.Argument(help="Published incident id.")],
    reason: Annotated[str, typer.Option(
        help="Why it is retired (superseded by ..., wrong because ...); kept in the audit "
             "log.")],
    db: DatabaseUrl = None,
) -> None:
    """Retire a published postmortem: it stays on record (`incident show`, `incident list
    --status retired`) but leaves search, lessons and statistics. Audited."""
    import getpass

    from failwell.governance.store import Governance

    if not reason.strip():
        raise InputError("give a --reason: the audit log keeps why a postmortem was retired.")
    kb = open_kb(db)
    kb.retire(incident_id, audit=Governance(kb).entry(
        getpass.getuser(), "incident.retire", {"id": incident_id, "reason": reason.strip()}))
    console.print(f"Retired {incident_id}: kept on record, no longer surfaced.",
                  highlight=False)


@incident_app.command("suggest")
@boundary
def incident_suggest(
    source: Annotated[str, typer.Argument(help="Incident id, or a Markdown/text file.")],
    db: DatabaseUrl = None, fmt: Fmt = "terminal",
) -> None:
    """Suggest systemic patterns and failure modes, with the sentence behind each."""
    from failwell.kb.classify import suggest
    from failwell.kb.postmortem import from_markdown

    check_fmt(fmt)
    path = Path(source)
    kb = open_kb(db)
    if path.is_file():
        text = _read_text(path)
        subject = from_markdown(text, source=source) if text.startswith("---\n") else text
    else:
        subject = kb.get(source).postmortem
    suggestions = suggest(subject, kb=kb)
    if fmt == "json":
        print_json([s.to_dict() for s in suggestions])
        return
    for s in suggestions:
        done = " [dim](already tagged)[/]" if s.already_tagged else ""
        console.print(f"{s.kind.replace('_', ' ')} [bold]{s.id}[/] p={s.score} ({s.via}){done}\n"
                      f"  {s.sentence!r}", highlight=False)
    if not suggestions:
        console.print("No suggestions.")


# -- kb --------------------------------------------------------------------------------

@kb_app.command("search")
@boundary
def kb_search(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    db: DatabaseUrl = None, fmt: Fmt = "terminal",
    mode: Annotated[str, typer.Option(help="combined, fulltext or semantic.")] = "combined",
    limit: Annotated[int, typer.Option(min=1, help="At most this many hits.")] = 10,
    pattern: Patterns = [], failure_mode: Modes = [],  # noqa: B006
    severity: Severities = [], project: Projects = [],  # noqa: B006
    status: Statuses = [], source: Sources = [],  # noqa: B006
    since: Since = None, until: Until = None,
) -> None:
    """Full-text and semantic search, fused into one ranking."""
    from failwell.kb.search import search

    check_fmt(fmt)
    filters = _filters(pattern, failure_mode, severity, project, status, source, since, until)
    hits = search(open_kb(db), query, filters, mode=mode, limit=limit)  # type: ignore[arg-type]
    if fmt == "json":
        print_json([h.to_dict() for h in hits])
        return
    console.print(narrow_table(
        "score", "id", "title", "severity", "occurred",
        rows=[[f"{h.score:.4f}", h.id, h.title + (f"\n[dim]same event as "
                                                   f"{', '.join(h.same_event)}[/]"
                                                   if h.same_event else ""),
               h.severity, h.occurred or ""] for h in hits]))


@kb_app.command("import")
@boundary
def kb_import(
    source: Annotated[str, typer.Argument(
        help="'genai-incidents', or a .md/.json/.csv file or a folder of .md files.")],
    db: DatabaseUrl = None,
    embed: Annotated[bool, typer.Option(
        help="Compute embeddings for semantic search after importing.")] = True,
    limit: Annotated[int | None, typer.Option(
        min=1, help="genai-incidents: import only the first N records.")] = None,
    fmt: Fmt = "terminal",
) -> None:
    """Import postmortems; idempotent (present ids are skipped) and resumable."""
    from failwell.kb import transfer

    check_fmt(fmt)
    kb = open_kb(db)
    with counter("importing") as progress:
        if transfer.is_corpus_name(source):
            report = transfer.import_genai_incidents(kb, progress=progress, limit=limit)
        else:
            report = transfer.import_path(kb, Path(source), progress=progress)
    embedded = _embed(kb) if embed else 0
    if fmt == "json":
        print_json(report.to_dict() | {"embedded": embedded})
        return
    console.print(f"{report.source}: read {report.read}, added {report.added}, skipped "
                  f"{report.skipped} already present"
                  + (f", left out {report.excluded} retracted" if report.excluded else "")
                  + (f"; embedded {embedded}" if embedded else "") + ".", highlight=False)


def _embed(kb) -> int:
    from failwell.kb import embeddings

    if not embeddings.available():
        err.print("[yellow]Semantic search is off: pip install 'failwell\\[embeddings]'.[/]")
        return 0
    if not kb.missing_embeddings(limit=1):
        return 0
    # before the bar: the first use on a machine exports the model (about 10 s)
    with progress_bar(err, label="loading the embedding model"):
        embeddings.encoder()
    try:
        with counter("embedding") as progress:
            return kb.embed_missing(progress=progress)
    except KeyboardInterrupt:
        # every finished batch is committed: the next run picks up the rest
        left = len(kb.missing_embeddings())
        err.print(f"[yellow]Interrupted; {left} incident(s) still without a vector: "
                  "`failwell kb embed` continues from there.[/]")
        raise typer.Exit(130) from None


@kb_app.command("embed")
@boundary
def kb_embed(db: DatabaseUrl = None) -> None:
    """Compute the missing embeddings (resumes where an interrupted run stopped)."""
    console.print(f"Embedded {_embed(open_kb(db))} incident(s).")


@kb_app.command("export")
@boundary
def kb_export(
    destination: Annotated[Path, typer.Argument(
        help="A folder (md) or a file (json, csv).")],
    fmt: Annotated[str, typer.Option("--format", help="md, json or csv.")] = "md",
    db: DatabaseUrl = None,
    pattern: Patterns = [], failure_mode: Modes = [],  # noqa: B006
    severity: Severities = [], project: Projects = [],  # noqa: B006
    status: Statuses = [], source: Sources = [],  # noqa: B006
    since: Since = None, until: Until = None,
    force: Annotated[bool, typer.Option(help="Replace files that exist.")] = False,
) -> None:
    """Export postmortems; Markdown is written exactly as it was imported. Existing files
    are never replaced without --force."""
    from failwell.kb.transfer import export

    filters = _filters(pattern, failure_mode, severity, project, status, source, since, until)
    n = export(open_kb(db), destination, fmt, filters, force=force)
    console.print(f"Exported {n} incident(s) to {destination}.", highlight=False)


@kb_app.command("stats")
@boundary
def kb_stats(
    db: DatabaseUrl = None, fmt: Fmt = "terminal",
    period: Annotated[str, typer.Option(help="year, quarter or month.")] = "year",
    source: Annotated[list[str], typer.Option(
        "--source",
        help="Sources to count (default: all but the public genai-incidents corpus).",
    )] = [],  # noqa: B006
) -> None:
    """Is the organization learning? Recurrence, action closure, time to lesson."""
    from failwell.kb.stats import PERIODS, default_filters, learning_stats
    from failwell.kb.store import Filters

    check_fmt(fmt)
    if period not in PERIODS:
        raise InputError(f"--period {period!r} is not one of {', '.join(PERIODS)}.")
    filters = Filters(sources=list(source)) if source else default_filters()
    stats = learning_stats(open_kb(db), filters, period=period)
    if fmt == "json":
        print_json(stats)
        return
    pct = lambda v: "n/a" if v is None else f"{100 * v:.0f}%"  # noqa: E731
    days = lambda v: "n/a" if v is None else f"{v:.0f} days"  # noqa: E731
    console.print(
        f"[bold]{stats['incidents']}[/] incidents · recurrence {pct(stats['recurrence_rate'])}"
        f" · actions closed {stats['action_items_closed']}/{stats['action_items']} "
        f"({pct(stats['action_closure_rate'])}), median {days(stats['median_days_to_close'])}"
        f" · time to lesson {days(stats['median_days_to_lesson'])}", highlight=False)
    for key, label in (("by_pattern", "systemic pattern"), ("by_failure_mode", "failure mode")):
        data = stats[key]
        periods = sorted({p for counts in data.values() for p in counts})
        console.print(narrow_table(
            label, *periods, "total", whole=(label,), title=f"Incidents by {label} per {period}",
            rows=[[tag, *(str(counts.get(p, "")) for p in periods), str(sum(counts.values()))]
                  for tag, counts in sorted(data.items(), key=lambda kv: -sum(kv[1].values()))]))


@kb_app.command("info")
@boundary
def kb_info(db: DatabaseUrl = None) -> None:
    """Where the knowledge base is, its schema version and what it holds."""
    from failwell.db import engine as kbdb

    kb = open_kb(db)
    console.print(f"database: {kb.engine.url.render_as_string(hide_password=True)}\n"
                  f"schema: {kbdb.current_revision(kb.engine)} (head {kbdb.head_revision()})\n"
                  f"incidents: {kb.count()}", highlight=False)


# -- lessons ---------------------------------------------------------------------------

@lessons_app.command("for")
@boundary
def lessons_for(
    subject: Annotated[str, typer.Argument(
        help="A project description, a text file, or a scan result (.json).")],
    db: DatabaseUrl = None, fmt: Fmt = "terminal",
    limit: Annotated[int, typer.Option(help="At most this many incidents.")] = 5,
) -> None:
    """Lessons of the past incidents most related to a project or a scan."""
    from failwell.kb.lessons import lessons_for_scan, lessons_for_text

    check_fmt(fmt)
    if limit < 1:
        raise InputError(f"--limit must be at least 1, not {limit}.")
    path = Path(subject)
    looks_like_file = " " not in subject and bool(path.suffix) and len(path.suffix) <= 5
    if looks_like_file and not path.is_file():
        raise InputError(f"{'A folder, not a file' if path.is_dir() else 'No such file'}: "
                         f"{subject}. To search for text, give a description with several "
                         "words (quote it).")
    kb = open_kb(db)
    if path.suffix.lower() == ".json" and path.is_file():
        from failwell.findings import ScanResult

        hits = lessons_for_scan(kb, ScanResult.from_json(_read_text(path)), limit=limit)
    else:
        text = _read_text(path) if path.is_file() else subject
        hits = lessons_for_text(kb, text, limit=limit)
    if fmt == "json":
        print_json([h.to_dict() for h in hits])
        return
    print_lessons(hits)


def print_lessons(hits) -> None:
    if not hits:
        console.print("No related lessons in the knowledge base.")
    for h in hits:
        console.print(f"[bold]{h.title}[/] [dim]({h.incident})[/]", highlight=False)
        for lesson in h.lessons:
            console.print(f"  • {lesson['text']}", highlight=False)
