"""deep_scan(): the neural-network checks, run by the tabular scan's runner.

Checks are registered like tabular detectors (built-ins here, plugins through the
entry-point group ``failwell.deep_checks``: a function ``check(clf, x, y, config, rng, ...)
-> ScanResult``) and run by :func:`failwell.scanner.runner.run_checks`, so each is recorded
the same way (ran, skipped with the reason via ``SkipDetector``, or error):

* ``clever-hans``: attributions and intervention (differentiable models, images);
* ``adversarial``: white-box PGD for PyTorch models, black-box random search otherwise;
* ``corruptions``: accuracy under image or tabular corruption families (mCE);
* ``drift``: reference vs production inputs, when production inputs are given;
* ``latency``: p50/p95/p99 per batch size, cold start, peak memory, quantized twin.

The model and arrays are checked first, so a model that cannot take the inputs, or whose
outputs do not match the labels, fails with one message before any work is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from failwell.checks import (
    Inconclusive,
    SkipDetector,
    fingerprint,
    load_plugins,
    run_checks,
    versions,
)
from failwell.deep.adapter import OnnxClassifier, TorchClassifier
from failwell.errors import FailwellError, InputError
from failwell.findings import ScanResult
from failwell.progress import Progress

BUILTIN_CHECKS = {
    "clever-hans": "failwell.deep.deepscan:check_clever_hans",
    "adversarial": "failwell.deep.deepscan:check_adversarial",
    "corruptions": "failwell.deep.deepscan:check_corruptions",
    "drift": "failwell.deep.deepscan:check_drift",
    "latency": "failwell.deep.deepscan:check_latency",
}
CHECKS = tuple(BUILTIN_CHECKS)
ENTRY_POINT_GROUP = "failwell.deep_checks"


def available_checks() -> dict[str, Callable[..., ScanResult]]:
    """Name -> check function: the built-ins, then plugins from entry points."""
    return load_plugins(BUILTIN_CHECKS, ENTRY_POINT_GROUP, kind="deep check")


@dataclass
class DeepScanConfig:
    eps: float = 0.1  # attack radius, in input units (pixels in [0, 1] for the demo)
    attack: str = "auto"  # pgd-linf for PyTorch models, random-search otherwise
    attack_inputs: int = 500
    max_accuracy_drop: float = 0.3  # adversarial: drop at eps that is a finding
    corruption_inputs: int = 500
    max_corruption_drop: float = 0.25  # at severity 3 of 5
    latency_budget_ms: float | None = None
    batch_sizes: tuple[int, ...] = (1, 32)
    quantize: bool = True
    cold_start: bool = True
    layer: str | None = None  # Grad-CAM layer, by module name (e.g. "3")
    roi: np.ndarray | None = field(default=None, repr=False)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["roi"] = None if self.roi is None else list(self.roi.shape)
        out["batch_sizes"] = list(self.batch_sizes)
        return out


def as_classifier(model: Any) -> TorchClassifier | OnnxClassifier:
    if isinstance(model, TorchClassifier | OnnxClassifier):
        return model
    if hasattr(model, "parameters"):
        return TorchClassifier(model)
    raise InputError("deep_scan takes an nn.Module, a TorchClassifier or an OnnxClassifier; "
                     "for scikit-learn models use failwell scan.")


def check_inputs(clf, x: np.ndarray, y: np.ndarray | None, roi: np.ndarray | None) -> int:
    """Refuse inputs the model cannot take, outputs that do not fit the labels, and a
    mask of the wrong size, each with one message. Returns the number of classes."""
    x = np.asarray(x)
    integer = getattr(clf, "integer_inputs", False)
    if integer and x.dtype.kind not in "iu":
        raise InputError(f"token-id inputs must be integers, not {x.dtype}.")
    if not integer and x.dtype.kind in "iub":
        raise InputError(f"the inputs are {x.dtype}: scale images to floats in [0, 1] "
                         "first, or pass --integer-inputs if they are token ids.")
    try:
        out = clf.logits(x[:2])
    except FailwellError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"the model cannot take inputs shaped {tuple(x.shape[1:])} "
                         f"({x.dtype}) per example: {first}") from None
    if out.ndim != 2 or out.shape[0] != min(2, len(x)):
        raise InputError(f"the model must return one row of class scores per input, "
                         f"(N, classes); it returned {tuple(out.shape)} for {min(2, len(x))} "
                         "inputs.")
    classes = out.shape[1]
    if y is not None and (classes < 2 or int(y.max()) >= classes):
        raise InputError(f"the model outputs {classes} score(s) per input but the labels "
                         f"go up to {int(y.max())}: the output does not match the labels.")
    if roi is not None:
        if x.ndim != 4:
            raise InputError("a region-of-interest mask needs image inputs (N, C, H, W).")
        if roi.shape != x.shape[-2:]:
            raise InputError(f"the region-of-interest mask is {roi.shape}, the images are "
                             f"{tuple(x.shape[-2:])}.")
    return classes


def deep_scan(model: Any, x: np.ndarray, y: np.ndarray, *, production: np.ndarray | None = None,
              checks: tuple[str, ...] | list[str] | None = None,
              config: DeepScanConfig | None = None, spec: str | None = None,
              trust: bool = False, progress: Progress | None = None) -> ScanResult:
    """Scan a neural network on labelled inputs ``x``/``y`` (and unlabelled ``production``
    inputs for drift). ``spec`` is the model's file or ``module:function``, used to time a
    cold start in a fresh process."""
    started = time.perf_counter()
    config = config or DeepScanConfig()
    clf = as_classifier(model)
    x, y = np.asarray(x), np.asarray(y)
    table = available_checks()
    unknown = [c for c in (checks or ()) if c not in table]
    if unknown:
        raise InputError(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(table)}.")
    from failwell.deep.adversarial import ATTACKS

    if config.attack not in ("auto", *ATTACKS):
        raise InputError(f"--attack {config.attack!r} is not one of auto, "
                         f"{', '.join(ATTACKS)}.")
    if not config.eps > 0:
        raise InputError("--eps must be a positive attack radius.")
    if len(y) != len(x):
        raise InputError(f"need one label per input: {len(x)} inputs, {len(y)} labels.")
    classes = check_inputs(clf, x, y, config.roi)
    if production is not None:
        production = np.asarray(production)
        if production.shape[1:] != x.shape[1:]:
            raise InputError(f"production inputs are {production.shape[1:]} per example, "
                             f"the reference inputs {x.shape[1:]}.")
    plan = [c for c in (checks or table) if c != "drift" or production is not None]
    result = ScanResult(findings=[])
    rng = np.random.default_rng(config.seed)
    args = dict(clf=clf, x=x, y=y, production=production, config=config, spec=spec,
                trust=trust, rng=rng)

    def check(name: str):
        def run():
            part = table[name](**args)
            prefix = name.replace("-", "_")
            result.metrics.update({f"{prefix}.{k}": v for k, v in part.metrics.items()})
            result.diagnostics.update(part.diagnostics)
            if (part.config or {}).get("verdict") == "inconclusive":
                raise Inconclusive(part.config["note"])
            return part.findings, (part.config or {}).get("note", "")
        return run

    run_checks([(name, check(name)) for name in plan], result, progress=progress,
               propagate=(InputError,))
    result.data_fingerprint = fingerprint(np.ascontiguousarray(x).tobytes(),
                                          np.ascontiguousarray(y).tobytes())
    result.model_fingerprint = spec or type(getattr(clf, "model", clf)).__name__
    result.config = {"kind": "deep", "n_rows": len(x), "inputs": list(x.shape),
                     "classes": classes,
                     "model": spec or type(getattr(clf, "model", clf)).__name__,
                     "device": getattr(clf, "device", "cpu"), "checks": plan,
                     **config.to_dict()}
    result.timings = {o.detector: round(o.seconds, 4) for o in result.outcomes}
    result.timings["total"] = round(time.perf_counter() - started, 4)
    result.versions = versions(("torch", "captum", "onnxruntime"))
    result.created_at = datetime.now(UTC).isoformat(timespec="seconds")
    return result


def _sample(rng, n: int, limit: int) -> np.ndarray:
    return np.sort(rng.choice(n, size=min(n, limit), replace=False))


def _float_inputs(clf, what: str) -> None:
    if getattr(clf, "integer_inputs", False):
        raise SkipDetector(f"{what} perturbs input values; token ids need text-level changes")


def check_clever_hans(clf, x, y, config, **_) -> ScanResult:
    from failwell.deep.clever_hans import attach_gallery, clever_hans

    if not isinstance(clf, TorchClassifier):
        raise SkipDetector("attributions need a differentiable PyTorch model")
    _float_inputs(clf, "Clever Hans")
    if x.ndim != 4:
        raise SkipDetector("the marker search is for images (N, C, H, W)")
    layer = None
    if config.layer:
        clf = clf.with_layers()
        try:
            layer = clf.model.get_submodule(config.layer)
        except AttributeError:
            names = [n for n, _ in clf.model.named_modules() if n]
            raise InputError(f"the model has no layer {config.layer!r}; layers: "
                             f"{', '.join(names[:20])}.") from None
    result = clever_hans(clf, x, y, roi=config.roi, layer=layer)
    try:
        attach_gallery(clf, x, result)
    except FailwellError as exc:  # matplotlib missing: the scan stands without pictures
        result.config["note"] = f"no attribution gallery: {exc}"
    return result


def check_adversarial(clf, x, y, config, rng, **_) -> ScanResult:
    from failwell.deep.adversarial import adversarial_fragility

    _float_inputs(clf, "the adversarial attack")
    attack = config.attack
    if attack == "auto":
        attack = "pgd-linf" if isinstance(clf, TorchClassifier) else "random-search"
    if attack != "random-search" and not isinstance(clf, TorchClassifier):
        raise InputError(f"{attack} needs gradients: use --attack random-search for "
                         "ONNX models.")
    idx = _sample(rng, len(x), config.attack_inputs)
    xs = x[idx].astype(np.float32)
    bounds = (0.0, 1.0) if xs.min() >= 0 and xs.max() <= 1 else (float(x.min()),
                                                                  float(x.max()))
    return adversarial_fragility(clf, xs, y[idx], eps=config.eps, attack=attack,
                                 max_drop=config.max_accuracy_drop, bounds=bounds)


def check_corruptions(clf, x, y, config, rng, **_) -> ScanResult:
    from failwell.deep.shift import corruption_fragility

    _float_inputs(clf, "corruption")
    if x.ndim not in (2, 4):
        raise SkipDetector(f"corruption families cover images and tables, not inputs {x.shape[1:]}")
    idx = _sample(rng, len(x), config.corruption_inputs)
    return corruption_fragility(clf.predict, x[idx], y[idx],
                                max_drop=config.max_corruption_drop)


def check_drift(x, production, **_) -> ScanResult:
    from failwell.deep.shift import domain_shift

    result = domain_shift(x, production, tabular=x.ndim == 2)
    result.diagnostics = {"drift": result.diagnostics}
    return result


def check_latency(clf, x, y, config, spec, trust, **_) -> ScanResult:
    from failwell.deep.latency import latency_check

    return latency_check(clf, x, y, budget_ms=config.latency_budget_ms,
                         batch_sizes=config.batch_sizes, spec=spec, trust=trust,
                         cold=config.cold_start, quantize=config.quantize)
