"""Plots for the HTML report, embedded as inline SVG (self-contained, no network).

matplotlib is the optional ``plots`` extra; without it the report simply has no plots.
"""

from __future__ import annotations

import io
import math
import warnings

from failwell.findings import Finding, ScanResult


def plots_for(result: ScanResult) -> dict[int, list[str]]:
    """Finding index (in sorted order) -> list of SVG strings."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    out: dict[int, list[str]] = {}
    for i, finding in enumerate(result.sorted_findings()):
        draw = PLOTTERS.get(finding.failure_mode)
        if draw is None:
            continue
        try:
            out[i] = [draw(plt, finding)]
        except Exception as exc:  # a plot must never cost the user the report
            warnings.warn(f"failwell: plot for {finding.title!r} skipped: {exc}", stacklevel=2)
            plt.close("all")
    return out


def _finite(x) -> float:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else 0.0


def _svg(plt, fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _group_bars(plt, finding: Finding) -> str:
    groups = [g for g in finding.evidence.get("groups", []) if not g.get("uncertain")]
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


def _calibration(plt, finding: Finding) -> str:
    bins = [b for b in finding.evidence.get("reliability", []) if b["n"]]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0.5, 1], [0.5, 1], "--", color="grey", label="perfect calibration")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-",
            label="model")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    return _svg(plt, fig)


PLOTTERS = {"group-unfairness": _group_bars, "overconfidence": _calibration}
