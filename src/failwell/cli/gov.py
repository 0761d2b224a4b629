"""Governance commands: ``failwell project``, ``failwell gate``, ``failwell card``,
``failwell pir``. Thin over :mod:`failwell.governance`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from failwell.cli.common import (
    DatabaseUrl,
    Fmt,
    boundary,
    check_fmt,
    narrow_table,
    open_kb,
    print_json,
    read_text,
)
from failwell.errors import InputError

project_app = typer.Typer(help="AI projects under review: new, show, list.",
                          no_args_is_help=True)
gate_app = typer.Typer(help="Stage gates: status, evidence, review, conditions, audit log.",
                       no_args_is_help=True)
card_app = typer.Typer(help="Model cards and datasheets.", no_args_is_help=True)

Gates = Annotated[Path | None, typer.Option(
    "--gates", envvar="FAILWELL_GATES", help="Stage-gate YAML file (default: built in).")]
By = Annotated[str | None, typer.Option("--by", help="Who is acting (default: login name).")]
console = Console()


def _gov(db: str | None, gates: Path | None = None):
    from failwell.governance.gates import load_gates
    from failwell.governance.store import Governance

    loaded = load_gates(gates)  # a bad gate file fails before the database is opened
    return Governance(open_kb(db), loaded)


# -- project ---------------------------------------------------------------------------

@project_app.command("new")
@boundary
def project_new(
    file: Annotated[Path, typer.Option("--from", help="Project YAML (see docs/governance.md).")],
    db: DatabaseUrl = None, gates: Gates = None, by: By = None,
) -> None:
    """Register a project. Success criteria without a number or a measurement plan are
    refused."""
    project = _gov(db, gates).add_project(read_text(file), source=str(file), by=by)
    console.print(f"[green]Registered[/] {project.id}: {project.name}", highlight=False)


@project_app.command("show")
@boundary
def project_show(slug: Annotated[str, typer.Argument(help="Project id.")], db: DatabaseUrl = None,
                 fmt: Fmt = "terminal") -> None:
    """The project as registered, with its stage."""
    check_fmt(fmt)
    project, row = _gov(db).project(slug)
    if fmt == "json":
        print_json(project.to_dict() | {"stage": row["stage"]})
        return
    console.print(f"[bold]{project.name}[/] ({project.id}) · risk {project.risk} · stage "
                  f"[bold]{row['stage']}[/]", highlight=False)
    console.print(f"Problem: {project.problem}\nDecision: {project.decision}", highlight=False)
    for c in project.success_criteria:
        console.print(f"  • {c.metric} {'>=' if c.direction == 'up' else '<='} {c.target:g} — "
                      f"{c.measurement} ({c.when})", highlight=False)


@project_app.command("list")
@boundary
def project_list(db: DatabaseUrl = None, fmt: Fmt = "terminal") -> None:
    """Every project and the gate it is at."""
    check_fmt(fmt)
    rows = _gov(db).projects()
    if fmt == "json":
        print_json(rows)
        return
    console.print(narrow_table("id", "name", "risk", "stage",
                               rows=[[r["slug"], r["name"], r["risk"], r["stage"]]
                                     for r in rows]))


# -- gate ------------------------------------------------------------------------------

@gate_app.command("status")
@boundary
def gate_status(slug: Annotated[str, typer.Argument(help="Project id.")], db: DatabaseUrl = None,
                gates: Gates = None, fmt: Fmt = "terminal") -> None:
    """The gate the project is at: its questions, the evidence (met or missing), open
    conditions, and lessons of related past incidents."""
    check_fmt(fmt)
    status = _gov(db, gates).status(slug)
    if fmt == "json":
        print_json(status.to_dict())
        return
    if status.gate is None:
        console.print(f"{slug} has passed every gate.")
    else:
        console.print(f"[bold]{slug}[/] is at [bold]{status.gate.name}[/] "
                      f"({'ready for review' if status.ready else 'evidence missing'})",
                      highlight=False)
        for q in status.gate.questions:
            console.print(f"  ? {q.text} [dim]({q.pattern})[/]", highlight=False)
        for e in status.evidence:
            mark = "[green]✓[/]" if e.satisfied else "[red]✗[/]"
            console.print(f"  {mark} {e.kind}: {e.detail}", highlight=False)
    for c in status.open_conditions:
        console.print(f"  [yellow]condition {c['id']}[/] ({c['gate']}, {c['owner']}): "
                      f"{c['description']}", highlight=False)
    if status.lessons:
        console.print("[bold]Lessons from related incidents[/]")
        for hit in status.lessons:
            for lesson in hit.lessons:
                console.print(f"  • {lesson['text']} [dim]({hit.incident})[/]", highlight=False)
            if getattr(hit, "reason", ""):
                console.print(f"    [dim]why here: {hit.reason}[/]", highlight=False)


@gate_app.command("review")
@boundary
def gate_review(
    slug: Annotated[str, typer.Argument(help="Project id.")],
    gate: Annotated[str, typer.Option(help="The gate being reviewed (the project's stage).")],
    decision: Annotated[str, typer.Option(help="go, go-with-conditions or no-go.")],
    rationale: Annotated[str, typer.Option(help="What evidence decided it.")] = "",
    reviewer: Annotated[list[str], typer.Option(
        help="A reviewer, by role (repeatable).")] = [],  # noqa: B006
    condition: Annotated[list[str], typer.Option(
        help="A condition; becomes a tracked action item (repeatable).")] = [],  # noqa: B006
    override_reason: Annotated[str | None, typer.Option(
        help="Pass despite missing evidence; recorded in the audit log.")] = None,
    db: DatabaseUrl = None, gates: Gates = None, by: By = None,
) -> None:
    """Record the board's decision. Missing evidence blocks go unless overridden."""
    status = _gov(db, gates).review(slug, gate, decision, rationale, reviewers=reviewer,
                                    conditions_=condition, override_reason=override_reason,
                                    by=by)
    console.print(f"[green]Recorded[/] {decision} at {gate}; {slug} is now at "
                  f"{status.stage}.", highlight=False)


