"""scan(): plan the detectors, run each in isolation, collect one ScanResult."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np

from failwell.checks import fingerprint as data_fingerprint
from failwell.checks import run_checks, versions
from failwell.errors import FailwellError, InputError, close_matches
from failwell.findings import Finding, ScanResult
from failwell.progress import Progress
from failwell.scanner import registry
from failwell.scanner.context import ScanConfig, ScanContext, SkipDetector
from failwell.scanner.models import ModelAdapter, SklearnModel, as_model
from failwell.scanner.subject import Dataset
from failwell.stats import auc


def scan(
    dataset: Dataset,
    model: Any = None,
    *,
    detectors: list[str] | None = None,
    config: ScanConfig | None = None,
    progress: Progress | None = None,
    raise_exceptions: bool = False,
    engine: str = "memory",
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> ScanResult:
    """Run detectors over ``dataset`` (and ``model``); a crashing detector becomes an error entry.

    ``raise_exceptions=True`` re-raises instead, for debugging a detector. A partitioned
    dataset (:func:`failwell.scale.open_dataset`) is scanned by ``engine="local"`` (one
    process, streaming) or ``engine="dask"`` (``client=``, ``scheduler=`` or a LocalCluster
    of ``workers`` processes); see docs/scale.md.
    """
    if not isinstance(dataset, Dataset) or engine != "memory" or client is not None:
        from failwell.scale.scan import PartitionedDataset, scan_partitioned

        if not isinstance(dataset, PartitionedDataset):
            raise InputError(f"engine={engine!r} scans partitioned Parquet: open it with "
                             "failwell.scale.open_dataset(URL, target=...).")
        return scan_partitioned(dataset, model, detectors=detectors, config=config,
                                progress=progress, engine="local" if engine == "memory"
                                else engine, client=client, scheduler=scheduler,
                                workers=workers)
    started = time.perf_counter()
    config = config or ScanConfig()
    adapter = _bind(as_model(model), dataset)
    classes = registry.resolve(detectors)
    instances = [(cls, registry.instantiate(cls, config.params.get(cls.name, {})))
                 for cls in classes]
    ctx = ScanContext(dataset, adapter, config)
    result = ScanResult(findings=[])

    run_checks([(cls.name, partial(detector_findings, ctx, detector))
                for cls, detector in instances],
               result, progress=progress, raise_exceptions=raise_exceptions)
    _summary_metrics(ctx)
    finalize(result, ctx, classes, started, fingerprint(dataset))
    return result


def detector_findings(ctx: ScanContext, detector: Any) -> list[Finding]:
    """Run one detector, with ``ctx.current_detector`` naming it (for model-call counts)."""
    ctx.current_detector = detector.name
    try:
        findings = detector.run(ctx)
    finally:
        ctx.current_detector = ""
    return stamped(ctx, detector, findings)


def stamped(ctx: ScanContext, detector: Any, findings: list[Finding]) -> list[Finding]:
    """Findings that say how to reproduce them: the detector's parameters and the seed."""
    for f in findings:
        f.reproduce.setdefault("detector_params", _params_of(detector))
        f.reproduce.setdefault("seed", ctx.config.seed)
    return findings


def finalize(result: ScanResult, ctx: ScanContext, classes: list[type], started: float,
             data_fingerprint: str) -> None:
    """What every scan records besides its findings: metrics, config, timings, versions."""
    dataset, adapter, config = ctx.dataset, ctx.model, ctx.config
    result.metrics = ctx.metrics
    result.diagnostics = ctx.diagnostics
    result.data_fingerprint = data_fingerprint
    result.model_fingerprint = adapter.fingerprint if adapter else ""
    result.config = {
        "roles": dataset.roles(),
        "n_rows": ctx.total_rows,
        "model": adapter.name if adapter else None,
        "detectors": [cls.name for cls in classes],
        "seed": config.seed,
        "max_model_rows": config.max_model_rows,
        "params": config.params,
        **result.config,
    }
    result.timings = {o.detector: round(o.seconds, 4) for o in result.outcomes}
    result.timings["total"] = round(time.perf_counter() - started, 4)
    result.timings["model_calls"] = ctx.model_calls
    result.timings["rows_predicted"] = ctx.rows_predicted
    result.timings["model_s"] = round(ctx.model_seconds, 4)
    result.versions = versions()
    result.created_at = datetime.now(UTC).isoformat(timespec="seconds")


def _params_of(detector) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(detector) if dataclasses.is_dataclass(detector) else {}


def _bind(adapter: ModelAdapter | None, dataset: Dataset) -> ModelAdapter | None:
    """Tell the model which label is positive; refuse a model whose inputs are missing."""
    if adapter is not None:
        needed = adapter.input_columns or []
        missing = [c for c in needed if c not in dataset.frame.columns]
        if missing:
            hints = {c: close_matches(c, dataset.frame.columns, n=1) for c in missing}
            said = ", ".join(f"{c!r}" + (f" (did you mean {h[0]!r}?)" if h else "")
                             for c, h in hints.items())
            raise InputError(f"The model {adapter.name} needs column(s) missing from the "
                             f"data: {said}.")
        adapter.positive_label = dataset.positive_label
        if isinstance(adapter, SklearnModel):
            adapter.bind(dataset.positive_label)
    return adapter


def _summary_metrics(ctx: ScanContext) -> None:
    """Overall performance, so ``failwell compare`` can weigh a proxy against guardrails."""
    try:
        base = ctx.base()
    except (SkipDetector, FailwellError):
        return
    summary_metrics(ctx, confusion(ctx.dataset.y, base.decisions), base.scores)


def confusion(y: np.ndarray, d: np.ndarray) -> np.ndarray:
    """[tn, fp, fn, tp] counts (they add up across partitions)."""
    return np.bincount(2 * y.astype(np.int64) + d.astype(np.int64), minlength=4)


def summary_metrics(ctx: ScanContext, counts: np.ndarray, scores: np.ndarray | None) -> None:
    """``scores``: the scanned rows' scores, or a partitioned scan's sample of them (AUC)."""
    tn, fp, fn, tp = (int(c) for c in counts)
    n = tn + fp + fn + tp
    ctx.log_metric("n_rows", n)
    ctx.log_metric("accuracy", (tp + tn) / n)
    ctx.log_metric("selection_rate", (tp + fp) / n)
    ctx.log_metric("base_rate", (tp + fn) / n)
    ctx.log_metric("precision", tp / (tp + fp) if tp + fp else 0.0)
    ctx.log_metric("recall", tp / (tp + fn) if tp + fn else 0.0)
    y = ctx.dataset.y
    if scores is not None and 0 < y.mean() < 1:
        ctx.log_metric("auc", auc(y, scores))


def fingerprint(dataset: Dataset) -> str:
    """A content hash of the table (values and column names, not the index)."""
    return data_fingerprint("\x1f".join(map(str, dataset.frame.columns)).encode(),
                            dataset.row_hashes.tobytes())
