"""The starter library: classic AI failures as curated blameless postmortems (Markdown files).

Written in our own words from the public sources each one cites; every file round-trips
through :mod:`failwell.kb.postmortem` unchanged and passes the blameless-language check.
A fresh knowledge base holds them without any import step.
"""

from __future__ import annotations

from importlib import resources

from failwell.kb.postmortem import Postmortem, from_markdown


def load_library_files() -> list[tuple[Postmortem, str]]:
    """Each starter postmortem with the Markdown it was written in."""
    folder = resources.files("failwell").joinpath("kb", "library")
    out = []
    for f in sorted(folder.iterdir(), key=lambda f: f.name):
        if f.name.endswith(".md"):
            text = f.read_text("utf-8")
            out.append((from_markdown(text, source=f.name), text))
    return out


def library_names() -> set[str]:
    """The library's file names without ``.md``: its ids, by convention, read without
    parsing a file (so opening a seeded knowledge base costs no YAML)."""
    folder = resources.files("failwell").joinpath("kb", "library")
    return {f.name[:-3] for f in folder.iterdir() if f.name.endswith(".md")}


def load_library() -> list[Postmortem]:
    return [pm for pm, _ in load_library_files()]