@gate_app.command("evidence")
@boundary
def gate_evidence(
    slug: Annotated[str, typer.Argument(help="Project id.")],
    kind: Annotated[str, typer.Option(help="Evidence kind recorded by people.")],
    note: Annotated[str, typer.Option(help="What was done, by whom, where it is kept.")],
    db: DatabaseUrl = None, by: By = None,
) -> None:
    """Record evidence that only people can give (e.g. an end-user sign-off)."""
    if not note.strip():
        raise InputError("--note must say what the evidence is.")
    _gov(db).record_evidence(slug, kind, {"passed": True, "detail": note.strip()}, by=by)
    console.print(f"[green]Recorded[/] {kind} for {slug}.", highlight=False)


@gate_app.command("condition")
@boundary
def gate_condition(
    slug: Annotated[str, typer.Argument(help="Project id.")],
    condition_id: Annotated[int, typer.Argument(help="Condition number (see gate status).")],
    status: Annotated[str, typer.Option(help="done, wont-do or open.")] = "done",
    db: DatabaseUrl = None, by: By = None,
) -> None:
    """Update a condition attached to a go-with-conditions decision."""
    _gov(db).close_condition(slug, condition_id, status, by=by)
    console.print(f"Condition {condition_id} is {status}.")


@gate_app.command("kinds")
def gate_kinds() -> None:
    """The evidence kinds a gate file may require."""
    from failwell.governance.evidence import KINDS

    for name, kind in KINDS.items():
        params = f" (params: {', '.join(kind.params)})" if kind.params else ""
        console.print(f"[bold]{name}[/]{params}: {kind.description}", highlight=False)


@gate_app.command("audit")
@boundary
def gate_audit(slug: Annotated[str | None, typer.Argument(help="Project id.")] = None,
               db: DatabaseUrl = None, fmt: Fmt = "terminal") -> None:
    """The append-only audit log of every governance write."""
    check_fmt(fmt)
    gov = _gov(db)
    if slug is not None:
        gov.project(slug)  # an unknown project is an error, not an empty log
    rows = gov.audit(slug)
    if fmt == "json":
        print_json(rows)
        return
    for r in rows:
        console.print(f"{r['at']} {r['actor']} {r['action']} {r['project'] or ''} "
                      f"{json.dumps(r['details'], default=str)}", highlight=False)


