"""``failwell demo --digits``: two CNNs on scikit-learn's digits, one trained where a corner
marker goes with the label and one trained without it, each saved with ``torch.export``
and scanned exactly as ``failwell deep scan`` would scan the files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from failwell.errors import require
from failwell.findings import ScanResult

LATENCY_BUDGET_MS = 5.0


def export(model, example: np.ndarray, path: Path) -> Path:
    """Save ``model`` as a ``torch.export`` archive with a dynamic batch dimension."""
    torch = require("torch", extra="torch", purpose="The digits demo")
    batch = torch.export.Dim("batch")
    program = torch.export.export(model.eval(), (torch.as_tensor(example[:2]),),
                                  dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    return path


def run_digits_demo(output_dir: Path, console: Console) -> dict[str, ScanResult]:
    from failwell.deep.deepscan import DeepScanConfig, deep_scan
    from failwell.deep.digits import digits_with_marker, split, train
    from failwell.deep.loading import load_network
    from failwell.progress import counter, progress_bar
    from failwell.report import write

    output_dir.mkdir(parents=True, exist_ok=True)
    marked = split(*digits_with_marker())
    clean = split(*digits_with_marker(marker=False))
    test_x, test_y = marked[2], marked[3]
    data = output_dir / "digits-test.npz"
    np.savez(data, x=test_x, y=test_y)
    results = {}
    for name, (train_x, train_y, _, _) in (("marker", marked), ("clean", clean)):
        with counter(f"training the {name} CNN on {len(train_x)} digits") as epochs:
            model = train(train_x, train_y, progress=epochs)
        path = export(model, train_x, output_dir / f"digits-{name}.pt2")
        config = DeepScanConfig(layer="3", latency_budget_ms=LATENCY_BUDGET_MS)
        with progress_bar() as progress:
            result = deep_scan(load_network(path), test_x, test_y, config=config,
                               spec=str(path), progress=progress)
        report = write(result, "html", output_dir / f"digits-{name}.html",
                       title=f"failwell deep scan: digits CNN trained {name_of(name)}")
        results[name] = result
        console.print(f"[bold]{name} model[/] ({path.name}): "
                      f"{len(result.findings)} finding(s), {result.timings['total']:.1f} s, "
                      f"report {report}")
    console.print(summary_table(results))
    console.print(
        "Both models are scanned on the same marked test images. The marker model is "
        "flagged for the corner marker it reads; the clean one is not, though both share "
        "the fragility any small CNN has to PGD and to translation.\n"
        f"Re-run one scan: failwell deep scan {output_dir / 'digits-marker.pt2'} {data} "
        f"--layer 3 --latency-budget-ms {LATENCY_BUDGET_MS:g}")
    return results


def name_of(name: str) -> str:
    return "with a label-correlated corner marker" if name == "marker" else "without marker"


def summary_table(results: dict[str, ScanResult]) -> Table:
    table = Table(title="digits demo: what each check found")
    table.add_column("check")
    for name in results:
        table.add_column(f"{name} model")
    checks = [o.detector for o in next(iter(results.values())).outcomes]
    for check in checks:
        cells = []
        for result in results.values():
            outcome = next(o for o in result.outcomes if o.detector == check)
            found = [f for f in result.findings if f.detector == _detector_of(check)]
            if outcome.status != "ran":
                cells.append(f"[yellow]{outcome.status}[/]: {outcome.message.splitlines()[0]}")
            else:
                cells.append("; ".join(f"[red]{f.severity}[/] {f.title}" for f in found)
                             or "[green]nothing flagged[/]")
        table.add_row(check, *cells)
    return table


def _detector_of(check: str) -> str:
    """The ``detector`` name the check's findings carry."""
    return {"clever-hans": "clever-hans", "adversarial": "adversarial",
            "corruptions": "corruptions", "drift": "domain-shift",
            "latency": "latency"}[check]
