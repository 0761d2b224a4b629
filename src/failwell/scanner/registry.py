"""The detector registry: built-ins and third-party plugins through one entry-point group.

A detector is a dataclass whose fields are its parameters (with defaults), plus class-level
``name``, ``failure_modes`` and ``description``, and ``run(ctx) -> list[Finding]``. A detector
that cannot run raises :class:`~failwell.scanner.context.SkipDetector` with the reason.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any, ClassVar, Protocol

from failwell.checks import load_plugins
from failwell.errors import InputError, UnknownIdError, did_you_mean
from failwell.findings import Finding
from failwell.taxonomy import load_catalog

ENTRY_POINT_GROUP = "failwell.detectors"

# Built-ins are simply the first plugins (as datasette's DEFAULT_PLUGINS): listed here so a
# checkout that was not pip-installed still finds them; pyproject registers the same names.
BUILTIN_DETECTORS = {
    "data-audit": "failwell.scanner.detectors.data_audit:DataAuditDetector",
    "group-fairness": "failwell.scanner.detectors.fairness:GroupFairnessDetector",
    "proxy-features": "failwell.scanner.detectors.proxies:ProxyFeatureDetector",
    "counterfactual": "failwell.scanner.detectors.counterfactual:CounterfactualDetector",
    "spurious-correlation": "failwell.scanner.detectors.spurious:SpuriousCorrelationDetector",
    "robustness": "failwell.scanner.detectors.robustness:RobustnessDetector",
    "overconfidence": "failwell.scanner.detectors.calibration:OverconfidenceDetector",
    "performance-slices": "failwell.scanner.detectors.slices:PerformanceSlicesDetector",
}


class Detector(Protocol):
    name: ClassVar[str]
    failure_modes: ClassVar[tuple[str, ...]]
    description: ClassVar[str]

    def run(self, ctx: Any) -> list[Finding]: ...


@cache
def available_detectors() -> dict[str, type]:
    """Name -> detector class, built-ins first, then plugins from entry points.

    A broken built-in is our bug and raises; a broken plugin is skipped with a warning, so
    one bad third-party package cannot stop every scan.
    """
    return load_plugins(BUILTIN_DETECTORS, ENTRY_POINT_GROUP, kind="detector",
                        validate=_validated)


def _validated(name: str, cls: type) -> type:
    """Check a detector's contract: its registered name and catalog failure-mode ids."""
    for attr in ("name", "failure_modes", "description", "run"):
        if not hasattr(cls, attr):
            raise InputError(f"Detector {name!r} has no {attr!r}.")
    if cls.name != name:
        raise InputError(f"Detector registered as {name!r} calls itself {cls.name!r}.")
    catalog = load_catalog()
    for mode in cls.failure_modes:
        catalog.failure_mode(mode)  # raises on an id the catalog does not know
    return cls


def resolve(names: list[str] | None) -> list[type]:
    """The detector classes to run: all by default, or the named ones (close matches hinted)."""
    table = available_detectors()
    if not names:
        return list(table.values())
    classes = []
    for name in names:
        if name not in table:
            hint = did_you_mean(name, table)
            raise UnknownIdError(f"Unknown detector {name!r}.{hint} Known: {', '.join(table)}.")
        classes.append(table[name])
    return classes


def instantiate(cls: type, params: dict[str, Any]) -> Any:
    """Build a detector with user params, checking names and coercing CLI strings."""
    fields = {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
    kwargs = {}
    for key, value in params.items():
        if key not in fields:
            raise InputError(
                f"Detector {cls.name!r} has no parameter {key!r}. "
                f"Parameters: {', '.join(fields) or 'none'}."
            )
        default = fields[key].default
        kwargs[key] = _coerce(value, default, f"{cls.name}.{key}")
    return cls(**kwargs)


def _coerce(value: Any, default: Any, where: str) -> Any:
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    try:
        if isinstance(default, bool):
            if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(value)
            return value.lower() in {"true", "1", "yes"}
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            return tuple(v.strip() for v in value.split(",") if v.strip())
    except ValueError:
        raise InputError(
            f"Parameter {where} expects a {type(default).__name__}, got {value!r}."
        ) from None
    return value


def describe(cls: type) -> dict[str, Any]:
    """Name, failure modes, description and parameters with defaults (for docs and the CLI)."""
    params = {}
    if dataclasses.is_dataclass(cls):
        params = {f.name: f.default for f in dataclasses.fields(cls)}
    return {
        "name": cls.name,
        "failure_modes": list(cls.failure_modes),
        "description": cls.description,
        "params": params,
    }