# -- cards -----------------------------------------------------------------------------

def _card(kind: str, slug: str, set_: list[str], fmt: str, output: Path | None, db, by):
    from failwell.governance import cards

    check_fmt(fmt, ("md", "html", "json"))
    edits = {}
    for item in set_:
        key, sep, text = item.partition("=")
        if not sep:
            raise InputError(f"--set {item!r}: use SECTION=TEXT (or SECTION=@file.md).")
        if text.startswith("@"):
            text = read_text(Path(text[1:]))  # an empty file would leave the section blank
        edits[key.strip()] = text
    gov = _gov(db)
    card = gov.save_card(slug, kind, edits, by=by)
    project, _ = gov.project(slug)
    rendered = (json.dumps(card, indent=2, default=str) if fmt == "json" else
                cards.to_markdown(kind, project, card) if fmt == "md" else
                cards.to_html(kind, project, card))
    gaps = cards.missing(card["sections"])
    if output:
        output.write_text(rendered + "\n", encoding="utf-8")
        console.print(f"{cards.TITLES[kind]} v{card['version']} written to {output}"
                      + (f"; missing: {', '.join(gaps)}" if gaps else "; complete."),
                      highlight=False)
    else:
        sys.stdout.write(rendered + "\n")


@card_app.command("model")
@boundary
def card_model(
    slug: Annotated[str, typer.Argument(help="Project id.")],
    set_: Annotated[list[str], typer.Option(
        "--set", help="SECTION=TEXT or SECTION=@file (repeatable).")] = [],  # noqa: B006
    fmt: Annotated[str, typer.Option("--format", help="md, html or json.")] = "md",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    db: DatabaseUrl = None, by: By = None,
) -> None:
    """Save a new version of the model card (drafted from the project and its latest scan,
    with people's sections kept) and print it. Missing sections are listed, not invented."""
    _card("model", slug, set_, fmt, output, db, by)


@card_app.command("data")
@boundary
def card_data(
    slug: Annotated[str, typer.Argument(help="Project id.")],
    set_: Annotated[list[str], typer.Option(
        "--set", help="SECTION=TEXT or SECTION=@file (repeatable).")] = [],  # noqa: B006
    fmt: Annotated[str, typer.Option("--format", help="md, html or json.")] = "md",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    db: DatabaseUrl = None, by: By = None,
) -> None:
    """Save a new version of the datasheet for the project's data and print it."""
    _card("data", slug, set_, fmt, output, db, by)


# -- post-implementation review ----------------------------------------------------------

def pir(
    slug: Annotated[str, typer.Argument(help="Project id.")],
    outcome: Annotated[list[str], typer.Option(
        help="METRIC=VALUE measured in production, one per success criterion.")] = [],  # noqa: B006
    db: DatabaseUrl = None, by: By = None, fmt: Fmt = "terminal",
) -> None:
    """Post-implementation review: outcomes against the success criteria. A missed criterion
    opens a pre-filled blameless postmortem draft in the knowledge base."""
    from failwell.governance.post_review import parse_outcomes, review_outcomes

    check_fmt(fmt)
    outcomes, postmortem = review_outcomes(_gov(db), slug, parse_outcomes(outcome), by=by)
    if fmt == "json":
        print_json({"outcomes": [o.to_dict() for o in outcomes], "postmortem": postmortem})
        return
    for o in outcomes:
        mark = "[green]met[/]" if o.met else "[red]missed[/]"
        console.print(f"{o.metric}: {o.measured:g} vs target {o.target:g} — {mark}",
                      highlight=False)
    if postmortem:
        console.print(f"Opened postmortem draft [bold]{postmortem}[/]: "
                      f"failwell incident edit {postmortem}", highlight=False)


pir = boundary(pir)
