"""Scanning partitioned Parquet without gathering it: passes of mergeable partials.

1. A *roles* pass counts the target's (and the decisions') values, to check the roles as
   :func:`~failwell.scanner.make_dataset` would.
2. Pass 1 reads every column once: the aggregating detectors' partials (group counts,
   calibration bins, missing values, row hashes, value counts per column), the confusion
   counts, and a uniform sample of rows across partitions (:mod:`failwell.scale.sample`).
3. Later passes run only when a detector asks for them (the slices' error sums per bin and
   per pair of columns), reading only the columns they need.
4. The detectors that re-predict variants (counterfactual, robustness, spurious
   correlation, proxies) run on the sample, in this process.

The model is called per batch wherever the partition is read, so a Dask scan calls it on
the workers (see :mod:`failwell.scale.shipping`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from failwell.checks import fingerprint as data_fingerprint
from failwell.checks import run_checks
from failwell.errors import FailwellError, InputError
from failwell.findings import ScanResult
from failwell.progress import Progress
from failwell.scale.engines import LocalEngine, engine_for
from failwell.scale.sample import RowSample, key_cut
from failwell.scale.shipping import ModelShipment, ship
from failwell.scale.source import BATCH_ROWS, ParquetSource, Partition, open_parquet
from failwell.scanner import registry
from failwell.scanner.context import (
    Predictions,
    ScanConfig,
    ScanContext,
    call_model,
    model_columns,
)
from failwell.scanner.detectors.slices import ValueCounts
from failwell.scanner.duplicates import spilling
from failwell.scanner.models import ModelAdapter, as_model
from failwell.scanner.partials import Batch, Failed, is_aggregating
from failwell.scanner.runner import (
    _bind,
    confusion,
    detector_findings,
    finalize,
    stamped,
    summary_metrics,
)
from failwell.scanner.subject import Dataset, make_dataset
from failwell.tables import require_columns


@dataclass
class PartitionedDataset:
    """Roles over partitioned Parquet; build it with :func:`open_dataset`."""

    source: ParquetSource
    roles: dict[str, Any]
    where: str | None = None

    @property
    def n_rows(self) -> int:
        return self.source.n_rows


def open_dataset(url: str, *, storage_options: dict[str, Any] | None = None,
                 where: str | None = None, **roles: Any) -> PartitionedDataset:
    """A glob, folder or URL of Parquet with :func:`~failwell.scanner.make_dataset`'s roles
    (``target=``, ``protected=``...). Only the footers are read here."""
    source = open_parquet(url, storage_options, where=where)
    named = [roles.get("target"), roles.get("prediction"), roles.get("score"),
             *roles.get("protected", ()), *roles.get("metadata", ()), *roles.get("text", ()),
             *(roles.get("features") or ())]
    require_columns(source.columns, [c for c in named if c is not None], source.url)
    return PartitionedDataset(source.filtered_by(where), roles, where)


@dataclass
class PassJob:
    """Everything a worker needs for one pass over one partition (picklable)."""

    source: ParquetSource
    roles: Dataset  # the roles over an empty frame
    columns: list[str]
    model: ModelAdapter | ModelShipment | None
    detectors: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, Any] = field(default_factory=dict)
    first: bool = False
    seed: int = 0
    sample_rows: int = 100_000
    sample_cut: float = 1.0  # rows whose key is above it cannot be in the sample
    batch_rows: int = BATCH_ROWS
    predict_rows: int = 65_536
    where: str | None = None
    value_columns: tuple[str, ...] = ()  # the roles pass: count these columns' values
    score: str | None = None


def run_partition(part: Partition, job: PassJob) -> dict:
    """One pass over one partition: its partials, merged batch by batch."""
    from failwell.scanner.partials import merge

    adapter = job.model.load() if isinstance(job.model, ModelShipment) else job.model
    out: dict[str, Any] = {"rows": 0, "seconds": {}, "detectors": {}}
    for frame, positions in job.source.batches(part, job.columns, job.batch_rows):
        if job.where:
            keep = _where(frame, job.where)
            frame, positions = frame[keep].reset_index(drop=True), positions[keep]
        if frame.empty:
            continue
        got: dict[str, Any] = {"rows": len(frame), "seconds": {}, "detectors": {}}
        if job.value_columns:
            got["values"] = {c: ValueCounts.of(frame[c]) for c in job.value_columns}
            if job.score:
                got["score"] = _extremes(frame[job.score])
            out = merge(out, got)
            continue
        ds = dataclasses.replace(job.roles, frame=frame)
        t0 = time.perf_counter()
        decisions, scores = _predict(ds, adapter, job.predict_rows)
        got["seconds"]["predict"] = time.perf_counter() - t0
        batch = Batch(ds, decisions, scores, positions)
        for name, detector in job.detectors.items():
            t0 = time.perf_counter()
            try:
                got["detectors"][name] = detector.partial(batch, job.stages[name])
            except Exception as exc:  # the scan goes on; the detector reports an error
                got["detectors"][name] = Failed(f"{type(exc).__name__}: {exc}")
            got["seconds"][name] = time.perf_counter() - t0
        if job.first:
            t0 = time.perf_counter()
            if decisions is not None:
                got["confusion"] = confusion(ds.y, decisions)
            got["sample"] = RowSample.of(frame, positions, decisions, scores, job.seed,
                                         job.sample_rows, job.sample_cut)
            digest = hashlib.sha256(ds.row_hashes.tobytes()).hexdigest()
            got["digests"] = {int(positions[0]): digest}
            got["seconds"]["sample"] = time.perf_counter() - t0
        out = merge(out, got)
    return out


def _where(frame: pd.DataFrame, where: str) -> np.ndarray:
    try:
        return frame.eval(where).to_numpy(dtype=bool)
    except Exception as exc:
        raise InputError(f"--where {where!r} could not be applied: {exc}") from exc


def _extremes(col: pd.Series):
    from failwell.scanner.partials import Extremes

    return Extremes.of(pd.to_numeric(col, errors="coerce").to_numpy(dtype=float))


def _predict(ds: Dataset, adapter: ModelAdapter | None, size: int
             ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Decisions and scores for a batch, as :meth:`ScanContext.base` makes them."""
    if adapter is None:
        given = ds.given_predictions()
        return (None, None) if given is None else given
    out = Predictions.of(adapter, call_model(adapter, ds.frame[model_columns(ds, adapter)],
                                             size, "a partition"))
    return out.decisions, out.scores


