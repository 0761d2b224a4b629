"""`failwell mitigate`: apply mitigations, re-scan, and show the price."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from failwell.cli.common import (
    RecordDatabaseUrl,
    RecordInKb,
    boundary,
    check_project,
    err,
    governance,
    narrow_table,
    parse_pairs,
    print_json,
    writable_path,
)


@boundary
def mitigate(
    data: Annotated[Path | None, typer.Argument(
        help="CSV or Parquet file (not with --deep).")] = None,
    target: Annotated[str | None, typer.Option(help="True outcome column (binary).")] = None,
    protected: Annotated[list[str], typer.Option(
        help="Protected attribute (repeatable); the first is what fairlearn's constraints "
             "are about unless --fairness-attribute says otherwise.")] = [],  # noqa: B006
    method: Annotated[list[str], typer.Option(
        help="reweighing, resampling, smote, exponentiated-gradient, threshold-optimizer, "
             "remove-proxy, counterfactual-augmentation (repeatable; default all).")
    ] = [],  # noqa: B006
    model_recipe: Annotated[str, typer.Option(
        help="gbm, logistic, or module:function returning an unfitted scikit-learn "
             "estimator.")] = "gbm",
    feature: Annotated[list[str], typer.Option(
        help="The model's inputs (default: every column but the target and the protected "
             "attributes; list a protected attribute here to make it an input).")
    ] = [],  # noqa: B006
    reference_group: Annotated[list[str], typer.Option(
        help="ATTR=VALUE: gaps are measured against this group.")] = [],  # noqa: B006
    positive_label: Annotated[str | None, typer.Option()] = None,
    where: Annotated[str | None, typer.Option(help="Row filter (pandas query).")] = None,
    test_size: Annotated[float, typer.Option(min=0.05, max=0.9)] = 0.4,
    fairness_attribute: Annotated[str | None, typer.Option(
        help="The protected attribute fairlearn's methods equalize across.")] = None,
    protected_at_prediction: Annotated[bool, typer.Option(
        help="Whether the protected attribute may be used when deciding (threshold-optimizer "
             "needs it; many jurisdictions forbid it).")] = True,
    detector: Annotated[list[str], typer.Option(
        help="Scan with only these detectors (default: all).")] = [],  # noqa: B006
    deep: Annotated[bool, typer.Option(
        "--deep", help="Adversarial training and domain randomization on the digits demo's "
                       "CNN, scanned with the deep checks.")] = False,
    seed: Annotated[int, typer.Option(help="Split, models and scans.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="terminal, json or md.")] = "terminal",
    output: Annotated[Path | None, typer.Option(
        help="Write the comparison here (.json or .md).")] = None,
    choose: Annotated[str | None, typer.Option(
        help="With --kb --project: the method you deploy (or baseline); recorded with its "
             "price as the pre-deployment gate's mitigation evidence.")] = None,
    kb: RecordInKb = False,
    db: RecordDatabaseUrl = None,
    project: Annotated[str | None, typer.Option(
        help="Record the comparison for this project (needs --kb).")] = None,
) -> None:
    """Train the baseline and one model per mitigation on the same split, scan each on the
    same held-out rows, and show what each bought and what it cost."""
    from failwell.errors import InputError

    if fmt not in ("terminal", "json", "md"):
        raise InputError(f"--format {fmt!r}: choose terminal, json or md.")
    if output is not None:
        writable_path(output)
        if output.suffix.lower() not in (".json", ".md"):
            raise InputError(f"--output {output}: use a .json or .md file.")
    if choose and not (kb and project):
        raise InputError("--choose records a decision: add --kb --project PROJECT.")
    check_project(project, kb, db)
    if deep:
        return _deep(data, target, method, seed, fmt, output)
    if data is None or target is None:
        raise InputError("give DATA and --target (or --deep for the digits demo).")
    from failwell.mitigate.comparison import compare
    from failwell.progress import progress_bar

    with progress_bar(label="mitigating") as progress:
        comparison = compare(
            data, target=target, protected=protected, methods=method or None,
            features=feature or None, model_recipe=model_recipe, positive_label=positive_label,
            where=where, reference_groups=parse_pairs(reference_group, "--reference-group",
                                                      "race=Caucasian"),
            test_size=test_size, seed=seed, detectors=detector or None,
            protected_at_prediction=protected_at_prediction,
            fairness_attribute=fairness_attribute, progress=progress)
    if choose:
        comparison.run(choose)  # an unknown or skipped method fails before anything is stored
    _emit(comparison, fmt, output)
    if kb and project:
        from failwell.workflows import record_mitigation

        recorded = record_mitigation(governance(db), comparison, project=project,
                                     chosen=choose)
        err.print(f"Recorded as scan {recorded.scan_id} and the mitigation evidence of "
                  f"project {project}" + (f" (chose {choose})." if choose else
                                          "; no method chosen yet (--choose)."))


def _emit(comparison, fmt: str, output: Path | None) -> None:
    import json

    if output is not None:
        text = (json.dumps(comparison.to_dict(), indent=2) if output.suffix.lower() == ".json"
                else to_markdown(comparison))
        output.write_text(text + "\n", encoding="utf-8")
        err.print(f"comparison written to {output}")
    if fmt == "json" and output is None:
        print_json(comparison.to_dict())
    elif fmt == "md" and output is None:
        print(to_markdown(comparison))
    elif fmt == "terminal":
        Console().print(terminal_table(comparison))
        for run in comparison.runs[1:]:
            if run.status == "ran":
                err.print(f"[bold]{run.method}[/]: {comparison.price(run.method)}",
                          highlight=False)


def _num(value, spec: str = ".3f") -> str:
    missing = value is None or (isinstance(value, float) and value != value)  # None or NaN
    return "n/a" if missing else format(value, spec)


def terminal_table(comparison):
    attrs = comparison.protected
    heads = ["method", "accuracy", "AUC", *(f"{a} FPR/FNR gap" for a in attrs),
             *(f"{a} flips" for a in attrs)]
    rows = []
    for run in comparison.runs:
        f = run.figures
        if run.status != "ran":
            rows.append([run.method, "skipped", "", *([""] * (2 * len(attrs)))])
            continue
        rows.append([run.method, _num(f.get("accuracy")), _num(f.get("auc")),
                     *(f"{_num(f.get(f'{a}.fpr_gap'), '.2f')}/{_num(f.get(f'{a}.fnr_gap'), '.2f')}"
                       for a in attrs),
                     *(_num(f.get(f"{a}.flip_rate"), ".1%") for a in attrs)])
    skipped = "; ".join(f"{r.method}: {r.reason}" for r in comparison.runs
                        if r.status != "ran")
    return narrow_table(*heads, rows=rows, whole=("method",),
                        title=f"mitigations on {comparison.test_rows:,} held-out rows "
                              f"({comparison.recipe}, seed {comparison.seed})",
                        caption=("skipped: " + skipped) if skipped else None)


def to_markdown(comparison) -> str:
    """The before/after table: gaps with their intervals, accuracy, calibration, and the
    findings that disappear or appear."""
    attrs = comparison.protected
    heads = ["method", "accuracy", "AUC", "ECE",
             *(f"{a} {k}" for a in attrs for k in ("FPR gap", "FNR gap", "flip rate")),
             "findings gone", "new findings", "note"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for row in comparison.table().to_dict(orient="records"):
        if row["status"] != "ran":
            lines.append(f"| {row['method']} | skipped | | | "
                         + "| " * (3 * len(attrs)) + f"| | {row['note']} |")
            continue
        cells = [row["method"], _num(row.get("accuracy")), _num(row.get("auc")),
                 _num(row.get("ece"))]
        for a in attrs:
            for key in ("fpr_gap", "fnr_gap"):
                value, ci = row.get(f"{a}.{key}"), row.get(f"{a}.{key}_ci")
                cells.append(_num(value) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
            cells.append(_num(row.get(f"{a}.flip_rate"), ".1%"))
        cells += [row.get("findings_gone") or "", row.get("findings_new") or "",
                  row.get("note") or ""]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def _deep(data, target, method, seed, fmt, output) -> None:
    from failwell.errors import InputError

    if data is not None or target is not None:
        raise InputError("--deep runs on the digits demo: drop DATA and --target.")
    from failwell.mitigate.deep import DEEP_METHODS, compare_deep

    comparison = compare_deep(methods=tuple(method) or DEEP_METHODS, seed=seed)
    if output is not None:
        import json

        output.write_text((json.dumps(comparison.to_dict(), indent=2)
                           if output.suffix.lower() == ".json" else comparison.to_markdown())
                          + "\n", encoding="utf-8")
        err.print(f"comparison written to {output}")
    if fmt == "json":
        print_json(comparison.to_dict())
    else:
        print(comparison.to_markdown())
    raise typer.Exit(0)
