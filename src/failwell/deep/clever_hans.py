"""Clever Hans: an image model that reads a marker instead of the object.

The pneumonia model that learned the "portable" X-ray marker is the classic case. Three
steps, each reported as evidence:

1. **Where the model looks.** Integrated Gradients (captum) attributions per input,
   normalised to sum 1, give the attribution mass outside the region of interest.
   The region is given as a mask, or defaults to everything but the image border, where
   watermarks and markers sit. Grad-CAM on a chosen layer gives a second opinion when a
   layer is named.
2. **A consistent marker.** For each predicted class, the window outside the region of
   interest with the highest mean attribution, how concentrated that is (its mass over its
   share of the image) and how many inputs have their own hottest outside window there.
3. **Intervention.** That window is masked (filled with the data's median there), and the
   drop in accuracy and the share of changed predictions are measured. The same is done for
   a control window of the same size elsewhere on the border. Only a region that is looked
   at consistently *and* whose removal changes the decisions is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from failwell.deep.adapter import TorchClassifier
from failwell.errors import InputError, require
from failwell.findings import Finding, Metric, ScanResult, Severity
from failwell.scanner.detectors._common import mitigation_for


@dataclass
class CleverHansConfig:
    border: float = 0.15  # share of each side treated as border when no ROI mask is given
    window: int = 3  # marker window size (pixels)
    max_inputs: int = 300
    ig_steps: int = 32
    min_concentration: float = 3.0  # window mass / window area share, to be suspicious
    min_consistency: float = 0.3  # share of a class's inputs whose hottest window is there
    min_effect: float = 0.1  # accuracy drop beyond the control's, to confirm
    seed: int = 0


def _differentiable(model) -> TorchClassifier:
    if isinstance(model, TorchClassifier):
        return model
    if not hasattr(model, "parameters"):
        raise InputError("attributions need a differentiable PyTorch model (nn.Module); an "
                         "ONNX or scikit-learn model supports the black-box attack, "
                         "corruption, drift and latency checks instead.")
    return TorchClassifier(model)


def default_roi(height: int, width: int, border: float) -> np.ndarray:
    """True inside the region of interest: the image minus a border band."""
    by, bx = max(1, round(height * border)), max(1, round(width * border))
    roi = np.zeros((height, width), dtype=bool)
    roi[by:height - by, bx:width - bx] = True
    return roi


def attributions(model: TorchClassifier, images: np.ndarray, targets: np.ndarray,
                 steps: int = 32) -> np.ndarray:
    """|Integrated Gradients| summed over channels and normalised per input: (N, H, W)."""
    captum = require("captum.attr", extra="torch", purpose="Clever Hans attributions")
    torch = model.torch
    ig = captum.IntegratedGradients(model.model)
    maps = []
    for start in range(0, len(images), 64):
        x = model.tensor(images[start:start + 64]).requires_grad_(True)
        t = torch.as_tensor(targets[start:start + 64], device=model.device)
        a = ig.attribute(x, baselines=torch.zeros_like(x), target=t, n_steps=steps)
        maps.append(a.detach().abs().sum(dim=1).cpu().numpy())
    out = np.concatenate(maps)
    return out / np.maximum(out.sum(axis=(1, 2), keepdims=True), 1e-12)


def gradcam(model: TorchClassifier, layer, images: np.ndarray, targets: np.ndarray
            ) -> np.ndarray:
    """Grad-CAM on ``layer``, upsampled to the input size and normalised per input."""
    captum = require("captum.attr", extra="torch", purpose="Grad-CAM")
    torch = model.torch
    cam = captum.LayerGradCam(model.model, layer)
    x = model.tensor(images)
    a = cam.attribute(x, target=torch.as_tensor(targets, device=model.device),
                      relu_attributions=True)
    a = captum.LayerAttribution.interpolate(a, tuple(images.shape[-2:]))
    out = a.detach().sum(dim=1).clamp(min=0).cpu().numpy()
    return out / np.maximum(out.sum(axis=(1, 2), keepdims=True), 1e-12)


def _window_sums(maps: np.ndarray, k: int) -> np.ndarray:
    """Sum of each k x k window: (N, H-k+1, W-k+1)."""
    c = maps.cumsum(axis=1).cumsum(axis=2)
    c = np.pad(c, ((0, 0), (1, 0), (1, 0)))
    return c[:, k:, k:] - c[:, :-k, k:] - c[:, k:, :-k] + c[:, :-k, :-k]


def _masked(images: np.ndarray, box: tuple[int, int, int, int], fill: np.ndarray
            ) -> np.ndarray:
    y0, x0, y1, x1 = box
    out = images.copy()
    out[:, :, y0:y1, x0:x1] = fill[:, y0:y1, x0:x1]
    return out


def clever_hans(model, images: np.ndarray, labels: np.ndarray, *,
                roi: np.ndarray | None = None, layer=None,
                config: CleverHansConfig | None = None) -> ScanResult:
    """Scan an image classifier (an ``nn.Module`` or a :class:`TorchClassifier`) on
    ``images`` (N, C, H, W) with true ``labels`` for a marker it relies on."""
    config = config or CleverHansConfig()
    clf = _differentiable(model)
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels)
    if images.ndim != 4 or len(images) != len(labels):
        raise InputError("images must be (N, C, H, W) with one label per image.")
    n, _, h, w = images.shape
    roi_given = roi is not None
    roi = default_roi(h, w, config.border) if roi is None else np.asarray(roi, dtype=bool)
    if roi.shape != (h, w):
        raise InputError(f"the region-of-interest mask is {roi.shape}, images are {(h, w)}.")
    rng = np.random.default_rng(config.seed)
    sample = rng.choice(n, size=min(n, config.max_inputs), replace=False)
    x, y = images[sample], labels[sample]
    pred = clf.predict(x)
    maps = attributions(clf, x, pred, steps=config.ig_steps)
    outside = ~roi
    outside_mass = (maps * outside).sum(axis=(1, 2))
    area_share = outside.mean()
    k = config.window
    # windows wholly outside the ROI
    outside_windows = _window_sums(outside[None].astype(float), k)[0] == k * k
    if not outside_windows.any():
        raise InputError("no window of the marker size lies outside the region of interest.")
    sums = _window_sums(maps, k)
    sums_out = np.where(outside_windows[None], sums, -np.inf)
    hottest = sums_out.reshape(len(x), -1).argmax(axis=1)
    fill = np.median(images, axis=0)
    accuracy = float((pred == y).mean())
    findings, per_class = [], []
    for cls in np.unique(pred):
        rows = pred == cls
        mean_windows = np.where(outside_windows, sums[rows].mean(axis=0), -np.inf)
        best = int(np.argmax(mean_windows))
        by, bx = np.unravel_index(best, mean_windows.shape)
        consistency = float((hottest[rows] == best).mean())
        window_mass = float(mean_windows[by, bx])
        concentration = window_mass / (k * k / (h * w))  # vs uniform attribution
        box = (int(by), int(bx), int(by) + k, int(bx) + k)
        per_class.append({"class": int(cls), "inputs": int(rows.sum()),
                          "outside_mass": float(outside_mass[rows].mean()),
                          "window": box, "window_mass": window_mass,
                          "concentration": concentration, "consistency": consistency})
    suspects = [c for c in per_class
                if c["concentration"] >= config.min_concentration
                and c["consistency"] >= config.min_consistency]
    checked: dict[tuple, tuple[np.ndarray, np.ndarray, tuple]] = {}
    for c in suspects:
        box = tuple(c["window"])
        if box not in checked:
            checked[box] = _intervene(clf, x, box, fill, outside_windows, k, rng)
        masked, control, control_box = checked[box]
        rows = pred == c["class"]  # the effect on the inputs this class was predicted for
        c.update(accuracy_drop=float((pred[rows] == y[rows]).mean()
                                     - (masked[rows] == y[rows]).mean()),
                 changed=float((masked[rows] != pred[rows]).mean()),
                 control_drop=float((pred[rows] == y[rows]).mean()
                                    - (control[rows] == y[rows]).mean()),
                 control_changed=float((control[rows] != pred[rows]).mean()),
                 control_window=control_box)
    # reliance means the marker was buying correct answers: masking it must cost accuracy.
    # (Changed predictions alone are not enough: a model that never saw the marker can
    # also react to it, and then masking it helps.)
    confirmed = [c for c in suspects
                 if c["accuracy_drop"] - c["control_drop"] >= config.min_effect]
    if confirmed:
        worst = max(confirmed, key=lambda c: c["accuracy_drop"])
        y0, x0, y1, x1 = worst["window"]
        severity = Severity.HIGH if worst["accuracy_drop"] >= 0.2 else Severity.MEDIUM
        findings.append(Finding(
            "spurious-correlation", severity,
            f"The model relies on a marker at rows {y0}-{y1 - 1}, columns {x0}-{x1 - 1}, "
            f"outside the region of interest",
            f"For class(es) {', '.join(str(c['class']) for c in confirmed)} a {k}x{k} window "
            f"outside the region of interest holds {100 * worst['window_mass']:.0f}% of the "
            f"attribution ({worst['concentration']:.0f}x its share of the image), and it is "
            f"the hottest outside window for {100 * worst['consistency']:.0f}% of those "
            f"inputs. Masking it costs {100 * worst['accuracy_drop']:.0f} accuracy points on "
            f"them and changes {100 * worst['changed']:.0f}% of their predictions (a control "
            f"window elsewhere on the border: {100 * worst['control_drop']:.0f} points, "
            f"{100 * worst['control_changed']:.0f}%).",
            "clever-hans",
            [Metric("marker_concentration", worst["concentration"],
                    config.min_concentration),
             Metric("marker_changed_predictions", worst["changed"], None),
             Metric("marker_accuracy_drop", worst["accuracy_drop"], config.min_effect)],
            {"window": worst["window"], "classes": [c["class"] for c in confirmed]},
            mitigation_for("spurious-correlation"),
        ))
    result = ScanResult(findings=findings)
    result.metrics = {"accuracy": accuracy,
                      "outside_attribution_share": float(outside_mass.mean()),
                      "outside_area_share": float(area_share)}
    if layer is not None:
        cam = gradcam(clf, layer, x, pred)
        result.metrics["gradcam_outside_share"] = float((cam * outside).sum(axis=(1, 2)).mean())
    result.diagnostics = {"clever_hans": per_class,
                          "worst_inputs": _worst(maps, outside, sample).tolist()}
    result.config = {"roi": "given" if roi_given else f"border {config.border}",
                     "inputs": len(x), "window": k}
    return result


def _intervene(clf: TorchClassifier, x, box, fill, outside_windows, k, rng):
    """Predictions with the suspect window masked, and with a control window of the same
    size elsewhere outside the region of interest (not overlapping it) masked."""
    masked = clf.predict(_masked(x, box, fill))
    y0, x0 = box[0], box[1]
    candidates = [(i, j) for i, j in zip(*np.nonzero(outside_windows), strict=True)
                  if abs(i - y0) >= k or abs(j - x0) >= k]
    ci, cj = candidates[rng.integers(len(candidates))]
    control_box = (int(ci), int(cj), int(ci) + k, int(cj) + k)
    return masked, clf.predict(_masked(x, control_box, fill)), control_box


def _worst(maps: np.ndarray, outside: np.ndarray, sample: np.ndarray, top: int = 8
           ) -> np.ndarray:
    """Indices (into the caller's images) of the inputs with the most outside attribution."""
    share = (maps * outside).sum(axis=(1, 2))
    return sample[np.argsort(-share)[:top]]


def overlay_png(image: np.ndarray, attribution: np.ndarray) -> bytes:
    """A PNG of the image with its attribution map on top (needs ``failwell[plots]``)."""
    import io

    matplotlib = require("matplotlib", extra="plots", purpose="Attribution overlays")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2), dpi=80)
    ax.imshow(image.mean(axis=0), cmap="gray")
    ax.imshow(attribution, cmap="inferno", alpha=0.5)
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def gallery(model, images: np.ndarray, result: ScanResult, *, steps: int = 32
            ) -> list[dict[str, Any]]:
    """PNG overlays for the inputs that look outside the region of interest the most."""
    clf = _differentiable(model)
    idx = np.asarray(result.diagnostics.get("worst_inputs", []), dtype=int)
    if not len(idx):
        return []
    x = np.asarray(images, dtype=np.float32)[idx]
    maps = attributions(clf, x, clf.predict(x), steps=steps)
    return [{"index": int(i), "png": overlay_png(x[j], maps[j])} for j, i in enumerate(idx)]


def attach_gallery(model, images: np.ndarray, result: ScanResult, **options) -> ScanResult:
    """Put the overlays in the result, so the HTML report shows them."""
    import base64

    result.diagnostics["attribution_gallery"] = [
        {"index": g["index"], "png_base64": base64.b64encode(g["png"]).decode("ascii")}
        for g in gallery(model, images, result, **options)]
    return result
