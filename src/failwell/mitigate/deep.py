"""Measured mitigations for neural networks: train a baseline and one model per mitigation
from the same initial weights and the same training budget, scan each with the same deep
checks on the same held-out split, and report what changed.

* ``adversarial-training``: Madry et al. (2018), through
  :func:`failwell.mitigate.adversarial.adversarial_training`, at the scan's eps.
* ``domain-randomization``: Tobin et al. (2017): every batch is re-rendered with random
  noise, contrast, brightness and shifts drawn from continuous ranges. Blur and rotation are
  held out, so the corruption check measures transfer to families training never saw, and
  the seen and held-out families are reported apart.

Every model starts from a copy of the same untrained network and takes the same number of
epochs, batches, learning rate and data order; only the mitigation differs. Fine-tuning the
baseline instead would give the mitigated models more optimizer steps than the baseline,
and part of any gain would be extra training.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from failwell.errors import FailwellError, InputError, did_you_mean, require
from failwell.findings import ScanResult, _clean
from failwell.progress import Progress

__all__ = ["DEEP_METHODS", "HELD_OUT", "RANDOMIZED", "RENDERINGS", "DeepComparison",
           "compare_deep", "expected_calibration_error", "randomize_rendering"]

DEEP_METHODS = ("adversarial-training", "domain-randomization")
DEFAULT_CHECKS = ("adversarial", "corruptions")  # what the two methods are meant to change
DEFAULT_EPOCHS = 15  # the demo trains 25; 15 keeps the default comparison near 30 s
AT_STEPS = 3  # PGD steps per training batch; the scan attacks with 10
LEARNING_RATE = 3e-3  # failwell.deep.digits.train's, so every model gets the same optimizer

# Names are the corruption check's families, so "seen" and "held out" line up with its table.
RENDERINGS = ("translation", "rotation", "blur", "contrast", "brightness", "gaussian-noise")
RANDOMIZED = ("translation", "contrast", "brightness", "gaussian-noise")
HELD_OUT = tuple(f for f in RENDERINGS if f not in RANDOMIZED)


# -- domain randomization ----------------------------------------------------------------

def randomize_rendering(x: np.ndarray, rng: np.random.Generator, *,
                        families: Sequence[str] = RANDOMIZED, p: float = 0.5) -> np.ndarray:
    """Re-render a batch of images (N, C, H, W) in [0, 1]: each family in ``families`` is
    applied to each image with probability ``p``, its strength drawn from a continuous range
    that covers the corruption check's five severities. Continuous draws in random
    directions, not the check's fixed levels, so that training does not rehearse the test."""
    from scipy import ndimage

    out = np.array(x, dtype=np.float32, copy=True)
    n, h, w = len(out), out.shape[-2], out.shape[-1]

    def chosen(family: str) -> np.ndarray:
        return np.flatnonzero(rng.random(n) < p) if family in families else np.zeros(0, int)

    def per_image(values: np.ndarray) -> np.ndarray:
        return values[:, None, None, None]

    for i in chosen("translation"):  # the check shifts up to a quarter of the width
        dy, dx = rng.uniform(-0.25, 0.25, 2) * (h, w)
        out[i] = ndimage.shift(out[i], (0, dy, dx), order=1)
    for i in chosen("rotation"):
        out[i] = ndimage.rotate(out[i], rng.uniform(-30, 30), axes=(1, 2), reshape=False,
                                order=1)
    for i in chosen("blur"):
        sigma = rng.uniform(0.3, 1.3)
        out[i] = ndimage.gaussian_filter(out[i], sigma=(0, sigma, sigma))
    idx = chosen("contrast")
    if len(idx):
        mean = out[idx].mean(axis=(1, 2, 3), keepdims=True)
        out[idx] = (out[idx] - mean) * per_image(rng.uniform(0.2, 1.0, len(idx))) + mean
    idx = chosen("brightness")
    out[idx] += per_image(rng.uniform(-0.2, 0.5, len(idx)))
    idx = chosen("gaussian-noise")
    out[idx] += rng.normal(0, 1, out[idx].shape) * per_image(rng.uniform(0.02, 0.26, len(idx)))
    return np.clip(out, 0, 1, out=out)


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE (Guo et al., 2017) for multi-class probabilities, equal-width bins.
    deep_scan has no calibration check, so the comparison measures it on the clean split."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    idx = np.clip((conf * bins).astype(int), 0, bins - 1)
    count = np.bincount(idx, minlength=bins)
    gap = np.abs(np.bincount(idx, conf, bins) - np.bincount(idx, correct, bins))
    return float(gap.sum() / max(count.sum(), 1))


