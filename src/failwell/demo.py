"""The COMPAS reproduction behind ``failwell demo``.

1. ProPublica's filter on the two-year file, ``score_text`` Medium/High as the positive
   decision: the scan must report the false-positive and false-negative rates per race that
   ProPublica published (African-American 42.34 % / 28.48 %, Caucasian 22.01 % / 49.64 %).
2. A gradient-boosted model trained on COMPAS features *without* race: what the
   counterfactual and proxy detectors honestly find about it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from failwell.errors import InputError
from failwell.findings import ScanResult
from failwell.scanner import ScanConfig, make_dataset, scan

COMPAS_FILE = "compas-scores-two-years.csv"
PROPUBLICA_FILTER = (
    "days_b_screening_arrest <= 30 and days_b_screening_arrest >= -30 "
    "and is_recid != -1 and c_charge_degree != 'O' and score_text.notna() "
    "and score_text != 'N/A'"
)
# ../shared/data/compas/README.md: rows, false positive rate, false negative rate
PROPUBLICA_REFERENCE = {
    "African-American": (3175, 0.4234, 0.2848),
    "Caucasian": (2103, 0.2201, 0.4964),
}
COMPAS_FEATURES = ["sex", "age", "priors_count", "juv_fel_count", "juv_misd_count",
                   "juv_other_count", "c_charge_degree"]


def data_roots() -> list[Path]:
    """Where shared data may live: $FAILWELL_DATA_DIR, then ``shared/data`` or ``data``
    beside the working directory or the package (the repository's ../shared/data)."""
    roots = [Path(os.environ["FAILWELL_DATA_DIR"])] if "FAILWELL_DATA_DIR" in os.environ else []
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *Path.cwd().parents[:2], *here.parents[:4]):
        roots += [base / "shared" / "data", base / "data"]
    return roots


def find_compas(explicit: Path | None = None) -> Path:
    """The COMPAS file: explicit path, $FAILWELL_DATA_DIR, or a ``shared/data`` nearby."""
    if explicit is not None:
        if not explicit.is_file():
            raise InputError(f"No COMPAS file at {explicit}.")
        return explicit
    for root in data_roots():
        candidate = root / "compas" / COMPAS_FILE
        if candidate.is_file():
            return candidate
    raise InputError(
        f"Cannot find {COMPAS_FILE}: pass --data PATH or set FAILWELL_DATA_DIR to the folder "
        "that holds compas/ (e.g. ../shared/data)."
    )


def load_compas(path: Path) -> pd.DataFrame:
    """COMPAS rows after ProPublica's filter (6,172 rows for the two-year file)."""
    from failwell.scanner import read_table

    frame = read_table(path)  # an empty, binary or non-CSV file is one InputError
    try:
        return frame.query(PROPUBLICA_FILTER).reset_index(drop=True)
    except Exception as exc:  # a CSV without COMPAS's columns
        raise InputError(f"{path} is not ProPublica's COMPAS file ({exc}).") from None


def scan_compas_scores(frame: pd.DataFrame) -> ScanResult:
    """Scan the COMPAS tool itself: a black box, judged by its recorded decisions."""
    ds = make_dataset(
        frame, target="two_year_recid", prediction="score_text",
        prediction_positive=("Medium", "High"), protected=["race", "sex"],
        features=[*COMPAS_FEATURES, "race", "age_cat"],
        reference_groups={"race": "Caucasian"},  # ProPublica's comparison
    )
    return scan(ds)


def race_error_rates(result: ScanResult) -> dict[str, dict]:
    """Per-race rows of the group-fairness evidence (the numbers ProPublica published)."""
    for f in result.findings:
        if f.failure_mode == "group-unfairness" and f.evidence.get("attributes") == ["race"]:
            return {g["group"]: g for g in f.evidence["groups"]}
    return {}


