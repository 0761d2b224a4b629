"""The failwell command line: thin over the Python API, one module per command group.

``common`` holds the error boundary, shared options and what happens to a result; nothing
outside this package imports any of it. :func:`main` imports and builds only the command
named on the command line (the whole tree only for the top-level help), so a command starts
without paying for the others' modules (issue 19); ``app`` is the whole tree, for tests.
"""

from __future__ import annotations

import importlib
import sys

import typer

HELP = "failwell: catch known AI failure modes, learn from the ones that happen anyway."
# (name, module under failwell.cli, attribute, a group of subcommands?), in help order
COMMANDS = [
    ("scan", "scan", "scan", False),
    ("compare", "scan", "compare", False),
    ("detectors", "scan", "detectors", False),
    ("catalog", "scan", "catalog", False),
    ("demo", "scan", "demo", False),
    ("mitigate", "mitigate", "mitigate", False),
    ("deep", "deep", "deep_app", True),
    ("llm", "llm", "llm_app", True),
    ("loop", "loops", "loop_app", True),
    ("user", "web", "user_app", True),
    ("token", "web", "token_app", True),
    ("serve", "web", "serve", False),
    ("incident", "kb", "incident_app", True),
    ("kb", "kb", "kb_app", True),
    ("lessons", "kb", "lessons_app", True),
    ("project", "gov", "project_app", True),
    ("gate", "gov", "gate_app", True),
    ("card", "gov", "card_app", True),
    ("pir", "gov", "pir", False),
]


def _root(debug: bool = typer.Option(
        False, "--debug", help="Show the traceback of an internal error (exit 70).")) -> None:
    """failwell: catch known AI failure modes, learn from the ones that happen anyway."""
    if debug:
        import os

        os.environ["FAILWELL_DEBUG"] = "1"


def build(only: str | None = None) -> typer.Typer:
    """The command tree: every command, or only the one named ``only``."""
    tree = typer.Typer(help=HELP, no_args_is_help=True, pretty_exceptions_enable=False,
                       rich_markup_mode="rich")
    tree.callback()(_root)
    for name, module, attribute, group in COMMANDS:
        if only not in (None, name):
            continue
        target = getattr(importlib.import_module(f"failwell.cli.{module}"), attribute)
        if group:
            tree.add_typer(target, name=name)
        elif name == "scan":
            tree.command(help=importlib.import_module("failwell.cli.scan").SCAN_HELP)(target)
        else:
            tree.command(name)(target)
    return tree


def named_command(argv: list[str]) -> str | None:
    """The command the arguments name (the first word that is not an option), when it is
    one of ours; None for the top level (no command, ``--help``, a typo)."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in {c[0] for c in COMMANDS} else None


def __getattr__(name: str):
    if name == "app":  # the whole tree, built on first use
        globals()["app"] = build()
        return globals()["app"]
    raise AttributeError(name)


def main() -> None:  # pragma: no cover - console entry
    build(named_command(sys.argv[1:]))()