def scan_partitioned(
    dataset: PartitionedDataset,
    model: Any = None,
    *,
    detectors: list[str] | None = None,
    config: ScanConfig | None = None,
    progress: Progress | None = None,
    engine: str = "local",
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> ScanResult:
    """Scan partitioned Parquet on the local engine (streaming) or on Dask."""
    started = time.perf_counter()
    config = config or ScanConfig()
    classes = registry.resolve(detectors)
    instances = [(cls, registry.instantiate(cls, config.params.get(cls.name, {})))
                 for cls in classes]
    adapter = as_model(model)
    runner = engine_for(engine, client=client, scheduler=scheduler, workers=workers)
    try:
        with spilling() if isinstance(runner, LocalEngine) else contextlib.nullcontext():
            return _scan(dataset, adapter, instances, classes, config, progress, runner,
                         started)
    finally:
        runner.close()


def _scan(dataset, adapter, instances, classes, config, progress, runner,
          started) -> ScanResult:
    source = dataset.source
    parts = source.partitions
    sample_rows, batch_rows = config.sample_rows, config.batch_rows
    roles, head, rows = _roles(dataset, runner, progress, batch_rows)
    adapter = _bind(adapter, dataclasses.replace(roles, frame=head))
    shipped = adapter if isinstance(runner, LocalEngine) or adapter is None else ship(adapter)
    job = PassJob(source, roles, list(source.columns), shipped, seed=config.seed,
                  sample_rows=sample_rows, sample_cut=key_cut(sample_rows, rows),
                  batch_rows=batch_rows,
                  predict_rows=config.batch_size, where=dataset.where)
    # Detectors start on the first rows (requirements, stage 1), finish on the sample.
    head_ctx = ScanContext(dataclasses.replace(roles, frame=head), adapter, config)
    stages, outcomes, seconds = {}, {}, {}
    aggregating = {cls.name: det for cls, det in instances if is_aggregating(det)}
    spent: dict[str, float] = {}  # start and finish, in this process
    for name, det in aggregating.items():
        t0 = time.perf_counter()
        try:
            stages[name] = det.start(head_ctx)
        except Exception as exc:
            outcomes[name] = exc
        spent[name] = time.perf_counter() - t0
    first = dataclasses.replace(job, first=True, stages=dict(stages),
                                detectors={n: aggregating[n] for n in stages})
    watch = f" (dashboard {runner.dashboard})" if runner.dashboard else ""
    merged = runner.map_reduce(partial(run_partition, job=first), parts, progress,
                               f"pass 1 over {len(parts)} partitions{watch}")
    if not merged["rows"]:
        raise InputError(f"No rows are left after --where {dataset.where!r}.")
    sample = merged["sample"].ordered()
    ctx = _sample_context(roles, sample, adapter, config, merged["rows"])
    _add(seconds, merged["seconds"])
    results = merged["detectors"]
    pass_no = 1
    while stages:
        pending = {}
        for name, stage in stages.items():
            if name in outcomes:
                continue
            got = results.get(name)
            t0 = time.perf_counter()
            try:
                if isinstance(got, Failed):
                    raise FailwellError(got.message)
                out = aggregating[name].finish(ctx, stage, got)
            except Exception as exc:
                outcomes[name] = exc
                continue
            finally:
                spent[name] += time.perf_counter() - t0
            if isinstance(out, list):
                outcomes[name] = out
            else:
                pending[name] = out
        stages = pending
        if not stages:
            break
        pass_no += 1
        columns = {c for name, st in stages.items() for c in aggregating[name].columns(ctx, st)}
        columns |= set(_role_columns(roles, adapter))
        later = dataclasses.replace(job, columns=[c for c in source.columns if c in columns],
                                    stages=stages, detectors={n: aggregating[n] for n in stages})
        got = runner.map_reduce(partial(run_partition, job=later), parts, progress,
                                f"pass {pass_no} over {len(parts)} partitions{watch}")
        _add(seconds, got["seconds"])
        results = got["detectors"]

    result = ScanResult(findings=[])

    def check(cls, detector):
        def run():
            findings = outcomes.get(cls.name)
            if isinstance(findings, Exception):
                raise findings
            if findings is None:
                return detector_findings(ctx, detector)
            return stamped(ctx, detector, findings)
        return run

    run_checks([(cls.name, check(cls, det)) for cls, det in instances], result,
               progress=progress)
    for outcome in result.outcomes:  # the aggregating detectors' own (non-partition) time
        outcome.seconds += spent.get(outcome.detector, 0.0)
    if "confusion" in merged:
        summary_metrics(ctx, merged["confusion"], sample.scores)
    digests = "".join(merged["digests"][k] for k in sorted(merged["digests"]))
    result.config = {"engine": {"name": runner.name, "partitions": len(parts),
                                "files": source.files, "files_skipped": source.files_skipped,
                                "row_groups_skipped": source.row_groups_skipped,
                                "folder_columns": list(source.folder_columns),
                                "workers": runner.workers,
                                "scheduler": runner.address, "dashboard": runner.dashboard,
                                "passes": pass_no,
                                "sample_rows": len(sample.positions),
                                "source": source.url}}
    finalize(result, ctx, classes, started, data_fingerprint(
        "\x1f".join(source.columns).encode(), digests.encode()))
    for name, secs in seconds.items():  # summed over workers: CPU time, not wall time
        result.timings[f"partials.{name}"] = round(secs, 4)
    return result


def _add(total: dict[str, float], more: dict[str, float]) -> None:
    for k, v in more.items():
        total[k] = total.get(k, 0.0) + v


def _role_columns(roles: Dataset, adapter: ModelAdapter | None) -> list[str]:
    cols = [roles.target, roles.prediction, roles.score]
    if adapter is not None:
        cols += model_columns(roles, adapter)
    return [c for c in cols if c is not None]


def _sample_context(roles: Dataset, sample: RowSample, adapter: ModelAdapter | None,
                    config: ScanConfig, total: int) -> ScanContext:
    ctx = ScanContext(dataclasses.replace(roles, frame=sample.frame), adapter, config)
    ctx.positions = sample.positions
    ctx.total_rows = total
    if adapter is not None and sample.decisions is not None:
        ctx._cache[("base",)] = Predictions(sample.decisions, sample.scores)
    return ctx


def _roles(dataset: PartitionedDataset, runner: Any, progress: Progress | None,
           batch_rows: int) -> tuple[Dataset, pd.DataFrame, int]:
    """Check the roles against every row's target and decision values, as make_dataset
    checks a frame: a probe frame (the first rows plus one row per distinct value) goes
    through make_dataset itself, so errors read the same."""
    roles = dataset.roles
    source = dataset.source
    first = source.partitions[0]
    target = roles["target"]
    head = next(source.batches(first, None, min(batch_rows, 1_000)))[0]
    head = head.dropna(subset=[target]) if head[target].notna().any() else head
    # a bad expression fails here, before any pass
    kept = head[_where(head, dataset.where)] if dataset.where else head
    counted = tuple(c for c in dict.fromkeys([target, roles.get("prediction"),
                                              *roles.get("protected", ())]) if c)
    job = PassJob(source, None, list(counted) + ([roles["score"]] if roles.get("score") else []),
                  None, value_columns=counted, score=roles.get("score"),
                  batch_rows=batch_rows, where=dataset.where)
    got = runner.map_reduce(partial(run_partition, job=job), source.partitions, progress,
                            "checking the roles")
    if not got.get("rows"):
        raise InputError(f"No rows are left after --where {dataset.where!r}.")
    values: dict[str, ValueCounts] = got["values"]
    if values[target].missing:
        raise InputError(
            f"Target column {target!r} has {values[target].missing} missing value(s). Drop "
            f'or fill those rows first, e.g. --where "{target}.notna()".')
    if values[target].counts is None:
        raise InputError(f"Target column {target!r} has more than 10,000 distinct values; "
                         "failwell scans binary classification.")
    template = head.iloc[[0]].copy()
    template[target] = values[target].counts.index[0]
    rows = [kept]
    for col, vc in values.items():
        if vc.counts is not None and len(vc.counts):
            extra = template.iloc[[0] * len(vc.counts)].copy()
            extra[col] = vc.counts.index.to_numpy()
            rows.append(extra)
    if roles.get("score") and "score" in got and not got["score"].empty:
        extra = template.iloc[[0, 0]].copy()
        extra[roles["score"]] = [got["score"].low, got["score"].high]
        rows.append(extra)
    probe = pd.concat(rows, ignore_index=True)
    ds = make_dataset(probe, **roles)
    return dataclasses.replace(ds, frame=ds.frame.iloc[:0]), head, got["rows"]
