"""Plots for the HTML report, embedded as inline SVG (self-contained, no network).

matplotlib is the optional ``plots`` extra; without it the report simply has no plots. A plot
that fails is left out with a warning: a plot must never cost the user the report.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable
from typing import Any

from failwell.findings import ScanResult


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plots_for(result: ScanResult) -> dict[str, list[str]]:
    """SVGs keyed by ``finding-<index in sorted order>`` and ``groups-<attribute>`` /
    ``reliability`` for the evidence overview."""
    plt = _pyplot()
    if plt is None:
        return {}
    out: dict[str, list[str]] = {}

    def add(key: str, draw: Callable[[Any, Any], str], data: Any) -> None:
        try:
            out.setdefault(key, []).append(draw(plt, data))
        except Exception as exc:
            warnings.warn(f"failwell: plot {key!r} skipped: {exc}", stacklevel=3)
            plt.close("all")

    for i, f in enumerate(result.sorted_findings()):
        if f.failure_mode == "group-unfairness" and f.evidence.get("groups"):
            add(f"finding-{i}", group_bars, f.evidence["groups"])
        if f.failure_mode == "overconfidence" and f.evidence.get("reliability"):
            add(f"finding-{i}", reliability_curve, f.evidence["reliability"])
    for attr, groups in result.diagnostics.get("groups", {}).items():
        add(f"groups-{attr}", group_bars, groups)
    if result.diagnostics.get("reliability"):
        add("reliability", reliability_curve, result.diagnostics["reliability"])
    if result.diagnostics.get("robustness_curve"):
        add("robustness", robustness_curve, result.diagnostics["robustness_curve"])
    if result.diagnostics.get("corruptions"):
        add("corruptions", corruption_curves, result.diagnostics["corruptions"])
    if result.diagnostics.get("loop_windows"):
        add("loop", loop_windows, result.diagnostics["loop_windows"])
    return out


def _svg(plt, fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _finite(x) -> float:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else 0.0


def group_bars(plt, groups: list[dict]) -> str:
    """Selection rate, FPR, FNR and precision per group, with 95 % intervals."""
    groups = [g for g in groups if not g.get("uncertain")]
    metrics = ["selection_rate", "false_positive_rate", "false_negative_rate", "precision"]
    fig, ax = plt.subplots(figsize=(7, 3))
    width = 0.8 / max(len(groups), 1)
    for j, g in enumerate(groups):
        values = [_finite(g.get(m)) for m in metrics]
        errs = [[max(v - g[f"{m}_ci"][0], 0.0) for m, v in zip(metrics, values, strict=True)],
                [max(g[f"{m}_ci"][1] - v, 0.0) for m, v in zip(metrics, values, strict=True)]]
        ax.bar([i + j * width for i in range(len(metrics))], values, width, yerr=errs,
               capsize=2, label=f"{g['group']} (n={g['n']})")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(metrics))])
    ax.set_xticklabels([m.replace("_", " ") for m in metrics])
    ax.set_ylim(0, 1)
    ax.set_ylabel("rate (95% CI)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _svg(plt, fig)


def reliability_curve(plt, bins: list[dict]) -> str:
    """Accuracy against confidence per bin; the diagonal is perfect calibration."""
    bins = [b for b in bins if b["n"]]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0.5, 1], [0.5, 1], "--", color="grey", label="perfect calibration")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-",
            label="model")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    return _svg(plt, fig)


def robustness_curve(plt, points: list[dict]) -> str:
    """Robust accuracy and the wrong answers' confidence against the attack radius."""
    fig, ax = plt.subplots(figsize=(4.5, 3))
    eps = [p["eps"] for p in points]
    ax.plot(eps, [p["accuracy"] for p in points], "o-", label="accuracy under attack")
    ax.plot(eps, [p["adversarial_confidence"] for p in points], "s--",
            label="confidence of wrong answers")
    ax.set_xlabel(f"eps ({points[0]['attack']})")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    return _svg(plt, fig)


def corruption_curves(plt, table: dict) -> str:
    """Accuracy against severity per corruption family, ImageNet-C style, with the mCE."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for family, row in table["accuracy"].items():
        severities = sorted(row, key=int)
        ax.plot([0, *map(int, severities)],
                [table["clean_accuracy"], *(row[s] for s in severities)], "o-", label=family,
                markersize=3)
    ax.set_xlabel("severity (0 = clean)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"mean corruption error {table['mce']:.1%} "
                 f"(clean error {1 - table['clean_accuracy']:.1%})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _svg(plt, fig)


def loop_windows(plt, rows: list[dict]) -> str:
    """Exposure Gini, the top items' share and the reward rate per time window, for the log
    and its reference: concentration that climbs while the proxy stays flat is the loop."""
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.8))
    for role, style in (("logs", "o-"), ("reference", "s--")):
        mine = [r for r in rows if r.get("log") == role]
        if not mine:
            continue
        x = list(range(len(mine)))
        for ax, key in zip(axes, ("gini", "top_share", "reward_rate"), strict=True):
            ax.plot(x, [_finite(r.get(key)) for r in mine], style, label=role, markersize=3)
    for ax, title in zip(axes, ("exposure Gini", "top items' share", "reward rate (proxy)"),
                         strict=True):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("window")
    axes[0].set_ylim(0, 1)
    axes[0].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return _svg(plt, fig)
