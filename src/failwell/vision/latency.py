"""Inference latency against a budget: p50/p95/p99 of single requests (or batches), timed
after a warm-up, as a ``latency-budget`` finding when p95 is over budget."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from failwell.errors import InputError
from failwell.findings import Finding, Metric, ScanResult, Severity
from failwell.scanner.detectors._common import mitigation_for


def latency_budget(predict: Callable[[np.ndarray], object], x: np.ndarray, *,
                   budget_ms: float, batch_size: int = 1, warmup: int = 5,
                   repeats: int = 100) -> ScanResult:
    if budget_ms <= 0:
        raise InputError("the latency budget must be a positive number of milliseconds.")
    x = np.asarray(x)
    if len(x) < batch_size:
        raise InputError(f"need at least {batch_size} inputs for batches of {batch_size}.")
    starts = np.arange(0, len(x) - batch_size + 1, batch_size)
    for i in range(warmup):
        predict(x[starts[i % len(starts)]:starts[i % len(starts)] + batch_size])
    times = []
    for i in range(repeats):
        s = starts[i % len(starts)]
        t0 = time.perf_counter()
        predict(x[s:s + batch_size])
        times.append(1000 * (time.perf_counter() - t0))
    p50, p95, p99 = (float(np.percentile(times, q)) for q in (50, 95, 99))
    findings = []
    if p95 > budget_ms:
        findings.append(Finding(
            "latency-budget", Severity.HIGH if p95 > 2 * budget_ms else Severity.MEDIUM,
            f"p95 latency {p95:.1f} ms is over the {budget_ms:g} ms budget",
            f"Over {repeats} timed calls with batches of {batch_size} (after {warmup} warm-up "
            f"calls): p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms.",
            "latency", [Metric("p95_latency_ms", p95, budget_ms)],
            {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "batch_size": batch_size},
            mitigation_for("latency-budget")))
    result = ScanResult(findings=findings)
    result.metrics = {"p50_latency_ms": p50, "p95_latency_ms": p95, "p99_latency_ms": p99}
    return result
