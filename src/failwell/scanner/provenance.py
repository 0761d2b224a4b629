"""Does a column look like it records *where or how* a row was captured?

A prior for the shortcut check, not a verdict: provenance columns (a site, a scanner, a
batch, a file path, a capture date) are what Clever Hans models latch onto, and a strong
feature that looks like one deserves a louder warning than one that looks like a
measurement. A name only counts when the values look like codes too: ``time_to_event`` with
continuous values is a measurement, ``device`` with five codes is not.
"""

from __future__ import annotations

import re

import pandas as pd

NAME_TOKENS = frozenset("""
    site sites scanner scanners scan device devices machine machines hospital hospitals clinic
    clinics center centre source sources batch batches lot vendor vendors camera cameras file
    filename files path paths url timestamp timestamps datetime date dates time created
    recorded collected captured acquired acquisition acq id ids uuid guid serial sn lab labs
    station stations instrument instruments equipment operator operators technician tech
    protocol wave waves version ver rev revision form upload uploaded ingest ingested sensor
    sensors probe probes ward wards plant plants line lines kit kits rig rigs tray trays
    facility facilities provider feed export origin manufacturer model make firmware
""".split())
FILE_PATTERN = re.compile(r"[/\\]|\.(?:png|jpe?g|dcm|dicom|tiff?|bmp|csv|json|txt|wav|mp4)$",
                          re.IGNORECASE)
CODE_PATTERN = re.compile(r"^[A-Za-z]{1,6}[-_ #]?\d{1,6}$")  # SN-0042, DEV17, unit_3, S01
MAX_CODES = 64


def name_tokens(name: str) -> list[str]:
    """'ScannerID' -> ['scanner', 'id']; 'acq_site-2' -> ['acq', 'site', '2']."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [t for t in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if t]


def value_shape(col: pd.Series) -> str:
    """'continuous', 'codes' (few distinct values), 'identifier', 'datetime' or 'text'."""
    values = col.dropna()
    if values.empty:
        return "codes"
    if pd.api.types.is_datetime64_any_dtype(col):
        return "datetime"
    n_unique = values.nunique()
    if pd.api.types.is_bool_dtype(col):
        return "codes"
    if pd.api.types.is_numeric_dtype(col):
        integral = bool((values == values.round()).all())
        if integral and n_unique <= MAX_CODES:
            return "codes"
        if integral and n_unique >= 0.9 * len(values):
            return "identifier"
        if values.between(9.4e8, 2.1e9).all() or values.between(9.4e11, 2.1e12).all():
            return "datetime"  # epoch seconds or milliseconds, 2000-2036
        return "continuous"
    sample = values.astype(str).head(200)
    if n_unique <= MAX_CODES:
        return "codes"
    if pd.to_datetime(sample, errors="coerce", format="mixed").notna().mean() > 0.9:
        return "datetime"
    if n_unique >= 0.9 * len(values):
        return "identifier"
    return "text"


def provenance_reasons(col: pd.Series) -> list[str]:
    """Why ``col`` looks like capture provenance; empty when it looks like a measurement."""
    reasons = []
    shape = value_shape(col)
    tokens = [t for t in name_tokens(str(col.name)) if t in NAME_TOKENS]
    if tokens and shape != "continuous":
        reasons.append(f"its name says {', '.join(repr(t) for t in dict.fromkeys(tokens))} "
                       f"and its values are {shape}")
    if shape == "datetime":
        reasons.append("its values are capture dates or times")
    if not pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        sample = col.dropna().astype(str).head(200)
        if len(sample) and sample.str.contains(FILE_PATTERN).mean() > 0.5:
            reasons.append("its values are file names or paths")
        elif len(sample) and sample.str.fullmatch(CODE_PATTERN).mean() > 0.9 \
                and col.nunique() <= MAX_CODES:
            reasons.append("its values are equipment-style codes")
    return reasons
