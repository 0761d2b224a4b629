"""Terminal summary with Rich: findings by severity, then detectors skipped or failed."""

from __future__ import annotations

import io

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from failwell.findings import ScanResult

COLOURS = {"critical": "bold white on red", "high": "bold red", "medium": "yellow",
           "low": "cyan"}


def build_renderable(result: ScanResult) -> Group:
    parts = []
    findings = result.sorted_findings()
    table = Table(title=f"{len(findings)} finding(s)", expand=True, show_lines=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("finding", ratio=1)
    for f in findings:
        metrics = ", ".join(f"{m.name} = {m.value:.3g}" for m in f.metrics[:3])
        table.add_row(f"[{COLOURS[f.severity]}]{f.severity}[/]",
                      f"[bold]{escape(f.title)}[/] [dim]({f.failure_mode})[/]\n"
                      f"{escape(f.summary)}\n"
                      f"[dim]{metrics}[/]")
    parts.append(table if findings else Panel("No findings.", style="green"))
    notes = [o for o in result.outcomes if o.status != "ran"]
    if notes:
        t = Table(title="detectors not run in full", expand=True)
        t.add_column("detector", no_wrap=True)
        t.add_column("status", no_wrap=True)
        t.add_column("why", ratio=3)
        for o in notes:
            style = "red" if o.status == "error" else "dim"
            t.add_row(o.detector, f"[{style}]{o.status}[/]", escape(o.message.splitlines()[0]))
        parts.append(t)
    total = result.timings.get("total")
    if total is not None:
        parts.append(f"[dim]scanned {result.config.get('n_rows', '?')} rows in {total:.2f}s; "
                     f"{int(result.timings.get('model_calls', 0))} model batch call(s)"
                     f"{engine_line(result.config.get('engine'))}[/]")
    return Group(*parts)


def render_terminal(result: ScanResult, width: int = 110) -> str:
    buffer = io.StringIO()
    Console(width=width, file=buffer, color_system=None).print(build_renderable(result))
    return buffer.getvalue()


def engine_line(engine: dict | None) -> str:
    """'; engine dask: 16 partitions on 2 workers, 3 passes' (nothing for in-memory scans)."""
    if not engine:
        return ""
    return (f"; engine {engine['name']}: {engine['partitions']} partitions on "
            f"{engine['workers']} worker(s), {engine['passes']} pass(es)")