# -- the comparison ------------------------------------------------------------------------

@dataclass
class DeepComparison:
    """One row per model (the baseline first), each model's ScanResult, and what changed."""

    rows: list[dict[str, Any]]
    results: dict[str, ScanResult]
    checks: tuple[str, ...]
    randomized: tuple[str, ...]
    held_out: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def row(self, method: str) -> dict[str, Any]:
        for r in self.rows:
            if r["method"] == method:
                return r
        raise KeyError(method)

    @property
    def skipped(self) -> dict[str, str]:
        """Method -> why it did not run."""
        return {r["method"]: r["note"] for r in self.rows if r["status"] != "ran"}

    def table(self):
        """The rows as a pandas DataFrame, one row per method."""
        import pandas as pd

        return pd.DataFrame(self.rows).set_index("method")

    def findings_changed(self) -> list[dict[str, Any]]:
        """Findings that disappear ("gone"), appear ("new") or change severity against the
        baseline, keyed by failure mode and check. Only checks that ran for both models are
        compared, so a check that failed on one side is not read as a fix."""
        base = self.results.get("baseline")
        if base is None:
            return []
        out = []
        for method, result in self.results.items():
            if method == "baseline":
                continue
            both = _ran(base) & _ran(result)
            before, after = _keyed(base, both), _keyed(result, both)
            for key in sorted(before.keys() | after.keys()):
                old, new = before.get(key), after.get(key)
                if old is not None and new is not None and old.severity == new.severity:
                    continue
                change = ("gone" if new is None else "new" if old is None
                          else "milder" if new.severity < old.severity else "worse")
                out.append({"method": method, "failure_mode": key[0], "check": key[1],
                            "change": change,
                            "before": None if old is None else str(old.severity),
                            "after": None if new is None else str(new.severity),
                            "title": (new or old).title})
        return out

    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "kind": "deep-mitigation-comparison", "rows": self.rows,
            "checks": list(self.checks), "randomized": list(self.randomized),
            "held_out": list(self.held_out), "settings": self.settings,
            "seconds": self.seconds, "skipped": self.skipped,
            "findings_changed": self.findings_changed(),
            "results": {m: r.to_dict() for m, r in self.results.items()}})

    def to_markdown(self) -> str:
        """Before/after tables: headline figures with the change against the baseline, the
        corruption error per family, the findings that changed, and skipped methods."""
        base = self.row("baseline")
        ran = [r for r in self.rows if r["status"] == "ran"]
        eps = self.settings.get("eps")
        columns = [("clean_accuracy", "clean acc.", True),
                   ("robust_accuracy", f"robust acc. @ eps {eps:g}" if eps else "robust acc.",
                    True),
                   ("attack_success_rate", "attack success", True),
                   ("mce", "mCE", True), ("ce_seen", "CE seen", True),
                   ("ce_held_out", "CE held out", True), ("ece", "ECE", False),
                   ("findings", "findings", False), ("train_seconds", "train s", False)]
        columns = [c for c in columns if any(r.get(c[0]) is not None for r in ran)]
        lines = ["| method | " + " | ".join(c[1] for c in columns) + " |",
                 "|---|" + "---:|" * len(columns)]
        for r in ran:
            cells = [_cell(r.get(key), None if r is base else base.get(key), pct, key)
                     for key, _, pct in columns]
            lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
        grid = list(base.get("robust_accuracy_by_eps", {}))
        if len(grid) > 1:
            lines += ["", "| eps (PGD) | " + " | ".join(r["method"] for r in ran) + " |",
                      "|---:|" + "---:|" * len(ran)]
            for e in grid:
                cells = [_cell(r["robust_accuracy_by_eps"].get(e), None if r is base
                               else base["robust_accuracy_by_eps"][e], True, "acc")
                         for r in ran]
                lines.append(f"| {e:g} | " + " | ".join(cells) + " |")
        families = list(base.get("corruption_error", {}))
        if families:
            lines += ["", "| corruption family | seen in training | "
                      + " | ".join(r["method"] for r in ran) + " |",
                      "|---|---|" + "---:|" * len(ran)]
            for family in families:
                seen = ("yes" if family in self.randomized else
                        "held out" if family in self.held_out else "n/a")
                cells = [_cell(r["corruption_error"].get(family),
                               None if r is base else base["corruption_error"].get(family),
                               True, "ce") for r in ran]
                lines.append(f"| {family} | {seen} | " + " | ".join(cells) + " |")
        changed = self.findings_changed()
        if changed:
            lines += ["", "Findings that changed against the baseline:", ""]
            lines += [f"- {c['method']}: {c['failure_mode']} ({c['check']}) {c['change']}"
                      + (f", {c['before']} -> {c['after']}" if c["change"] in ("milder", "worse")
                         else f" ({c['before'] or c['after']})") + f": {c['title']}"
                      for c in changed]
        for method, why in self.skipped.items():
            lines += ["", f"Not run: {method}: {why}"]
        return "\n".join(lines) + "\n"


