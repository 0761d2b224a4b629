"""HTML and Markdown reports from packaged Jinja templates."""

from __future__ import annotations

from functools import cache

import jinja2

from failwell.findings import ScanResult
from failwell.taxonomy import load_catalog


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("failwell", "report/templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    return env


def _pct(x) -> str:
    if not isinstance(x, int | float) or x != x:  # None or NaN
        return "–"
    return f"{100 * x:.1f}%"


def _num(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def render_document(result: ScanResult, fmt: str, *, title: str) -> str:
    template = _env().get_template("report.html.j2" if fmt == "html" else "report.md.j2")
    plots = {}
    if fmt == "html":
        from failwell.report.plots import plots_for

        plots = plots_for(result)
    catalog = load_catalog()
    return template.render(
        title=title,
        result=result,
        findings=result.sorted_findings(),
        modes=catalog.failure_modes,
        plots=plots,
    )
