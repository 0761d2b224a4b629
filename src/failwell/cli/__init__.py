"""The failwell command line: thin over the Python API, one module per command group.

``common`` holds the error boundary, shared options and what happens to a result; nothing
outside this package imports any of it.
"""

from __future__ import annotations

import typer

from failwell.cli import deep, gov, kb, llm, scan, web

app = typer.Typer(
    help="failwell: catch known AI failure modes, learn from the ones that happen anyway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root(debug: bool = typer.Option(
        False, "--debug", help="Show the traceback of an internal error (exit 70).")) -> None:
    """failwell: catch known AI failure modes, learn from the ones that happen anyway."""
    if debug:
        import os

        os.environ["FAILWELL_DEBUG"] = "1"


app.command(help=scan.SCAN_HELP)(scan.scan)
for command in (scan.compare, scan.detectors, scan.catalog, scan.demo):
    app.command()(command)
app.add_typer(deep.deep_app, name="deep")
app.add_typer(llm.llm_app, name="llm")
app.add_typer(web.user_app, name="user")
app.add_typer(web.token_app, name="token")
app.command("serve")(web.serve)
app.add_typer(kb.incident_app, name="incident")
app.add_typer(kb.kb_app, name="kb")
app.add_typer(kb.lessons_app, name="lessons")
app.add_typer(gov.project_app, name="project")
app.add_typer(gov.gate_app, name="gate")
app.add_typer(gov.card_app, name="card")
app.command("pir")(gov.pir)


def main() -> None:  # pragma: no cover - console entry
    app()
