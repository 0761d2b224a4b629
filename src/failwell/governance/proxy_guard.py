"""The proxy-objective guard at the gates: a project declares its proxy metric and
guardrails once; every ``compare --project`` (and every ``scan --kb --project`` that has an
earlier scan to compare with) checks them and records the result as gate evidence."""

from __future__ import annotations

from typing import Any

from failwell.errors import InputError
from failwell.findings import ScanResult
from failwell.governance.store import Governance


def check(gov: Governance, slug: str, old: Any, new: Any, *, by: str | None = None
          ) -> ScanResult:
    """Compare ``old`` and ``new`` (scan results, their JSON files, or metric dicts) on the
    project's declared proxy and guardrails; the outcome becomes ``proxy-guard`` evidence."""
    from failwell.scanner.compare import compare

    project, _ = gov.project(slug)
    guard = project.proxy_guard
    if guard is None:
        raise InputError(f"project {slug!r} declares no proxy_guard (proxy metric and "
                         "guardrails); add one to the project file or pass --proxy.")
    result = compare(old, new, proxy=guard.proxy, guardrails=guard.guardrails,
                     tolerance=guard.tolerance)
    rows = result.config.get("comparison", [])
    moves = ", ".join(f"{r['metric']} {r['old']:.4g} -> {r['new']:.4g}" for r in rows)
    passed = not result.findings
    detail = (f"proxy {guard.proxy} vs guardrails {', '.join(guard.guardrails)}: {moves}"
              + ("" if passed else f" — {result.findings[0].title}"))
    gov.record_evidence(slug, "proxy-guard", {"passed": passed, "detail": detail},
                        by=by, system=True)
    return result


def check_after_scan(gov: Governance, slug: str, by: str | None = None) -> str | None:
    """After a new scan of the project: compare it with the previous one, when the project
    has a guard and both scans carry its metrics. Returns a line to show, or None."""
    project, _ = gov.project(slug)
    if project.proxy_guard is None:
        return None
    rows = [r["result"] for r in gov.kb.project_scans(slug, newest_first=True, limit=2)]
    if len(rows) < 2:
        return "proxy guard: no earlier scan of this project to compare with yet"
    try:
        result = check(gov, slug, rows[1], rows[0], by=by)
    except InputError as exc:
        return f"proxy guard not checked: {exc}"
    return ("proxy guard: passed" if not result.findings
            else f"proxy guard: {result.findings[0].title}")
