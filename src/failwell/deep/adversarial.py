"""Adversarial fragility: how much accuracy survives a worst-case perturbation of size eps.

* White-box, for differentiable models: FGSM and L-inf PGD from ``captum.robust``.
  Captum is already the attribution dependency, is maintained by the PyTorch team, and its
  attacks take the same model and target arguments; adding torchattacks or ART would bring a
  second, larger stack for the same attacks. L2 PGD is written out here (twenty lines):
  captum 0.9's L2 projection fails on batched inputs.
* Black-box, for any model with ``predict_proba`` (scikit-learn included): a score-based
  random search in the spirit of the Square attack (Andriushchenko et al., 2020). It tries
  random sign patterns on random blocks of features, keeps a change when it lowers the
  true class's margin, and stays within the L-inf ball.

Reported per eps: robust accuracy, attack success rate (correct inputs turned wrong), and
the confidence of the adversarial predictions (the "gibbon with 99 % confidence" case).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from failwell.deep.adapter import TorchClassifier
from failwell.errors import InputError, require
from failwell.findings import Finding, Metric, ScanResult, Severity
from failwell.scanner.detectors._common import mitigation_for

ATTACKS = ("fgsm", "pgd-linf", "pgd-l2", "random-search")


@dataclass
class AttackPoint:
    attack: str
    eps: float
    accuracy: float  # on the adversarial inputs
    success_rate: float  # of the correctly classified inputs, the share flipped
    adversarial_confidence: float  # mean top probability on the flipped inputs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def white_box(clf: TorchClassifier, x: np.ndarray, y: np.ndarray, eps: float,
              attack: str = "pgd-linf", *, steps: int = 10, bounds=(0.0, 1.0)) -> np.ndarray:
    """Adversarial inputs for a differentiable model."""
    robust = require("captum.robust", extra="torch", purpose="FGSM and PGD attacks")
    torch = clf.torch
    xt = clf.tensor(x).requires_grad_(True)  # captum warns when it has to set this
    yt = torch.as_tensor(y, device=clf.device)
    if eps == 0:
        return x.copy()
    with warnings.catch_warnings():
        # captum's PGD makes fresh tensors each step and warns that it set requires_grad
        warnings.filterwarnings("ignore", message="Input Tensor .* did not already require")
        return _attack(robust, clf, xt, yt, eps, attack, steps, bounds)


def _attack(robust, clf, xt, yt, eps, attack, steps, bounds) -> np.ndarray:
    # the loss is given explicitly: with captum's default, PGD at eps 0.1 left a digits CNN
    # at 99 % accuracy, where cross-entropy brings it to 49 %
    loss = clf.torch.nn.CrossEntropyLoss(reduction="none")
    if attack == "fgsm":
        adv = robust.FGSM(clf.model, loss_func=loss, lower_bound=bounds[0],
                          upper_bound=bounds[1]).perturb(xt, epsilon=eps, target=yt)
    elif attack == "pgd-linf":
        adv = robust.PGD(clf.model, loss_func=loss, lower_bound=bounds[0],
                         upper_bound=bounds[1]).perturb(
            xt, radius=eps, step_size=2.5 * eps / steps, step_num=steps, target=yt,
            norm="Linf", random_start=True)
    elif attack == "pgd-l2":
        adv = _pgd_l2(clf, xt, yt, eps, steps, bounds)
    else:
        raise InputError(f"unknown white-box attack {attack!r}; use fgsm, pgd-linf, pgd-l2.")
    return adv.detach().cpu().numpy()


def _pgd_l2(clf, x, y, eps: float, steps: int, bounds):
    """PGD in the L2 ball, written out: captum 0.9's L2 projection fails on batched inputs
    (it divides a (N, D) tensor by an (N,) norm)."""
    torch = clf.torch
    per_input = (len(x),) + (1,) * (x.dim() - 1)
    generator = torch.Generator(device=x.device).manual_seed(0)
    delta = torch.randn(x.shape, generator=generator, device=x.device)
    delta = delta / delta.flatten(1).norm(dim=1).view(per_input) * eps * 0.5
    x = x.detach()
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(clf.model(x + delta), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            step = grad / grad.flatten(1).norm(dim=1).clamp(min=1e-12).view(per_input)
            delta = delta + 2.5 * eps / steps * step
            norm = delta.flatten(1).norm(dim=1).view(per_input)
            delta = delta * torch.clamp(eps / norm.clamp(min=1e-12), max=1.0)
            delta = (x + delta).clamp(*bounds) - x
    return (x + delta).detach()


def random_search(predict_proba, x: np.ndarray, y: np.ndarray, eps: float, *,
                  queries: int = 200, block: float = 0.1, seed: int = 0,
                  bounds=(0.0, 1.0)) -> np.ndarray:
    """Score-based black-box L-inf attack on any ``predict_proba``."""
    rng = np.random.default_rng(seed)
    flat = x.reshape(len(x), -1).astype(np.float64)
    d = flat.shape[1]
    adv = np.clip(flat + eps * rng.choice([-1.0, 1.0], size=flat.shape), *bounds)

    def margin(z: np.ndarray) -> np.ndarray:
        p = predict_proba(z.reshape(x.shape).astype(x.dtype))
        true = p[np.arange(len(y)), y]
        other = np.where(np.eye(p.shape[1], dtype=bool)[y], -np.inf, p).max(axis=1)
        return true - other

    best = margin(adv)
    size = max(1, round(block * d))
    for _ in range(queries):
        active = best > 0  # still classified correctly: keep searching
        if not active.any():
            break
        idx = rng.integers(0, d - size + 1, size=len(x))
        trial = adv.copy()
        for i in np.nonzero(active)[0]:
            sl = slice(idx[i], idx[i] + size)
            trial[i, sl] = np.clip(flat[i, sl] + eps * rng.choice([-1.0, 1.0], size=size),
                                   *bounds)
        m = margin(trial)
        better = active & (m < best)
        adv[better], best[better] = trial[better], m[better]
    return adv.reshape(x.shape).astype(x.dtype)


def robustness_curve(model, x: np.ndarray, y: np.ndarray, eps_values, *,
                     attack: str = "pgd-linf", bounds=(0.0, 1.0), steps: int = 10,
                     queries: int = 200) -> list[AttackPoint]:
    """Robust accuracy against eps. ``model`` is an ``nn.Module``, a TorchClassifier, or
    (random-search only) anything with ``predict_proba``."""
    if attack not in ATTACKS:
        raise InputError(f"attack {attack!r} is not one of {', '.join(ATTACKS)}.")
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if attack == "random-search":
        proba = model.predict_proba
    else:
        clf = model if isinstance(model, TorchClassifier) else TorchClassifier(model)
        proba = clf.predict_proba
    clean = proba(x).argmax(axis=1) == y
    points = []
    for eps in eps_values:
        adv = (random_search(proba, x, y, eps, queries=queries, bounds=bounds)
               if attack == "random-search"
               else white_box(clf, x, y, eps, attack, steps=steps, bounds=bounds))
        p = proba(adv)
        pred = p.argmax(axis=1)
        flipped = clean & (pred != y)
        points.append(AttackPoint(
            attack, float(eps), float((pred == y).mean()),
            float(flipped.sum() / max(clean.sum(), 1)),
            float(p[flipped].max(axis=1).mean()) if flipped.any() else 0.0))
    return points


def adversarial_fragility(model, x, y, *, eps: float, attack: str = "pgd-linf",
                          max_drop: float = 0.3, **options) -> ScanResult:
    """A finding when robust accuracy at ``eps`` falls more than ``max_drop`` below clean."""
    points = robustness_curve(model, x, y, [i * eps / 4 for i in range(5)], attack=attack,
                              **options)
    clean, at_eps = points[0], points[-1]
    drop = clean.accuracy - at_eps.accuracy
    findings = []
    if drop > max_drop:
        findings.append(Finding(
            "adversarial-fragility", Severity.HIGH if drop > 0.5 else Severity.MEDIUM,
            f"{attack} at eps {eps:g} cuts accuracy from {clean.accuracy:.0%} to "
            f"{at_eps.accuracy:.0%}",
            f"{at_eps.success_rate:.0%} of correctly classified inputs were turned wrong by a "
            f"perturbation of at most {eps:g} ({attack}); the wrong answers came with "
            f"{at_eps.adversarial_confidence:.0%} mean confidence.",
            "adversarial",
            [Metric("robust_accuracy_drop", drop, max_drop),
             Metric("attack_success_rate", at_eps.success_rate, None),
             Metric("adversarial_confidence", at_eps.adversarial_confidence, None)],
            {"curve": [p.to_dict() for p in points]},
            mitigation_for("adversarial-fragility")))
    result = ScanResult(findings=findings)
    result.metrics = {"clean_accuracy": clean.accuracy, "robust_accuracy": at_eps.accuracy}
    result.diagnostics = {"robustness_curve": [p.to_dict() for p in points]}
    return result