def _cell(value, before, pct: bool, key: str) -> str:
    if value is None:
        return "n/a"
    if key == "findings":
        return str(value)
    text = f"{value:.1%}" if pct else f"{value:.3f}" if key == "ece" else f"{value:.1f}"
    if before is None or key == "train_seconds":
        return text
    delta = value - before
    return text + (f" ({delta * 100:+.1f})" if pct else f" ({delta:+.3f})")


def _ran(result: ScanResult) -> set[str]:
    return {o.detector for o in result.outcomes if o.status == "ran"}


def _keyed(result: ScanResult, checks: set[str]) -> dict[tuple[str, str], Any]:
    """(failure mode, check) -> the most severe such finding."""
    out: dict[tuple[str, str], Any] = {}
    for f in result.sorted_findings():
        if f.detector in checks:
            out.setdefault((f.failure_mode, f.detector), f)
    return out


def compare_deep(train: Callable[[], Any] | None = None, x_train=None, y_train=None,
                 x_test=None, y_test=None, *, methods: Sequence[str] = DEEP_METHODS,
                 checks: Sequence[str] = DEFAULT_CHECKS, eps: float | None = None,
                 seed: int = 0, epochs: int = DEFAULT_EPOCHS,
                 randomized: Sequence[str] = RANDOMIZED, config=None,
                 progress: Progress | None = None) -> DeepComparison:
    """Train a baseline and one model per mitigation, scan each the same way, compare.

    ``train`` makes the untrained network (an ``nn.Module``); it is called once and every
    model starts from a copy, so all share the initial weights. Each is trained ``epochs``
    epochs with Adam (lr 3e-3, batches of 64, the same shuffles). With no arguments it is the
    digits demo's CNN and split (the first 1,400 marked digits train, 397 test). ``eps`` (the
    scan config's, 0.1, when None) is both the attack radius scanned and the one adversarial
    training uses. A method that cannot apply to the inputs is skipped with the reason.
    """
    started = time.perf_counter()
    from failwell.deep.deepscan import DeepScanConfig, available_checks

    methods, checks, randomized = tuple(methods), tuple(checks), tuple(randomized)
    _check_options(methods, checks, randomized, epochs, available_checks())
    config = config or DeepScanConfig()
    eps = config.eps if eps is None else eps
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not math.isfinite(eps) \
            or eps <= 0:
        raise InputError(f"eps must be a positive, finite attack radius, not {eps!r}.")
    config = replace(config, eps=float(eps), seed=seed)
    data = (x_train, y_train, x_test, y_test)
    if train is None and all(d is None for d in data):
        from failwell.deep.digits import cnn, digits_with_marker, split

        train = lambda: cnn(seed)  # noqa: E731
        data = split(*digits_with_marker())
    elif train is None or any(d is None for d in data):
        raise InputError("pass all of train (a function making the untrained network), "
                         "x_train, y_train, x_test and y_test, or none of them for the digits "
                         "demo.")
    x_train, y_train, x_test, y_test = _check_data(*data)
    lo, hi = float(min(x_train.min(), x_test.min())), float(max(x_train.max(), x_test.max()))
    if eps >= hi - lo:
        raise InputError(f"eps {eps:g} is as wide as the whole input range [{lo:g}, {hi:g}].")
    init = _initial_model(train, x_test, y_test)

    rows: list[dict[str, Any]] = []
    results: dict[str, ScanResult] = {}
    plan = ("baseline", *methods)
    for step, method in enumerate(plan):
        if progress:
            progress(method, step, len(plan))
        why = _not_applicable(method, x_train, lo, hi)
        if why:
            rows.append(_empty_row(method, "skipped", why))
            continue
        clock = time.perf_counter()
        try:
            model = _fit(method, copy.deepcopy(init), x_train, y_train, epochs=epochs,
                         seed=seed, eps=config.eps, bounds=(lo, hi), randomized=randomized)
        except FailwellError as exc:  # a missing extra, say: the other methods still run
            if method == "baseline":
                raise
            rows.append(_empty_row(method, "skipped", str(exc)))
            continue
        seconds = time.perf_counter() - clock
        result, row = _measure(method, model, x_test, y_test, checks, config, randomized)
        row["train_seconds"] = round(seconds, 2)
        results[method] = result
        rows.append(row)
    if progress:
        progress("done", len(plan), len(plan))
    measured = rows[0].get("corruption_error", {})
    held_out = tuple(f for f in measured if f in RENDERINGS and f not in randomized)
    settings = {"epochs": epochs, "seed": seed, "eps": config.eps, "optimizer": "adam",
                "lr": LEARNING_RATE, "batch_size": 64, "pgd_training_steps": AT_STEPS,
                "train_rows": len(x_train), "test_rows": len(x_test),
                "scan_config": config.to_dict()}
    return DeepComparison(rows, results, checks, randomized, held_out, settings,
                          round(time.perf_counter() - started, 2))


