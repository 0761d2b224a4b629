"""The starter library: classic AI failures as curated blameless postmortems (Markdown files).

Written in our own words from the public sources each one cites; every file round-trips
through :mod:`failwell.kb.postmortem` unchanged and passes the blameless-language check.
"""

from __future__ import annotations

from importlib import resources

from failwell.kb.postmortem import Postmortem, from_markdown


def load_library() -> list[Postmortem]:
    folder = resources.files("failwell").joinpath("kb", "library")
    return [from_markdown(f.read_text("utf-8"), source=f.name)
            for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".md")]
