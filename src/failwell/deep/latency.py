"""Inference latency against a budget.

* p50/p95/p99 per batch size, timed after a warm-up;
* cold start (runtime import, model load and first call) and peak memory, measured in a
  fresh Python process, because a warm process hides both;
* dynamic quantization (int8 weights: torch's for Linear/LSTM/GRU layers, onnxruntime's
  for ONNX files) timed and scored side by side with the original, so the mitigation
  comes with its cost.

A ``latency-budget`` finding is raised when p95 (at the first batch size) is over budget, and
only when the measurement can tell: calls are repeated until the 95 % interval of p95 lies
clearly on one side of the budget (or :data:`MAX_SECONDS` pass), and a fixed reference
workload timed between the model's calls measures the machine's own noise. On a machine busy
enough that the reference itself has a long tail (p95 over :data:`NOISE_RATIO` times its
median), a slow tail is not blamed on the model: the verdict rests on the median, and is
"inconclusive" when the median is within budget but p95 is not.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from failwell.errors import InputError
from failwell.findings import Finding, Metric, ScanResult, Severity
from failwell.scanner.detectors._common import mitigation_for


def time_calls(predict: Callable[[np.ndarray], object], x: np.ndarray, *,
               batch_size: int = 1, warmup: int = 5, repeats: int = 100) -> dict[str, float]:
    """p50/p95/p99 (ms) of ``predict`` on consecutive batches, after ``warmup`` calls."""
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
    row = _percentiles(times)
    return {"batch_size": batch_size, **row, "per_input_ms": row["p50_ms"] / batch_size,
            "calls": repeats}


NOISE_RATIO = 2.0  # reference workload p95 / p50 above this: the machine sets the tail
MAX_SECONDS = 10.0  # timing budget for one verdict


def reference_work(size: int) -> None:
    """A fixed CPU workload whose own spread is the machine's noise."""
    total = 0
    for i in range(size):
        total += i * i


def quantile_interval(times: Sequence[float], q: float = 0.95) -> tuple[float, float]:
    """Distribution-free 95 % interval of the ``q`` quantile (order statistics, normal
    approximation to the binomial)."""
    ordered = np.sort(np.asarray(times))
    n = len(ordered)
    half = 1.96 * np.sqrt(n * q * (1 - q))
    lo = int(np.clip(np.floor(n * q - half), 0, n - 1))
    hi = int(np.clip(np.ceil(n * q + half), 0, n - 1))
    return float(ordered[lo]), float(ordered[hi])


def judge_budget(predict: Callable[[np.ndarray], object], x: np.ndarray, *, budget_ms: float,
                 batch_size: int = 1, warmup: int = 5, repeats: int = 100,
                 max_seconds: float = MAX_SECONDS) -> dict[str, Any]:
    """Time ``predict`` against the budget in rounds until the verdict is clear, each call
    followed by the reference workload, so that noise hits both alike."""
    x = np.asarray(x)
    row = time_calls(predict, x, batch_size=batch_size, warmup=warmup, repeats=1)
    size = _reference_size(row["p50_ms"])
    starts = np.arange(0, len(x) - batch_size + 1, batch_size)
    times: list[float] = []
    reference: list[float] = []
    started = time.perf_counter()
    while True:
        for i in range(repeats):
            s = starts[(len(times) + i) % len(starts)]
            t0 = time.perf_counter()
            predict(x[s:s + batch_size])
            t1 = time.perf_counter()
            reference_work(size)
            times.append(1000 * (t1 - t0))
            reference.append(1000 * (time.perf_counter() - t1))
        lo, hi = quantile_interval(times)
        if hi <= budget_ms or lo > budget_ms or time.perf_counter() - started > max_seconds:
            break
    ref_p50, ref_p95 = (float(np.percentile(reference, q)) for q in (50, 95))
    noise = ref_p95 / ref_p50 if ref_p50 > 0 else 1.0
    row.update(_percentiles(times), calls=len(times), p95_interval_ms=[lo, hi],
               reference_p50_ms=ref_p50, reference_p95_ms=ref_p95, noise_ratio=noise)
    row["per_input_ms"] = row["p50_ms"] / batch_size
    row.update(zip(("verdict", "reason"), _verdict(row, times, budget_ms), strict=True))
    return row


