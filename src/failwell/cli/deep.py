"""``failwell deep scan``: the neural-network checks from the command line (thin over
:func:`failwell.deep.deepscan.deep_scan`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from failwell.cli.common import (
    FailOn,
    KbProject,
    RecordDatabaseUrl,
    RecordInKb,
    ReportFmt,
    ReportOutput,
    Upload,
    boundary,
    check_project,
    finish,
)
from failwell.errors import InputError
from failwell.progress import progress_bar

deep_app = typer.Typer(help="Scan neural networks: Clever Hans, adversarial attacks, "
                            "corruptions, drift and latency.", no_args_is_help=True)

DEEP_HELP = """Scan a neural network on labelled inputs.

MODEL is a .pt2 file (torch.export), an .onnx file, a pickled .pt module with
--trust-model, or module:function returning an nn.Module. DATA is an .npz file with the
inputs under [bold]x[/] (images (N, C, H, W) in [0, 1], tables (N, F), or token ids with
--integer-inputs) and class indices under [bold]y[/].

Example (the digits demo's files):

  failwell deep scan failwell-demo/digits-marker.pt2 failwell-demo/digits-test.npz
  --layer 3 --latency-budget-ms 5

Exit codes: 0 no finding at --fail-on severity or above, 1 at least one, 2 usage or input
error (or a check that failed).
"""


@deep_app.command("scan", help=DEEP_HELP)
@boundary
def deep_scan_command(
    model: Annotated[str, typer.Argument(help=".pt2, .onnx, .pt (--trust-model) or "
                                              "module:function.")],
    data: Annotated[Path, typer.Argument(help=".npz with x (inputs) and y (labels).")],
    production: Annotated[Path | None, typer.Option(
        help=".npz of production inputs (x), compared with DATA for drift.")] = None,
    check: Annotated[list[str], typer.Option(
        help="Run only these checks: clever-hans, adversarial, corruptions, drift, "
             "latency.")] = [],  # noqa: B006
    eps: Annotated[float, typer.Option(help="Attack radius in input units.")] = 0.1,
    attack: Annotated[str, typer.Option(
        help="auto, fgsm, pgd-linf, pgd-l2 or random-search (black box).")] = "auto",
    layer: Annotated[str | None, typer.Option(
        help="Layer name for Grad-CAM (as in model.named_modules()).")] = None,
    roi: Annotated[Path | None, typer.Option(
        help=".npy (H, W) boolean mask of the region the model should look at "
             "(default: all but the image border).")] = None,
    latency_budget_ms: Annotated[float | None, typer.Option(
        help="p95 latency budget for one request, in milliseconds.")] = None,
    batch_size: Annotated[list[int], typer.Option(
        min=1, help="Batch sizes to time (first one is judged against the budget).")
    ] = [1, 32],  # noqa: B006
    quantize: Annotated[bool, typer.Option(
        help="Try dynamic int8 quantization next to the model.")] = True,
    cold_start: Annotated[bool, typer.Option(
        help="Time load + first call in a fresh process.")] = True,
    integer_inputs: Annotated[bool, typer.Option(
        help="The inputs are token ids (only drift and latency apply).")] = False,
    device: Annotated[str | None, typer.Option(
        help="cpu or cuda (default: cuda when present).")] = None,
    trust_model: Annotated[bool, typer.Option(
        help="Allow loading a pickled .pt module (runs code in the file).")] = False,
    fmt: ReportFmt = "terminal",
    output: ReportOutput = None,
    fail_on: FailOn = "high",
    seed: Annotated[int, typer.Option(help="Random seed for sampling.")] = 0,
    kb: RecordInKb = False,
    db: RecordDatabaseUrl = None,
    project: KbProject = None,
    upload: Upload = None,
) -> None:
    from failwell.deep.deepscan import DeepScanConfig, deep_scan
    from failwell.deep.loading import load_arrays, load_mask, load_network

    if latency_budget_ms is not None and latency_budget_ms <= 0:
        raise InputError(f"--latency-budget-ms must be above 0, not {latency_budget_ms:g}.")
    check_project(project, kb, db)
    x, y = load_arrays(data)
    prod = load_arrays(production, need_labels=False)[0] if production else None
    config = DeepScanConfig(
        eps=eps, attack=attack, layer=layer, roi=load_mask(roi) if roi else None,
        latency_budget_ms=latency_budget_ms, batch_sizes=tuple(batch_size),
        quantize=quantize, cold_start=cold_start, seed=seed)
    clf = load_network(model, trust=trust_model, integer_inputs=integer_inputs, device=device)
    with progress_bar() as progress:
        result = deep_scan(clf, x, y, production=prod, checks=check or None, config=config,
                           spec=model, trust=trust_model, progress=progress)
    finish(result, fmt, output, f"failwell deep scan of {Path(model).name}", fail_on, kb=kb,
           db=db, project=project, upload=upload)


