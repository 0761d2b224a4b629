"""Incident filters from query parameters, shared by the incident and lesson pages and
their JSON twins: empty choices ("any" in a form) are dropped, unknown values refused."""

from collections.abc import Sequence
from functools import cache
from typing import Annotated

from fastapi import Query

from failwell.errors import InputError, did_you_mean
from failwell.findings import Severity
from failwell.kb.postmortem import STATUSES
from failwell.kb.store import Filters
from failwell.taxonomy import load_catalog

Many = Annotated[list[str], Query()]


@cache
def choices() -> dict[str, list[str]]:
    """What each filter accepts, for the forms' drop-downs (built once: the catalog is
    fixed for the process)."""
    catalog = load_catalog()
    return {"severity": [str(s) for s in Severity], "status": list(STATUSES),
            "pattern": sorted(catalog.patterns), "failure_mode": sorted(catalog.failure_modes)}


def filters_from(*, severity: Sequence[str] = (), status: Sequence[str] = (),
                 pattern: Sequence[str] = (), failure_mode: Sequence[str] = ()) -> Filters:
    given = {"severity": [v for v in severity if v], "status": [v for v in status if v],
             "pattern": [v for v in pattern if v],
             "failure_mode": [v for v in failure_mode if v]}
    known = choices()
    for name, values in given.items():
        for value in values:
            if value not in known[name]:
                raise InputError(f"unknown {name.replace('_', ' ')} {value!r}."
                                 f"{did_you_mean(value, known[name])}")
    return Filters(severities=given["severity"], statuses=given["status"],
                   patterns=given["pattern"], failure_modes=given["failure_mode"])
