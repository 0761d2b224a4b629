"""Deep-learning scan speed on the digits demo.

    python benchmarks/bench_deep.py

1. PGD-10 (L-inf, eps 0.1) on 1,000 digits images with the demo CNN: failwell's
   ``white_box`` (numpy in, numpy out, as the scan calls it) against ``captum.robust.PGD``
   called directly on tensors with the same loss, step size, steps and random start.
   Runs alternate, five of each; the ratio of medians is reported (target <= 1.2x).
   captum is the library failwell uses for PGD; torchattacks cannot be installed here
   (it requires torchvision, which has no build for this machine).
2. The whole deep scan of the demo's marker model, loaded from its .pt2 file as
   ``failwell deep scan`` does: attributions with Grad-CAM, attacks, corruptions and
   latency with cold start (target < 120 s).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from captum.robust import PGD

from failwell.deep.adapter import TorchClassifier
from failwell.deep.adversarial import white_box
from failwell.deep.deepscan import DeepScanConfig, deep_scan
from failwell.deep.demo import export
from failwell.deep.digits import digits_with_marker, split, train
from failwell.deep.loading import load_network

EPS, STEPS, IMAGES, REPEATS = 0.1, 10, 1000, 5


def captum_direct(model, x, y) -> torch.Tensor:
    loss = torch.nn.CrossEntropyLoss(reduction="none")
    xt = torch.as_tensor(x).requires_grad_(True)
    warnings.filterwarnings("ignore", message="Input Tensor .* did not already require")
    return PGD(model, loss_func=loss, lower_bound=0.0, upper_bound=1.0).perturb(
        xt, radius=EPS, step_size=2.5 * EPS / STEPS, step_num=STEPS,
        target=torch.as_tensor(y), norm="Linf", random_start=True)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    images, labels = digits_with_marker()
    train_x, train_y, test_x, test_y = split(images, labels)
    t0 = time.perf_counter()
    model = train(train_x, train_y)
    print(f"demo CNN trained in {time.perf_counter() - t0:.1f} s")

    x, y = images[:IMAGES], labels[:IMAGES]
    clf = TorchClassifier(model, device="cpu")
    ours, theirs = [], []
    for _ in range(REPEATS):
        ours.append(timed(lambda: white_box(clf, x, y, EPS, "pgd-linf", steps=STEPS)))
        theirs.append(timed(lambda: captum_direct(model, x, y)))
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"PGD-10 on {IMAGES} images: failwell {statistics.median(ours):.3f} s, captum "
          f"direct {statistics.median(theirs):.3f} s, ratio {ratio:.2f}x (target <= 1.2x)")

    with tempfile.TemporaryDirectory() as tmp:
        path = export(model, train_x, Path(tmp) / "digits-marker.pt2")
        config = DeepScanConfig(layer="3", latency_budget_ms=5.0)
        t0 = time.perf_counter()
        result = deep_scan(load_network(path), test_x, test_y, config=config,
                           spec=str(path))
        total = time.perf_counter() - t0
    parts = ", ".join(f"{o.detector} {o.seconds:.1f} s" for o in result.outcomes)
    print(f"whole deep scan of the digits demo: {total:.1f} s (target < 120 s): {parts}")
    print(f"findings: {', '.join(f.failure_mode for f in result.findings)}")
    ok = ratio <= 1.2 and total < 120
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
