"""The failwell command line: thin over the Python API.

User errors (:class:`~failwell.errors.FailwellError`) become one message and exit 2 here,
at the boundary; exit 1 means a finding reached ``--fail-on``; 0 means nothing did.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from failwell.errors import FailwellError, InputError

app = typer.Typer(
    help="failwell: catch known AI failure modes, learn from the ones that happen anyway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
err = Console(stderr=True)
SEVERITIES = ("low", "medium", "high", "critical")
EXIT_FINDINGS, EXIT_USAGE = 1, 2

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
error (or a detector that could not run its model).
"""


def boundary(fn):
    """Turn failwell's own errors into one red line and exit 2; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FailwellError as exc:
            err.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def _parse_params(items: list[str]) -> dict[str, dict[str, Any]]:
    from failwell.errors import InputError

    params: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        detector, dot, name = key.partition(".")
        if not sep or not dot:
            raise InputError(f"--param {item!r}: use DETECTOR.PARAM=VALUE, "
                             "e.g. group-fairness.max_rate_gap=0.05")
        params.setdefault(detector, {})[name] = value
    return params


def _parse_pairs(items: list[str], option: str, example: str) -> dict[str, str]:
    from failwell.errors import InputError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InputError(f"{option} {item!r}: use ATTR=VALUE, e.g. {example}")
        out[key] = value
    return out


def _check_severity(value: str) -> str:
    if value not in SEVERITIES:
        raise typer.BadParameter(f"choose one of {', '.join(SEVERITIES)}")
    return value


def _check_format(value: str) -> str:
    from failwell.report import FORMATS

    if value not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}")
    return value


# Report and knowledge-base options shared by every command that scans or probes.
ReportFmt = Annotated[str, typer.Option("--format", callback=_check_format,
                                        help="terminal, json, html or md.")]
ReportOutput = Annotated[Path | None, typer.Option(help="Write the report here.")]
FailOn = Annotated[str, typer.Option(callback=_check_severity,
                                     help="Exit 1 at this severity or above.")]
RecordInKb = Annotated[bool, typer.Option(
    "--kb", help="Record the findings in the knowledge base and show related lessons.")]
KbDb = Annotated[str | None, typer.Option(
    "--db", envvar="FAILWELL_DB", help="Knowledge base for --kb.")]
KbProject = Annotated[str | None, typer.Option(
    help="With --kb: record the scan as evidence for this governance project.")]
Upload = Annotated[str | None, typer.Option(
    help="Send the result to a failwell web app, e.g. https://failwell.example.org "
         "(token in FAILWELL_TOKEN, with the 'scans' scope).")]


@app.command(help=SCAN_HELP)
@boundary
def scan(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet file.")],
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
        help="Rows sampled for counterfactuals, perturbations and permutations "
             "(5,000: a flip rate within +-1.4 points).")] = 5_000,
    kb: RecordInKb = False,
    db: KbDb = None,
    project: KbProject = None,
    upload: Upload = None,
) -> None:
    from failwell.scanner import ScanConfig, load_model, make_dataset, read_table
    from failwell.scanner import scan as run_scan

    _check_project(project, kb, db)
    dataset = make_dataset(
        data, target=target, prediction=prediction,
        prediction_positive=tuple(prediction_positive), score=score, threshold=threshold,
        protected=protected, metadata=metadata, text=text, features=feature or None,
        positive_label=positive_label, where=where,
        reference_groups=_parse_pairs(reference_group, "--reference-group", "race=Caucasian"),
    )
    adapter = load_model(model, trust=trust_model) if model else None
    config = ScanConfig(seed=seed, max_model_rows=max_model_rows, params=_parse_params(param),
                        reference=read_table(reference) if reference else None)
    result = _scan_with_progress(run_scan, dataset, adapter, detector or None, config)
    finish(result, fmt, output, f"failwell scan of {data.name}", fail_on, kb=kb, db=db,
           project=project, upload=upload)


def finish(result, fmt: str, output: Path | None, title: str, fail_on: str, *,
           kb: bool = False, db: str | None = None, project: str | None = None,
           upload: str | None = None) -> None:
    """What every scan and probe does with its result: write the report, record it in the
    knowledge base (--kb), send it to the web app (--upload), and exit by severity."""
    _emit(result, fmt, output, title=title)
    if kb:
        _record_in_kb(result, db, project)
    if upload:
        upload_scan(result, upload, project=project)
    _exit_for(result, fail_on)


def upload_scan(result, url: str, *, project: str | None = None,
                token: str | None = None) -> str:
    """POST the result to ``URL/api/scans``; prints and returns the scan's page."""
    import os

    from failwell.errors import FailwellError, require

    httpx = require("httpx", extra="web", purpose="Uploading scans")
    token = token or os.environ.get("FAILWELL_TOKEN")
    if not token:
        raise InputError("--upload needs an API token in FAILWELL_TOKEN (failwell token "
                         "issue USER --name ci --scope scans).")
    base = url.rstrip("/")
    try:
        response = httpx.post(f"{base}/api/scans", json=result.to_dict(),
                              params={"project": project} if project else None,
                              headers={"Authorization": f"Bearer {token}"}, timeout=60)
    except httpx.HTTPError as exc:
        raise FailwellError(f"could not reach {base}: {exc}") from None
    if response.status_code != 201:
        detail = response.json().get("detail") if response.headers.get(
            "content-type", "").startswith("application/json") else response.text[:200]
        raise FailwellError(f"{base} refused the upload (HTTP {response.status_code}): "
                            f"{detail}")
    page = base + response.json()["url"]
    err.print(f"uploaded: {page}")
    return page


