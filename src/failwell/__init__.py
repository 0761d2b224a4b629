"""failwell: learn from AI failures.

Catch the failure modes the field keeps repeating (scan a model and its data), record the
failures that happen anyway as blameless postmortems, and feed the lessons back. One catalog
of failure modes (:func:`load_catalog`) is shared by everything.

    >>> import failwell
    >>> ds = failwell.make_dataset("data.csv", target="label", protected=["gender"])
    >>> result = failwell.scan(ds, model=my_estimator)
    >>> result.to_json("scan.json")

Names are re-exported lazily so that ``import failwell`` (and ``failwell --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "FailwellError": "failwell.errors",
    "InputError": "failwell.errors",
    "ModelError": "failwell.errors",
    "UntrustedModelError": "failwell.errors",
    "Finding": "failwell.findings",
    "Metric": "failwell.findings",
    "ScanResult": "failwell.findings",
    "Severity": "failwell.findings",
    "ScanConfig": "failwell.scanner",
    "compare": "failwell.scanner",
    "load_model": "failwell.scanner",
    "make_dataset": "failwell.scanner",
    "scan": "failwell.scanner",
    "load_catalog": "failwell.taxonomy",
}
_SUBMODULES = {"mitigate", "report", "scanner"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"failwell.{name}")
    raise AttributeError(f"module 'failwell' has no attribute {name!r}")
