"""Charts for the dashboard as plain SVG geometry (rendered by the template, no JavaScript):
incidents per period, stacked by tag."""

from __future__ import annotations

from typing import Any

COLORS = ("#4a6fa5", "#d1793f", "#5b9a68", "#b54a5e", "#8064a2", "#c2a93b", "#7f8c8d")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 220, 36, 24, 8


def stacked_bars(counts: dict[str, dict[str, int]], *, last: int = 12, top: int = 6
                 ) -> dict[str, Any]:
    """Bars for the ``last`` periods up to the latest one with incidents (empty periods
    included: a quiet quarter is part of the story), one colour per tag for the ``top``
    most frequent tags and one for the rest ("other"). ``counts`` is {tag: {period: n}} as
    in ``learning_stats``; undated incidents are left out of a chart over time."""
    dated = {p for c in counts.values() for p in c if p != "undated"}
    periods = _leading_up_to(max(dated), last) if dated else []
    totals = {tag: sum(c.get(p, 0) for p in periods) for tag, c in counts.items()}
    ranked = [t for t, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])) if n]
    shown, rest = ranked[:top], ranked[top:]
    series = [(tag, counts[tag]) for tag in shown]
    if rest:
        series.append(("other", {p: sum(counts[t].get(p, 0) for t in rest) for p in periods}))
    heights = [sum(c.get(p, 0) for _, c in series) for p in periods]
    peak = max(heights, default=0) or 1
    plot_h, slot = HEIGHT - BOTTOM - TOP, (WIDTH - LEFT) / max(len(periods), 1)
    bars, labels = [], []
    for i, period in enumerate(periods):
        x, y = LEFT + i * slot + slot * 0.15, HEIGHT - BOTTOM
        for k, (tag, c) in enumerate(series):
            n = c.get(period, 0)
            if n:
                h = plot_h * n / peak
                y -= h
                bars.append({"x": round(x, 1), "y": round(y, 1), "w": round(slot * 0.7, 1),
                             "h": round(h, 1), "color": COLORS[k % len(COLORS)],
                             "title": f"{period} · {tag}: {n}"})
        labels.append({"x": round(LEFT + (i + 0.5) * slot, 1), "text": period})
    return {"width": WIDTH, "height": HEIGHT, "bars": bars, "labels": labels,
            "peak": peak, "base": HEIGHT - BOTTOM, "top": TOP, "left": LEFT,
            "legend": [{"tag": tag, "color": COLORS[k % len(COLORS)]}
                       for k, (tag, _) in enumerate(series)]}


def _leading_up_to(latest: str, n: int) -> list[str]:
    """The ``n`` consecutive periods ending at ``latest`` ("2024", "2024-Q3", "2024-07")."""
    year, _, part = latest.partition("-")
    if not part:
        return [str(y) for y in range(int(year) - n + 1, int(year) + 1)]
    per_year, prefix = (4, "Q") if part.startswith("Q") else (12, "")
    index = int(year) * per_year + int(part.lstrip("Q")) - 1
    out = []
    for i in range(index - n + 1, index + 1):
        y, k = divmod(i, per_year)
        out.append(f"{y}-{prefix}{k + 1}" if prefix else f"{y}-{k + 1:02d}")
    return out
