"""An HTML page for a training run: norms over steps, alerts marked (inline SVG, no
plotting library needed)."""

from __future__ import annotations

import math
from pathlib import Path

from jinja2 import Environment, select_autoescape

from failwell.training.store import read_run

WIDTH, HEIGHT, PAD = 640, 180, 30


def _polyline(points: list[tuple[int, float]], x_range, y_range) -> str:
    (x0, x1), (y0, y1) = x_range, y_range
    out = []
    for step, value in points:
        if value is None or not math.isfinite(value) or value <= 0:
            continue
        x = PAD + (step - x0) / max(x1 - x0, 1) * (WIDTH - 2 * PAD)
        y = HEIGHT - PAD - (math.log10(value) - y0) / max(y1 - y0, 1e-9) * (HEIGHT - 2 * PAD)
        out.append(f"{x:.1f},{y:.1f}")
    return " ".join(out)


def chart(series: dict[str, list[tuple[int, float]]], alerts: list[dict], title: str) -> dict:
    values = [math.log10(v) for pts in series.values() for _, v in pts
              if v is not None and math.isfinite(v) and v > 0]
    steps = [s for pts in series.values() for s, _ in pts]
    if not values:
        return {"title": title, "lines": [], "marks": []}
    x_range, y_range = (min(steps), max(steps)), (min(values), max(values))
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
    lines = [{"name": name, "points": _polyline(pts, x_range, y_range),
              "colour": colours[i % len(colours)]} for i, (name, pts) in enumerate(series.items())]
    marks = [{"x": PAD + (a["step"] - x_range[0]) / max(x_range[1] - x_range[0], 1)
              * (WIDTH - 2 * PAD), "label": f"step {a['step']}: {a['detail']}"}
             for a in alerts]
    return {"title": title, "lines": lines, "marks": marks}


def render(path: str | Path, run_id: int | None = None) -> str:
    run = read_run(path, run_id)
    series = run["series"]
    groups = [("Loss", {k: v for k, v in series.items() if k in ("loss", "canary_loss")}),
              ("Gradient norms (log)", {k: v for k, v in series.items()
                                        if k.startswith("grad_norm/")}),
              ("Weight norms (log)", {k: v for k, v in series.items()
                                      if k.startswith("weight_norm/")})]
    charts = [chart(s, run["alerts"], title) for title, s in groups if s]
    env = Environment(autoescape=select_autoescape(default=True))
    return env.from_string(_PAGE).render(run=run, charts=charts, width=WIDTH, height=HEIGHT)


def write(path: str | Path, out: str | Path, run_id: int | None = None) -> Path:
    out = Path(out)
    out.write_text(render(path, run_id), encoding="utf-8")
    return out


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Training run {{ run.name }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto}
svg{border:1px solid #ddd;background:#fff}.alert{color:#a33}</style></head><body>
<h1>Training run {{ run.name }} (#{{ run.run_id }})</h1>
<p>{{ run.alerts | length }} alert(s).</p>
<ul>{% for a in run.alerts %}<li class="alert">step {{ a.step }}: {{ a.kind }} in
{{ a.series }} — {{ a.detail }}</li>{% endfor %}</ul>
{% for c in charts %}<h2>{{ c.title }}</h2>
<svg width="{{ width }}" height="{{ height }}" role="img" aria-label="{{ c.title }}">
{% for l in c.lines %}<polyline fill="none" stroke="{{ l.colour }}" stroke-width="1.2"
points="{{ l.points }}"><title>{{ l.name }}</title></polyline>{% endfor %}
{% for m in c.marks %}<line x1="{{ m.x }}" x2="{{ m.x }}" y1="10" y2="{{ height - 10 }}"
stroke="#d62728" stroke-dasharray="4 3"><title>{{ m.label }}</title></line>{% endfor %}
</svg>{% endfor %}</body></html>
"""