def _verdict(row: dict[str, Any], times: list[float], budget_ms: float) -> tuple[str, str]:
    lo, hi = row["p95_interval_ms"]
    if hi <= budget_ms:
        return "within budget", ""
    if row["noise_ratio"] > NOISE_RATIO:
        if quantile_interval(times, 0.5)[0] > budget_ms:
            return "over budget", "even the median is over budget on this busy machine"
        return "inconclusive", (
            f"the machine is too noisy to time the tail: a fixed reference workload has p95 "
            f"{row['noise_ratio']:.1f}x its median (a quiet machine is under {NOISE_RATIO:g}x); "
            f"p50 {row['p50_ms']:.2f} ms is within the {budget_ms:g} ms budget, p95 "
            f"{row['p95_ms']:.1f} ms is not. Re-run on an idle machine.")
    if lo > budget_ms:
        return "over budget", ""
    return "inconclusive", (f"p95 is {lo:.2f}-{hi:.2f} ms (95 % interval after {len(times)} "
                            f"calls), too close to the {budget_ms:g} ms budget to call.")


def _reference_size(target_ms: float) -> int:
    """How many loop steps make the reference take about as long as one model call."""
    t0 = time.perf_counter()
    reference_work(10_000)
    per_step = max((time.perf_counter() - t0) * 1000 / 10_000, 1e-7)
    return int(np.clip(max(target_ms, 0.05) / per_step, 100, 5_000_000))


def _percentiles(times: Sequence[float]) -> dict[str, float]:
    return dict(zip(("p50_ms", "p95_ms", "p99_ms"),
                    (float(np.percentile(times, q)) for q in (50, 95, 99)), strict=True))


def latency_budget(predict: Callable[[np.ndarray], object], x: np.ndarray, *,
                   budget_ms: float, batch_size: int = 1, warmup: int = 5,
                   repeats: int = 100, max_seconds: float = MAX_SECONDS) -> ScanResult:
    """The budget check alone, for any ``predict`` callable."""
    _check_budget(budget_ms)
    row = judge_budget(predict, x, budget_ms=budget_ms, batch_size=batch_size, warmup=warmup,
                       repeats=repeats, max_seconds=max_seconds)
    result = ScanResult(findings=_over_budget([row], budget_ms, None, warmup))
    result.metrics = {"p50_latency_ms": row["p50_ms"], "p95_latency_ms": row["p95_ms"],
                      "p99_latency_ms": row["p99_ms"]}
    result.diagnostics = {"latency": {"budget_ms": budget_ms, "batches": [row]}}
    result.config = {"verdict": row["verdict"], "note": row["reason"]}
    return result


def _check_budget(budget_ms: float | None) -> None:
    if budget_ms is not None and not budget_ms > 0:
        raise InputError("the latency budget must be a positive number of milliseconds.")


def _over_budget(rows: list[dict], budget_ms: float | None, quantized: dict | None,
                 warmup: int) -> list[Finding]:
    if budget_ms is None or rows[0].get("verdict") != "over budget":
        return []
    row = rows[0]
    p95 = row["p95_ms"]
    lo, hi = row["p95_interval_ms"]
    summary = (f"Over {row['calls']} timed calls with batches of {row['batch_size']} (after "
               f"{warmup} warm-up calls): p50 {row['p50_ms']:.1f} ms, p95 {p95:.1f} ms "
               f"(95 % interval {lo:.1f}-{hi:.1f} ms), p99 {row['p99_ms']:.1f} ms; a reference "
               f"workload's p95 was {row['noise_ratio']:.1f}x its median on this machine.")
    if row.get("reason"):
        summary += f" {row['reason'][0].upper()}{row['reason'][1:]}."
    if quantized and quantized.get("status") == "ran":
        summary += (f" Dynamic int8 quantization gives p95 {quantized['p95_ms']:.1f} ms "
                    f"({quantized['speedup']:.2f}x) at {quantized['accuracy_change']:+.1%} "
                    "accuracy.")
    return [Finding(
        "latency-budget", Severity.HIGH if p95 > 2 * budget_ms else Severity.MEDIUM,
        f"p95 latency {p95:.1f} ms is over the {budget_ms:g} ms budget", summary, "latency",
        [Metric("p95_latency_ms", p95, budget_ms)],
        {"p50_ms": row["p50_ms"], "p95_ms": p95, "p99_ms": row["p99_ms"],
         "batch_size": row["batch_size"]},
        mitigation_for("latency-budget"))]