def _check_options(methods, checks, randomized, epochs, known_checks) -> None:
    if not methods:
        raise InputError(f"name at least one method: {', '.join(DEEP_METHODS)}.")
    for m in methods:
        if m not in DEEP_METHODS:
            raise InputError(f"unknown method {m!r}; known: {', '.join(DEEP_METHODS)}."
                             + did_you_mean(m, DEEP_METHODS))
    if len(set(methods)) != len(methods):
        raise InputError("each method may be named once.")
    if not checks:
        raise InputError("name at least one deep check (deep_scan would run them all).")
    for c in checks:
        if c not in known_checks:
            raise InputError(f"unknown check {c!r}; known: {', '.join(known_checks)}."
                             + did_you_mean(c, known_checks))
    if "drift" in checks:
        raise InputError("the drift check compares production inputs with the reference; a "
                         "mitigation comparison has none to give it.")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= 100:
        raise InputError(f"epochs must be a whole number from 1 to 100, not {epochs!r}.")
    unknown = [f for f in randomized if f not in RENDERINGS]
    if unknown or not randomized:
        raise InputError(f"randomized families must be some of {', '.join(RENDERINGS)}"
                         + (f", not {', '.join(map(repr, unknown))}." if unknown else "."))
    if set(randomized) >= set(RENDERINGS):
        raise InputError("hold out at least one family from domain randomization: otherwise "
                         "the corruption check only measures what training rehearsed.")


def _check_data(x_train, y_train, x_test, y_test):
    x_train, x_test = np.asarray(x_train), np.asarray(x_test)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim < 2 or len(x) == 0:
            raise InputError(f"x_{name} must hold at least one input, shaped (N, ...); it is "
                             f"{x.shape}.")
        if y.ndim != 1 or len(y) != len(x):
            raise InputError(f"y_{name} must be one label per input: x_{name} has {len(x)} "
                             f"inputs, y_{name} is shaped {y.shape}.")
        if y.dtype.kind not in "iu":
            raise InputError(f"y_{name} must be integer class labels, not {y.dtype}.")
        if x.dtype.kind != "f" or not np.isfinite(x).all():
            raise InputError(f"x_{name} must be finite floats (scale images to [0, 1]), "
                             f"not {x.dtype}.")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise InputError(f"train inputs are {x_train.shape[1:]} each, test inputs "
                         f"{x_test.shape[1:]}.")
    return (x_train.astype(np.float32), y_train.astype(np.int64), x_test.astype(np.float32),
            y_test.astype(np.int64))


