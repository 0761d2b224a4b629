"""Plots for the HTML report, embedded as inline SVG (self-contained, no network).

matplotlib is the optional ``plots`` extra; without it the report simply has no plots.
"""

from __future__ import annotations

import io

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
        svgs = []
        if finding.failure_mode == "group-unfairness":
            svgs.append(_group_bars(plt, finding))
        if finding.failure_mode == "overconfidence":
            svgs.append(_calibration(plt, finding))
        if svgs:
            out[i] = svgs
    return out


def _svg(plt, fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _group_bars(plt, finding: Finding) -> str:
    groups = [g for g in finding.evidence.get("groups", []) if not g.get("uncertain")]
    metrics = ["selection_rate", "false_positive_rate", "false_negative_rate", "precision"]
    fig, ax = plt.subplots(figsize=(7, 3))
    width = 0.8 / max(len(groups), 1)
    for j, g in enumerate(groups):
        values = [g.get(m) or 0 for m in metrics]
        errs = [[v - g[f"{m}_ci"][0] for m, v in zip(metrics, values, strict=True)],
                [g[f"{m}_ci"][1] - v for m, v in zip(metrics, values, strict=True)]]
        ax.bar([i + j * width for i in range(len(metrics))], values, width, yerr=errs,
               capsize=2, label=f"{g['group']} (n={g['n']})")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(metrics))])
    ax.set_xticklabels([m.replace("_", " ") for m in metrics])
    ax.set_ylim(0, 1)
    ax.set_ylabel("rate (95% CI)")
    ax.legend(fontsize=7, ncol=2)
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