# -- cold start and peak memory, in a fresh process ------------------------------------

def cold_start(model: Any, sample: np.ndarray, *, spec: str | None = None,
               trust: bool = False, integer_inputs: bool = False, timeout: float = 120
               ) -> dict[str, Any]:
    """Import, load and first call in a new Python process, with its peak memory.

    ``spec`` is how the model is loaded (a file or ``module:function``); without one, an
    in-memory PyTorch model is saved to a temporary file for the child to load (its class
    must be importable there), and an ONNX model is loaded from its own file."""
    with tempfile.TemporaryDirectory(prefix="failwell-cold-") as tmp:
        if spec is None:
            spec, trust = _spec_for(model, Path(tmp)), True
        if spec is None:
            return {"status": "skipped", "reason": "no file to load the model from"}
        sample_path = Path(tmp) / "sample.npy"
        np.save(sample_path, np.asarray(sample[:1]))
        cmd = [sys.executable, "-m", "failwell.deep.coldstart", str(spec), str(sample_path)]
        cmd += ["--trust"] if trust else []
        cmd += ["--integer-inputs"] if integer_inputs else []
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"status": "error", "reason": f"no answer within {timeout:g} s"}
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return {"status": "error", "reason": lines[-1] if lines else "the child failed"}
    return {"status": "ran", **json.loads(done.stdout.strip().splitlines()[-1])}


def _spec_for(model: Any, folder: Path) -> str | None:
    source = getattr(model, "source", None)
    if isinstance(source, str):
        return source  # an ONNX file
    module = getattr(model, "model", None)
    if module is None or not hasattr(module, "parameters"):
        return None
    import torch

    path = folder / "model.pt"
    torch.save(module, path)
    return str(path)


# -- dynamic quantization ----------------------------------------------------------------