def _initial_model(train: Callable[[], Any], x_test, y_test):
    """The untrained network, checked against the inputs before any training time is spent."""
    from failwell.deep.adapter import TorchClassifier
    from failwell.deep.deepscan import check_inputs

    require("torch", extra="torch", purpose="Comparing deep mitigations")
    model = train()
    if not hasattr(model, "parameters") or not hasattr(model, "state_dict"):
        raise InputError(f"train() must return an untrained torch nn.Module, not "
                         f"{type(model).__name__}.")
    check_inputs(TorchClassifier(copy.deepcopy(model), device="cpu"), x_test, y_test, None)
    return model


def _not_applicable(method: str, x: np.ndarray, lo: float, hi: float) -> str:
    if method != "domain-randomization":
        return ""
    if x.ndim != 4:
        return (f"it re-renders images (N, C, H, W); these inputs are {x.shape[1:]} per "
                "example")
    if lo < 0 or hi > 1:
        return f"it renders images scaled to [0, 1]; these span [{lo:g}, {hi:g}]"
    return ""


def _fit(method: str, model, x, y, *, epochs: int, seed: int, eps: float, bounds,
         randomized):
    """Train one model. Same epochs, optimizer, learning rate, batch size and shuffles for
    all; the global torch seed is reset so PGD's random starts repeat too."""
    torch = require("torch", extra="torch", purpose="Comparing deep mitigations")
    from failwell.deep.digits import train

    torch.manual_seed(seed)
    if method == "adversarial-training":
        from failwell.mitigate.adversarial import adversarial_training

        return adversarial_training(model, x, y, eps=eps, epochs=epochs, steps=AT_STEPS,
                                    lr=LEARNING_RATE, batch_size=64, seed=seed, bounds=bounds)
    augment = None
    if method == "domain-randomization":
        def augment(batch, rng):
            return randomize_rendering(batch, rng, families=randomized)
    return train(x, y, epochs=epochs, seed=seed, augment=augment, model=model)


def _measure(method, model, x, y, checks, config, randomized):
    from failwell.deep.adapter import TorchClassifier
    from failwell.deep.deepscan import deep_scan

    require("torch", extra="torch", purpose="Comparing deep mitigations").manual_seed(
        config.seed)  # PGD's random starts in the scan draw from torch's global generator
    clf = TorchClassifier(model)
    proba = clf.predict_proba(x)
    result = deep_scan(clf, x, y, checks=list(checks), config=config)
    row = _empty_row(method, "ran", "")
    row.update(test_rows=len(x), checks=sorted(_ran(result)),
               clean_accuracy=float((proba.argmax(axis=1) == y).mean()),
               ece=expected_calibration_error(proba, y), findings=len(result.findings),
               scan_seconds=result.timings.get("total"))
    curve = result.diagnostics.get("robustness_curve")
    if curve:
        at_eps = curve[-1]
        row.update(robust_accuracy=at_eps["accuracy"],
                   attack_success_rate=at_eps["success_rate"],
                   adversarial_confidence=at_eps["adversarial_confidence"])
        row["robust_accuracy_by_eps"] = {round(p["eps"], 6): p["accuracy"] for p in curve}
    table = result.diagnostics.get("corruptions")
    if table:
        ce = table["corruption_error"]
        seen = [v for f, v in ce.items() if f in randomized]
        held = [v for f, v in ce.items() if f in RENDERINGS and f not in randomized]
        row.update(mce=table["mce"], corruption_error=dict(ce),
                   ce_seen=float(np.mean(seen)) if seen else None,
                   ce_held_out=float(np.mean(held)) if held else None)
    return result, row


def _empty_row(method: str, status: str, note: str) -> dict[str, Any]:
    return {"method": method, "status": status, "note": note, "test_rows": None,
            "checks": [], "clean_accuracy": None, "robust_accuracy": None,
            "robust_accuracy_by_eps": {}, "attack_success_rate": None,
            "adversarial_confidence": None, "mce": None, "ce_seen": None,
            "ce_held_out": None, "corruption_error": {}, "ece": None, "findings": None,
            "train_seconds": None, "scan_seconds": None}