def _check_project(project: str | None, kb: bool, db: str | None) -> None:
    """--project needs --kb, and an unknown project fails before the scan runs."""
    if project and not kb:
        raise InputError("--project records the scan in the knowledge base: add --kb.")
    if project:
        _governance(db).project(project)


def _governance(db: str | None):
    from failwell.governance.store import Governance
    from failwell.kb.store import KnowledgeBase

    return Governance(KnowledgeBase.open(db))


def _record_in_kb(result, db: str | None, project: str | None = None) -> None:
    """Store the scan and print the lessons of incidents with the same failure modes (to
    stderr, so a JSON report on stdout stays clean)."""
    from failwell.kb.lessons import lessons_for_scan

    gov = _governance(db)
    store = gov.kb
    scan_id = store.record_scan(result, project=project)
    hits = lessons_for_scan(store, result)
    err.print(f"Recorded as scan {scan_id} in the knowledge base"
              + (f" for project {project}." if project else "."))
    if project:
        from failwell.governance.guard import check_after_scan

        line = check_after_scan(gov, project)
        if line:
            err.print(line, highlight=False)
    for h in hits:
        err.print(f"[bold]Lessons from {escape(h.title)}[/] [dim]({h.incident}; "
                  f"{', '.join(h.failure_modes)})[/]", highlight=False)
        for lesson in h.lessons:
            err.print(f"  • {escape(lesson['text'])}", highlight=False)


def _scan_with_progress(run_scan, dataset, adapter, detectors, config):
    with progress_bar() as progress:
        return run_scan(dataset, adapter, detectors=detectors, config=config,
                        progress=progress)


