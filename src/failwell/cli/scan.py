"""Top-level commands: scan, compare, detectors, catalog, demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from failwell.cli.common import (
    FailOn,
    KbProject,
    RecordDatabaseUrl,
    RecordInKb,
    ReportFmt,
    ReportOutput,
    Upload,
    boundary,
    check_fmt,
    check_project,
    emit,
    exit_for,
    finish,
    governance,
    narrow_table,
    parse_pairs,
    parse_params,
)
from failwell.errors import InputError
from failwell.progress import progress_bar

SCAN_HELP = """Scan a dataset (and optionally a model) for known failure modes.

DATA is a CSV or Parquet file. Each column plays one role:

* [bold]--target[/] the true outcome (binary).
* [bold]--prediction[/] / [bold]--score[/] what a black-box system decided, when no model
  can be called (COMPAS is one); or [bold]--model[/] a model file to call.
* [bold]--protected[/] attributes fairness is judged on (repeat for several).
* [bold]--metadata[/] columns that must not drive decisions (site, scanner, marker).
* [bold]--text[/] free-text columns (gendered words are swapped, typos added).
* every other column is a model feature.

Example (ProPublica's COMPAS analysis):

  failwell scan compas.csv --target two_year_recid --prediction score_text
  --prediction-positive Medium --prediction-positive High --protected race --protected sex

Exit codes: 0 no finding at --fail-on severity or above, 1 at least one, 2 usage or input
error (or a detector that could not run its model), 70 an internal error (--debug shows it).
"""


@boundary
def scan(
    data: Annotated[str, typer.Argument(
        help="CSV or Parquet file; or a glob, folder or URL (s3://...) of Parquet "
             "partitions, streamed (see --engine).")],
    target: Annotated[str, typer.Option(help="True outcome column (binary).")],
    prediction: Annotated[str | None, typer.Option(help="Column of decisions.")] = None,
    prediction_positive: Annotated[list[str], typer.Option(
        help="Value(s) of --prediction that mean a positive decision.")] = [],  # noqa: B006
    score: Annotated[str | None, typer.Option(help="Column of scores.")] = None,
    threshold: Annotated[float | None, typer.Option(
        help="Scores >= threshold are positive (default 0.5 for 0..1 scores).")] = None,
    model: Annotated[str | None, typer.Option(
        help="Model: .skops, .onnx, a pickle with --trust-model, or module:function.")] = None,
    trust_model: Annotated[bool, typer.Option(
        help="Allow loading pickles / untrusted skops types (runs code in the file).")] = False,
    protected: Annotated[list[str], typer.Option(help="Protected attribute.")] = [],  # noqa: B006
    reference_group: Annotated[list[str], typer.Option(
        help="ATTR=VALUE: compare every group of ATTR with this one (e.g. race=Caucasian); "
             "default: the lowest and highest groups.")] = [],  # noqa: B006
    metadata: Annotated[list[str], typer.Option(
        help="Column that must not drive decisions.")] = [],  # noqa: B006
    text: Annotated[list[str], typer.Option(help="Free-text column.")] = [],  # noqa: B006
    feature: Annotated[list[str], typer.Option(
        help="Limit features to these columns (default: all others).")] = [],  # noqa: B006
    positive_label: Annotated[str | None, typer.Option(
        help="Target value that is the positive outcome.")] = None,
    where: Annotated[str | None, typer.Option(
        help="Row filter (pandas query), e.g. \"is_recid != -1\".")] = None,
    reference: Annotated[Path | None, typer.Option(
        help="Training data, to check train/test overlap.")] = None,
    detector: Annotated[list[str], typer.Option(
        help="Run only these detectors (see 'failwell detectors').")] = [],  # noqa: B006
    param: Annotated[list[str], typer.Option(
        help="Detector parameter DETECTOR.PARAM=VALUE.")] = [],  # noqa: B006
    fmt: ReportFmt = "terminal",
    output: ReportOutput = None,
    fail_on: FailOn = "high",
    seed: Annotated[int, typer.Option(help="Random seed for sampling and noise.")] = 0,
    max_model_rows: Annotated[int, typer.Option(
        min=1, help="Rows sampled for counterfactuals, perturbations and permutations "
             "(5,000: a flip rate within +-1.4 points).")] = 5_000,
    kb: RecordInKb = False,
    db: RecordDatabaseUrl = None,
    project: KbProject = None,
    upload: Upload = None,
    engine: Annotated[str, typer.Option(
        help="memory: one frame (a single file's default); local: stream Parquet partitions "
             "in this process, in bounded memory (the default for a glob, folder or URL, "
             "and for a Parquet file of over 2 GB of column data); dask: spread them over "
             "Dask workers.")] = "auto",
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (implies --engine dask; "
             "default: a LocalCluster started and closed by the scan).")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Worker processes of the LocalCluster (default: one per core).")] = None,
    storage_option: Annotated[list[str], typer.Option(
        help="fsspec option KEY=VALUE for s3:// and other URLs (repeatable), e.g. "
             "endpoint_url=http://127.0.0.1:9000 or anon=true.")] = [],  # noqa: B006
    sample_rows: Annotated[int, typer.Option(
        min=1, help="Partitioned scans: rows sampled across partitions for the detectors "
             "that re-predict variants.")] = 100_000,
) -> None:
    from failwell.scanner import ScanConfig, load_model, make_dataset, read_table
    from failwell.scanner import scan as run_scan

    check_project(project, kb, db)
    engine = _engine(engine, data, scheduler, workers)
    name = data.rstrip("/").rsplit("/", 1)[-1] or data
    roles = dict(target=target, prediction=prediction,
                 prediction_positive=tuple(prediction_positive), score=score,
                 threshold=threshold, protected=protected, metadata=metadata, text=text,
                 features=feature or None, positive_label=positive_label,
                 reference_groups=parse_pairs(reference_group, "--reference-group",
                                              "race=Caucasian"))
    with progress_bar() as progress:
        progress(f"reading {name}", 0, 0)
        if engine == "memory":
            dataset = make_dataset(Path(data), where=where, **roles)
        else:
            from failwell.scale import open_dataset

            dataset = open_dataset(data, where=where, storage_options=_storage_options(
                storage_option), **roles)
        progress("loading the model", 0, 0)
        adapter = load_model(model, trust=trust_model) if model else None
        config = ScanConfig(seed=seed, max_model_rows=max_model_rows,
                            params=parse_params(param), sample_rows=sample_rows,
                            reference=read_table(reference) if reference else None)
        result = run_scan(dataset, adapter, detectors=detector or None, config=config,
                          progress=progress, engine=engine, scheduler=scheduler,
                          workers=workers)
    finish(result, fmt, output, f"failwell scan of {name}", fail_on, kb=kb, db=db,
           project=project, upload=upload)


ENGINES = ("auto", "memory", "local", "dask")


def _engine(engine: str, data: str, scheduler: str | None, workers: int | None) -> str:
    """auto: memory for one file, local streaming for partitions and for one Parquet file
    too large for a frame; --scheduler means dask."""
    if engine not in ENGINES:
        raise InputError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}.")
    if scheduler or (workers and engine == "auto"):
        if engine in ("memory", "local"):
            raise InputError(f"--scheduler and --workers need --engine dask, not {engine}.")
        return "dask"
    if engine == "auto":
        from failwell.scale.source import should_stream

        return "local" if should_stream(data) else "memory"
    return engine


def _storage_options(pairs: list[str]) -> dict:
    """KEY=VALUE strings to fsspec options; VALUE is read as JSON when it parses (true, 3)."""
    import json

    options = {}
    for key, value in parse_pairs(pairs, "--storage-option", "anon=true").items():
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


@boundary
def compare(
    old: Annotated[Path, typer.Argument(help="Scan result JSON (or JSON of metrics) before.")],
    new: Annotated[Path, typer.Argument(help="Scan result JSON (or JSON of metrics) after.")],
    proxy: Annotated[str | None, typer.Option(
        help="The optimized metric, NAME[:up|down].")] = None,
    guardrail: Annotated[list[str], typer.Option(
        help="Metric that must not degrade, NAME[:up|down] (repeatable).")] = [],  # noqa: B006
    tolerance: Annotated[str | None, typer.Option(
        help="Change that counts as real: a share of the old value such as 2% (relative; the "
             "default) or a "
             "plain number in the metric's own units (absolute).")] = None,
    fmt: ReportFmt = "terminal",
    output: ReportOutput = None,
    fail_on: FailOn = "medium",
    project: Annotated[str | None, typer.Option(
        help="Use this project's declared proxy and guardrails; record the result as its "
             "proxy-guard gate evidence.")] = None,
    db: Annotated[str | None, typer.Option("--db", envvar="FAILWELL_DB")] = None,
) -> None:
    """Flag a proxy objective: the proxy metric improved while a guardrail got worse."""
    from failwell.scanner.compare import DEFAULT_TOLERANCE
    from failwell.scanner.compare import compare as run_compare

    if project:
        from failwell.governance.proxy_guard import check

        if proxy or guardrail or tolerance is not None:
            raise InputError("--project uses the project's own proxy guard (proxy, guardrails "
                             "and tolerance); drop --proxy, --guardrail and --tolerance, or "
                             "drop --project.")
        result = check(governance(db), project, old, new)
    elif proxy is None:
        raise InputError("give --proxy (and --guardrail), or --project to use its guard.")
    else:
        result = run_compare(old, new, proxy=proxy, guardrails=guardrail,
                             tolerance=tolerance or DEFAULT_TOLERANCE)
    if fmt == "terminal" and output is None:
        from rich.table import Table

        table = Table(title="proxy vs guardrails",
                      caption=f"a change counts when it exceeds {result.config['tolerance_rule']}"
                              " (--tolerance)")
        for col in ("metric", "role", "old", "new", "improvement", "relative", "counts"):
            table.add_column(col)
        for r in result.config["comparison"]:
            relative = "n/a" if r["relative"] is None else f"{r['relative']:+.1%}"
            table.add_row(r["metric"], r["role"], f"{r['old']:.4g}", f"{r['new']:.4g}",
                          f"{r['improvement']:+.4g}", relative, "yes" if r["counts"] else "no")
        Console().print(table)
    emit(result, fmt, output, title="failwell compare")
    exit_for(result, fail_on)


@boundary
def detectors(
    fmt: Annotated[str, typer.Option("--format", help="terminal or json.")] = "terminal",
) -> None:
    """List the detectors (built-in and plugins), their failure modes and parameters."""
    import json

    check_fmt(fmt)
    from failwell.scanner.registry import available_detectors, describe

    rows = [describe(cls) for cls in available_detectors().values()]
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2, default=list) + "\n")
        return

    Console().print(narrow_table(
        "name", "failure modes", "description", "parameters", whole=("name",),
        title="detectors", show_lines=True,
        rows=[[r["name"], "\n".join(r["failure_modes"]), r["description"],
               "\n".join(f"{k}={v}" for k, v in r["params"].items())] for r in rows]))


@boundary
def catalog(
    fmt: Annotated[str, typer.Option("--format", help="terminal or json.")] = "terminal",
) -> None:
    """List the catalog of failure modes and systemic patterns."""
    import dataclasses
    import json

    check_fmt(fmt)
    from failwell.taxonomy import load_catalog

    cat = load_catalog()
    if fmt == "json":
        data = {"failure_modes": [dataclasses.asdict(m) for m in cat.failure_modes.values()],
                "patterns": [dataclasses.asdict(p) for p in cat.patterns.values()]}
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return

    Console().print(narrow_table(
        "id", "name", "systemic patterns", title="failure modes", show_lines=True,
        rows=[[m.id, m.name, ", ".join(m.patterns)] for m in cat.failure_modes.values()]))


@boundary
def demo(
    data: Annotated[Path | None, typer.Option(
        help="compas-scores-two-years.csv, or with --llm the reversal_curse/experiment1 "
             "folder (default: found under ../shared/data).")] = None,
    output_dir: Annotated[Path, typer.Option(help="Where the reports go.")] = Path(
        "failwell-demo"),
    digits: Annotated[bool, typer.Option(
        "--digits", help="The deep-learning demo instead: two CNNs on scikit-learn's digits, "
                         "one reading a corner marker (needs failwell\\[torch]).")] = False,
    llm: Annotated[bool, typer.Option(
        "--llm", help="The LLM demo instead: train a small GPT-2 on the reversal-curse facts "
                      "(about 1 min) and probe it (needs failwell\\[llm,torch]).")] = False,
) -> None:
    """Reproduce ProPublica's COMPAS error rates, then scan a model trained without race.

    With --digits: train a CNN where a corner marker goes with the label and one without,
    and scan both for Clever Hans, adversarial fragility, corruptions and latency."""
    if llm and digits:
        raise InputError("choose one demo: --digits or --llm (run them one after the other).")
    if llm:
        from failwell.llm.demo import run_llm_demo

        run_llm_demo(data, output_dir, Console())
        return
    if digits:
        from failwell.deep.demo import run_digits_demo

        run_digits_demo(output_dir, Console())
        return
    from failwell.demo import run_demo

    run_demo(data, output_dir, Console())


