"""Renderers for scan results: terminal (Rich), HTML, Markdown and JSON.

``render(result, fmt)`` returns a string; ``write(result, fmt, path)`` writes a file. HTML
and Markdown come from packaged Jinja templates with autoescape on.
"""

from __future__ import annotations

from pathlib import Path

from failwell.errors import InputError
from failwell.findings import ScanResult

FORMATS = ("terminal", "json", "html", "md")

__all__ = ["FORMATS", "render", "write"]


def render(result: ScanResult, fmt: str, *, title: str = "failwell scan report") -> str:
    if fmt == "json":
        return result.to_json()
    if fmt in ("html", "md"):
        from failwell.report.documents import render_document

        return render_document(result, fmt, title=title)
    if fmt == "terminal":
        from failwell.report.terminal import render_terminal

        return render_terminal(result)
    raise InputError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")


def write(result: ScanResult, fmt: str, path: str | Path, **kwargs) -> Path:
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result, fmt, **kwargs) + "\n", encoding="utf-8")
    return path