def quantized_comparison(clf: Any, x: np.ndarray, y: np.ndarray | None, *,
                         batch_size: int = 1, repeats: int = 50) -> dict[str, Any]:
    """Time and score the model with int8 dynamic quantization next to the original."""
    if isinstance(getattr(clf, "source", None), str):
        return _onnx_quantized(clf, x, y, batch_size=batch_size, repeats=repeats)
    module = getattr(clf, "model", None)
    if module is None or not hasattr(module, "parameters"):
        return {"status": "skipped", "reason": "dynamic quantization needs a PyTorch model "
                                               "or an ONNX file"}
    import copy

    import torch

    from failwell.deep.adapter import TorchClassifier

    kinds = {torch.nn.Linear, torch.nn.LSTM, torch.nn.GRU}
    if not any(type(m) in kinds for m in module.modules()):
        return {"status": "skipped", "reason": "no Linear, LSTM or GRU layer to quantize"}
    if clf.device != "cpu":
        return {"status": "skipped", "reason": "dynamic quantization runs on the CPU"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated for torchao
        from torch.ao.quantization import quantize_dynamic

        quantized = TorchClassifier(
            quantize_dynamic(copy.deepcopy(module), kinds, dtype=torch.qint8), device="cpu",
            batch_size=clf.batch_size, integer_inputs=clf.integer_inputs)
        return _side_by_side(clf, quantized, x, y, batch_size, repeats)


def _onnx_quantized(clf: Any, x: np.ndarray, y: np.ndarray | None, *, batch_size: int,
                    repeats: int) -> dict[str, Any]:
    """onnxruntime's dynamic int8 quantization of the model file."""
    from failwell.deep.adapter import OnnxClassifier

    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        return {"status": "skipped", "reason": "onnxruntime.quantization is not installed"}
    with tempfile.TemporaryDirectory(prefix="failwell-q-") as tmp:
        target = Path(tmp) / "quantized.onnx"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                logging.disable(logging.WARNING)  # its advice to pre-process goes to root
                try:
                    quantize_dynamic(clf.source, str(target), weight_type=QuantType.QInt8)
                finally:
                    logging.disable(logging.NOTSET)
            quantized = OnnxClassifier(str(target), batch_size=clf.batch_size)
        except Exception as exc:  # onnxruntime raises its own types
            return {"status": "skipped", "reason": f"onnxruntime could not quantize it: {exc}"}
        return _side_by_side(clf, quantized, x, y, batch_size, repeats)


def _side_by_side(clf, quantized, x, y, batch_size: int, repeats: int) -> dict[str, Any]:
    before = time_calls(clf.predict, x, batch_size=batch_size, repeats=repeats)
    after = time_calls(quantized.predict, x, batch_size=batch_size, repeats=repeats)
    out = {"status": "ran", "batch_size": batch_size, "original_p95_ms": before["p95_ms"],
           "p95_ms": after["p95_ms"], "speedup": before["p50_ms"] / after["p50_ms"]}
    if y is not None:
        original = float((clf.predict(x) == y).mean())
        out.update(original_accuracy=original,
                   accuracy=float((quantized.predict(x) == y).mean()))
        out["accuracy_change"] = out["accuracy"] - original
    else:
        out["agreement"] = float((quantized.predict(x) == clf.predict(x)).mean())
        out["accuracy_change"] = 0.0
    return out


def latency_check(clf: Any, x: np.ndarray, y: np.ndarray | None = None, *,
                  budget_ms: float | None = None, batch_sizes: Sequence[int] = (1, 32),
                  spec: str | None = None, trust: bool = False, cold: bool = True,
                  quantize: bool = True, repeats: int = 50, warmup: int = 5) -> ScanResult:
    """Latency per batch size, cold start and peak memory, and the quantized twin."""
    _check_budget(budget_ms)
    if not batch_sizes or min(batch_sizes) < 1:
        raise InputError("batch sizes must be positive integers.")
    x = np.asarray(x)
    sizes = [b for b in batch_sizes if b <= len(x)]
    if not sizes:
        raise InputError(f"need at least {min(batch_sizes)} inputs to time a batch.")
    first = judge_budget(clf.predict, x, budget_ms=budget_ms, batch_size=sizes[0],
                         warmup=warmup, repeats=repeats) if budget_ms is not None else None
    rows = [first] if first else []
    rows += [time_calls(clf.predict, x, batch_size=b, warmup=warmup, repeats=repeats)
             for b in sizes[len(rows):]]
    started = cold_start(clf, x, spec=spec, trust=trust,
                         integer_inputs=getattr(clf, "integer_inputs", False)) if cold \
        else {"status": "skipped", "reason": "not asked for"}
    quantized = quantized_comparison(clf, x, y, batch_size=rows[0]["batch_size"],
                                     repeats=repeats) if quantize \
        else {"status": "skipped", "reason": "not asked for"}
    result = ScanResult(findings=_over_budget(rows, budget_ms, quantized, warmup))
    result.metrics = {"p50_latency_ms": rows[0]["p50_ms"], "p95_latency_ms": rows[0]["p95_ms"],
                      "p99_latency_ms": rows[0]["p99_ms"]}
    if started["status"] == "ran":
        result.metrics.update(cold_start_ms=started["cold_start_ms"],
                              peak_memory_mb=started["peak_memory_mb"],
                              model_memory_mb=started["model_memory_mb"])
    result.diagnostics = {"latency": {"budget_ms": budget_ms, "batches": rows,
                                      "cold_start": started, "quantized": quantized}}
    if first:
        result.config = {"verdict": first["verdict"], "note": first["reason"]}
    return result