@contextlib.contextmanager
def progress_bar():
    """A transient bar on stderr; yields the ``progress(name, done, total)`` callback the
    scanners take."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]scanning[/] {task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, description=name, completed=done, total=total)

        yield progress


def _emit(result, fmt: str, output: Path | None, *, title: str) -> None:
    from failwell.report import render, write

    if output is not None:
        write(result, fmt if fmt != "terminal" else _fmt_from_suffix(output), output,
              title=title)
        err.print(f"report written to {output}")
    if fmt == "terminal":
        _print_terminal(result)
    elif output is None:
        sys.stdout.write(render(result, fmt, title=title) + "\n")


def _print_terminal(result) -> None:
    from failwell.report.terminal import build_renderable

    Console().print(build_renderable(result))


def _fmt_from_suffix(path: Path) -> str:
    return {".html": "html", ".htm": "html", ".md": "md"}.get(path.suffix.lower(), "json")


def _exit_for(result, fail_on: str) -> None:
    errors = result.errors
    for o in errors:
        first = escape(o.message.splitlines()[0])
        err.print(f"[bold red]Detector {o.detector!r} failed:[/] {first}", soft_wrap=True,
                  highlight=False)
    if errors:
        err.print(f"[red]Scan incomplete: {len(errors)} detector(s) failed.[/]")
        raise typer.Exit(EXIT_USAGE)
    worst = result.worst_severity()
    if worst is not None and worst >= fail_on:
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
@boundary
def compare(
    old: Annotated[Path, typer.Argument(help="Scan result JSON (or JSON of metrics) before.")],
    new: Annotated[Path, typer.Argument(help="Scan result JSON (or JSON of metrics) after.")],
    proxy: Annotated[str | None, typer.Option(
        help="The optimized metric, NAME[:up|down].")] = None,
    guardrail: Annotated[list[str], typer.Option(
        help="Metric that must not degrade, NAME[:up|down] (repeatable).")] = [],  # noqa: B006
    tolerance: Annotated[float, typer.Option(help="Change that counts as real.")] = 0.01,
    fmt: ReportFmt = "terminal",
    output: ReportOutput = None,
    fail_on: FailOn = "medium",
    project: Annotated[str | None, typer.Option(
        help="Use this project's declared proxy and guardrails; record the result as its "
             "proxy-guard gate evidence.")] = None,
    db: Annotated[str | None, typer.Option("--db", envvar="FAILWELL_DB")] = None,
) -> None:
    """Flag a proxy objective: the proxy metric improved while a guardrail got worse."""
    from failwell.scanner.compare import compare as run_compare

    if project:
        from failwell.governance.guard import check

        result = check(_governance(db), project, old, new)
    elif proxy is None:
        raise InputError("give --proxy (and --guardrail), or --project to use its guard.")
    else:
        result = run_compare(old, new, proxy=proxy, guardrails=guardrail, tolerance=tolerance)
    if fmt == "terminal" and output is None:
        from rich.table import Table

        table = Table(title="proxy vs guardrails")
        for col in ("metric", "role", "old", "new", "improvement"):
            table.add_column(col)
        for r in result.config["comparison"]:
            table.add_row(r["metric"], r["role"], f"{r['old']:.4g}", f"{r['new']:.4g}",
                          f"{r['improvement']:+.4g}")
        Console().print(table)
    _emit(result, fmt, output, title="failwell compare")
    _exit_for(result, fail_on)


@app.command()
@boundary
def detectors(
    fmt: Annotated[str, typer.Option("--format", help="terminal or json.")] = "terminal",
) -> None:
    """List the detectors (built-in and plugins), their failure modes and parameters."""
    import json

    from failwell.scanner.registry import available_detectors, describe

    rows = [describe(cls) for cls in available_detectors().values()]
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2, default=list) + "\n")
        return
    from rich.table import Table

    table = Table(title="detectors", show_lines=True)
    for col in ("name", "failure modes", "description", "parameters"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], "\n".join(r["failure_modes"]), r["description"],
                      "\n".join(f"{k}={v}" for k, v in r["params"].items()))
    Console().print(table)


@app.command()
@boundary
def catalog(
    fmt: Annotated[str, typer.Option("--format", help="terminal or json.")] = "terminal",
) -> None:
    """List the catalog of failure modes and systemic patterns."""
    import dataclasses
    import json

    from failwell.taxonomy import load_catalog

    cat = load_catalog()
    if fmt == "json":
        data = {"failure_modes": [dataclasses.asdict(m) for m in cat.failure_modes.values()],
                "patterns": [dataclasses.asdict(p) for p in cat.patterns.values()]}
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    from rich.table import Table

    table = Table(title="failure modes", show_lines=True)
    for col in ("id", "name", "systemic patterns"):
        table.add_column(col)
    for m in cat.failure_modes.values():
        table.add_row(m.id, m.name, ", ".join(m.patterns))
    Console().print(table)


@app.command()
@boundary
def demo(
    data: Annotated[Path | None, typer.Option(
        help="compas-scores-two-years.csv, or with --llm the reversal_curse/experiment1 "
             "folder (default: found under ../shared/data).")] = None,
    output_dir: Annotated[Path, typer.Option(help="Where the reports go.")] = Path(
        "failwell-demo"),
    digits: Annotated[bool, typer.Option(
        "--digits", help="The deep-learning demo instead: two CNNs on scikit-learn's digits, "
                         "one reading a corner marker (needs failwell[torch]).")] = False,
    llm: Annotated[bool, typer.Option(
        "--llm", help="The LLM demo instead: train a small GPT-2 on the reversal-curse facts "
                      "(about 1 min) and probe it (needs failwell[llm,torch]).")] = False,
) -> None:
    """Reproduce ProPublica's COMPAS error rates, then scan a model trained without race.

    With --digits: train a CNN where a corner marker goes with the label and one without,
    and scan both for Clever Hans, adversarial fragility, corruptions and latency."""
    if llm:
        from failwell.llm.demo import run_llm_demo

        run_llm_demo(data, output_dir, Console())
        return
    if digits:
        from failwell.vision.demo import run_digits_demo

        run_digits_demo(output_dir, Console())
        return
    from failwell.demo import run_demo

    run_demo(data, output_dir, Console())


from failwell.cli_deep import deep_app  # noqa: E402
from failwell.cli_gov import card_app, gate_app, pir, project_app  # noqa: E402
from failwell.cli_kb import incident_app, kb_app, lessons_app  # noqa: E402 (needs boundary)
from failwell.cli_llm import llm_app  # noqa: E402
from failwell.cli_web import serve, token_app, user_app  # noqa: E402

app.add_typer(deep_app, name="deep")
app.add_typer(llm_app, name="llm")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.command("serve")(serve)
app.add_typer(incident_app, name="incident")
app.add_typer(kb_app, name="kb")
app.add_typer(lessons_app, name="lessons")
app.add_typer(project_app, name="project")
app.add_typer(gate_app, name="gate")
app.add_typer(card_app, name="card")
app.command("pir")(pir)


def main() -> None:  # pragma: no cover - console entry
    app()
