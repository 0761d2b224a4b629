"""The one loop every scan runs, and what a check says when it cannot run.

Tabular detectors (``failwell.scanner``) and deep-model checks (``failwell.deep``) are both
run by :func:`run_checks`, skip with :class:`SkipDetector` and record the same versions.
Kept free of numpy, pandas and scipy so a deep scan can start (and fail cleanly) without them.
"""

from __future__ import annotations

import hashlib
import importlib
import platform
import time
import traceback
import warnings
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Any

from failwell.errors import FailwellError
from failwell.findings import DetectorOutcome, Finding, ScanResult
from failwell.progress import Progress


class SkipDetector(Exception):
    """Raised by a detector that cannot run on this subject; the message says why."""


class Inconclusive(SkipDetector):
    """Raised by a check that ran but cannot reach a verdict (a machine too noisy to time a
    tail); recorded as "inconclusive", neither a finding nor a pass."""


Check = Callable[[], "list[Finding] | tuple[list[Finding], str]"]


def run_checks(checks: list[tuple[str, Check]], result: ScanResult, *,
               progress: Progress | None = None, raise_exceptions: bool = False,
               propagate: tuple[type[Exception], ...] = ()) -> None:
    """The one loop every scan runs (tabular detectors, deep checks): each check in
    isolation, timed, its findings added to ``result`` and its outcome recorded as ran,
    skipped (:class:`SkipDetector`, with the reason), inconclusive (:class:`Inconclusive`)
    or error (the scan goes on).

    A check returns its findings, or ``(findings, note)``. ``propagate`` names exceptions
    that stop the whole scan instead (a deep scan's input errors).
    """
    for i, (name, check) in enumerate(checks):
        if progress:
            progress(name, i, len(checks))
        t0 = time.perf_counter()
        try:
            returned = check()
        except SkipDetector as skip:
            status = "inconclusive" if isinstance(skip, Inconclusive) else "skipped"
            result.outcomes.append(DetectorOutcome(name, status, time.perf_counter() - t0,
                                                   str(skip)))
            continue
        except propagate:
            raise
        except Exception as exc:
            if raise_exceptions:
                raise
            message = str(exc) if isinstance(exc, FailwellError) else (
                f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
            result.outcomes.append(DetectorOutcome(name, "error", time.perf_counter() - t0,
                                                   message))
            continue
        findings, note = returned if isinstance(returned, tuple) else (returned, "")
        result.findings.extend(findings)
        result.outcomes.append(DetectorOutcome(name, "ran", time.perf_counter() - t0, note,
                                               len(findings)))
    if progress:
        progress("done", len(checks), len(checks))



def versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """The versions a scan result records, so a finding can be reproduced."""
    out = {"python": platform.python_version()}
    for pkg in ("failwell", "numpy", "pandas", "scikit-learn", "fairlearn", *extra):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def load_plugins(builtins: dict[str, str], group: str, *, kind: str,
                 validate: Any = None) -> dict[str, Any]:
    """Built-ins first (``name -> "module:attr"``), then the entry points of ``group``. A
    broken built-in is our bug and raises; a broken plugin is skipped with a warning, so one
    bad third-party package cannot stop every scan."""
    check = validate or (lambda name, obj: obj)
    found: dict[str, Any] = {name: check(name, _load(target))
                             for name, target in builtins.items()}
    for ep in entry_points(group=group):
        if ep.name in found:
            continue
        try:
            found[ep.name] = check(ep.name, ep.load())
        except Exception as exc:
            warnings.warn(f"failwell: {kind} plugin {ep.name!r} skipped: {exc}", stacklevel=3)
    return found


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def fingerprint(*chunks: bytes) -> str:
    """The content hash a scan result records for its data (tables and arrays alike)."""
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return "sha256:" + h.hexdigest()