def train_model_without_race(frame: pd.DataFrame, seed: int = 0):
    """A gradient-boosted pipeline on COMPAS features, race deliberately left out."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    train, test = train_test_split(frame, test_size=0.4, random_state=seed,
                                   stratify=frame["two_year_recid"])
    encode = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["sex", "c_charge_degree"])],
        remainder="passthrough",
    )
    model = make_pipeline(encode, HistGradientBoostingClassifier(max_iter=100, max_depth=3,
                                                                 random_state=seed))
    model.fit(train[COMPAS_FEATURES], train["two_year_recid"])
    return model, test.reset_index(drop=True)


def scan_model(model, test: pd.DataFrame) -> ScanResult:
    ds = make_dataset(test, target="two_year_recid", protected=["race", "sex"],
                      features=[*COMPAS_FEATURES, "race"], reference_groups={"race": "Caucasian"})
    return scan(ds, model, config=ScanConfig(seed=0))


def run_demo(data: Path | None, output_dir: Path, console: Console) -> None:
    from failwell.report import write
    from failwell.report.terminal import build_renderable

    path = find_compas(data)
    frame = load_compas(path)
    console.rule("[bold]1. ProPublica's COMPAS analysis, reproduced")
    console.print(f"{path}: {len(frame)} rows after ProPublica's filter")
    scores = scan_compas_scores(frame)
    rates = race_error_rates(scores)
    table = Table(title="COMPAS Medium/High vs two-year recidivism, by race")
    for col in ("race", "rows", "FPR", "ProPublica FPR", "FNR", "ProPublica FNR", "match"):
        table.add_column(col)
    for race, (n, fpr, fnr) in PROPUBLICA_REFERENCE.items():
        row = rates.get(race, {})
        ok = (row.get("n") == n and abs(row.get("false_positive_rate", -1) - fpr) < 0.001
              and abs(row.get("false_negative_rate", -1) - fnr) < 0.001)
        table.add_row(race, str(row.get("n")), f"{100 * row.get('false_positive_rate', 0):.2f}%",
                      f"{100 * fpr:.2f}%", f"{100 * row.get('false_negative_rate', 0):.2f}%",
                      f"{100 * fnr:.2f}%", "[green]yes[/]" if ok else "[red]NO[/]")
    console.print(table)
    console.print(build_renderable(scores))

    console.rule("[bold]2. A model trained without race")
    model, test = train_model_without_race(frame)
    console.print(f"HistGradientBoosting on {', '.join(COMPAS_FEATURES)}; "
                  f"scanned on {len(test)} held-out rows (race kept for auditing only)")
    result = scan_model(model, test)
    console.print(build_renderable(result))
    _explain_counterfactual(result, console)

    output_dir.mkdir(parents=True, exist_ok=True)
    for name, res in (("compas-scores", scores), ("compas-model", result)):
        for fmt, suffix in (("html", "html"), ("json", "json"), ("md", "md")):
            write(res, fmt, output_dir / f"{name}.{suffix}", title=f"failwell: {name}")
    console.print(f"\nReports: {output_dir}/compas-scores.html, {output_dir}/compas-model.html "
                  "(and .json, .md)")


def _explain_counterfactual(result: ScanResult, console: Console) -> None:
    m = result.metrics
    proxies = sorted(((k.split(".")[-2], v) for k, v in m.items()
                      if k.startswith("proxy.race.")), key=lambda kv: -kv[1])
    console.print(
        "[bold]Counterfactual:[/] race is not a model input, so swapping it changes nothing "
        f"directly; swapping sex flips {100 * m.get('counterfactual.sex.flip_rate', 0):.1f}% "
        "of decisions.\n[bold]Proxies for race[/] (Cramér's V): "
        + ", ".join(f"{c} {v:.2f}" for c, v in proxies[:4])
        + f"; decisions flipped through proxies: "
        f"{100 * m.get('counterfactual.race.flip_rate', 0):.1f}%."
    )
