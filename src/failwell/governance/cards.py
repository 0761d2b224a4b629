"""Model cards (Mitchell et al., 2019) and datasheets for datasets (Gebru et al., 2021).

A draft is generated from the project and its latest scan; each section records where its
text came from. Sections nothing can fill are left empty and listed as missing, never
invented; people complete them (``failwell card model P --set section=text``), and every
save is a new version.
"""

from __future__ import annotations

from typing import Any

from failwell.governance.project import Project

MODEL_CARD = {
    "model_details": "Model details",
    "intended_use": "Intended use",
    "out_of_scope_use": "Out-of-scope use",
    "factors": "Factors",
    "metrics": "Metrics",
    "evaluation_data": "Evaluation data",
    "training_data": "Training data",
    "ethical_considerations": "Ethical considerations",
    "caveats_and_recommendations": "Caveats and recommendations",
}
DATASHEET = {
    "motivation": "Motivation",
    "composition": "Composition",
    "collection": "Collection process",
    "preprocessing": "Preprocessing, cleaning and labelling",
    "uses": "Uses",
    "distribution": "Distribution",
    "maintenance": "Maintenance",
}
SECTIONS = {"model": MODEL_CARD, "data": DATASHEET}
TITLES = {"model": "Model card", "data": "Datasheet"}


def _section(text: str, source: str) -> dict[str, str]:
    return {"text": text.strip(), "source": source if text.strip() else ""}


def generate(kind: str, project: Project, scan: dict[str, Any] | None) -> dict[str, dict]:
    """A draft: section -> {"text", "source"}; empty text means missing."""
    sections = {key: _section("", "") for key in SECTIONS[kind]}
    fill = _model_card if kind == "model" else _datasheet
    sections.update(fill(project, scan))
    return sections


def _scan_facts(scan: dict[str, Any]) -> tuple[dict, dict, list[dict]]:
    result = scan["result"]
    return result.get("config", {}), result.get("metrics", {}), result.get("findings", [])


def _model_card(project: Project, scan: dict[str, Any] | None) -> dict[str, dict]:
    out = {
        "model_details": _section(
            f"{project.name}. Owner: {project.owner or 'not stated'}. Risk level: "
            f"{project.risk}.", "project"),
        "intended_use": _section(f"{project.decision} Problem: {project.problem}", "project"),
        "out_of_scope_use": _section(project.out_of_scope, "project"),
        "training_data": _section("; ".join(
            f"{d.name} (owner {d.owner or 'unassigned'}, {d.readiness})"
            for d in project.data_sources), "project"),
    }
    criteria = "; ".join(f"{c.metric}: target {c.target:g} ({c.direction}), measured by "
                         f"{c.measurement}, {c.when}" for c in project.success_criteria)
    if scan is None:
        out["metrics"] = _section(f"Success criteria: {criteria}.", "project")
        return out
    config, metrics, findings = _scan_facts(scan)
    roles = config.get("roles", {})
    protected = roles.get("protected") or []
    where = f"scan {scan['id']}"
    if protected:
        out["factors"] = _section("Evaluated across " + ", ".join(protected) + ".", where)
    shown = {k: v for k, v in metrics.items() if "." not in k}
    out["metrics"] = _section(
        f"Success criteria: {criteria}. Latest scan: "
        + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()) + ".", f"project, {where}")
    out["evaluation_data"] = _section(
        f"{config.get('n_rows', '?')} rows (data fingerprint "
        f"{scan['result'].get('data_fingerprint', '')[:19]}), target "
        f"{roles.get('target', '?')}.", where)
    fairness = [f for f in findings if f["failure_mode"] in (
        "group-unfairness", "counterfactual-unfairness", "historical-bias", "proxy-feature",
        "underrepresentation")]
    if protected:
        out["ethical_considerations"] = _section(
            "; ".join(f"{f['severity']}: {f['title']}" for f in fairness)
            or f"The latest scan found no fairness finding across {', '.join(protected)}.",
            where)
    if config.get("kind") == "mitigation-comparison" and config.get("chosen"):
        compared = [m["method"] for m in config.get("comparison", {}).get("methods", [])
                    if m.get("status") == "ran" and m["method"] != "baseline"]
        line = (f"Mitigation: {config['chosen']}, chosen from a measured comparison of "
                f"{', '.join(compared)} on the same held-out rows. Its price against the "
                f"unmitigated model: {config.get('price') or 'none measured'}.")
        text = out.get("ethical_considerations", _section("", ""))["text"]
        out["ethical_considerations"] = _section(f"{line} {text}".strip(), where)
    out["caveats_and_recommendations"] = _section(
        "; ".join(f"{f['severity']}: {f['title']} ({f.get('mitigation', '')})".replace(" ()", "")
                  for f in findings) or "The latest scan raised no finding.", where)
    return out


def _datasheet(project: Project, scan: dict[str, Any] | None) -> dict[str, dict]:
    out = {
        "motivation": _section(f"Collected for: {project.problem}", "project"),
        "collection": _section("; ".join(
            f"{d.name}: owner {d.owner or 'unassigned'}, readiness {d.readiness}"
            for d in project.data_sources), "project"),
        "uses": _section(f"To support the decision: {project.decision}", "project"),
    }
    owners = sorted({d.owner for d in project.data_sources if d.owner})
    if owners:
        out["maintenance"] = _section(f"Maintained by {', '.join(owners)}.", "project")
    if scan is not None:
        config, metrics, _ = _scan_facts(scan)
        roles = config.get("roles", {})
        groups = scan["result"].get("diagnostics", {}).get("groups", {})
        parts = [f"{config.get('n_rows', '?')} rows; target {roles.get('target', '?')}"]
        if "base_rate" in metrics:
            parts.append(f"base rate {metrics['base_rate']:.3g}")
        for attribute, table in groups.items() if isinstance(groups, dict) else []:
            if isinstance(table, list):
                sizes = ", ".join(f"{g.get('group')}: {g.get('n')}" for g in table
                                  if isinstance(g, dict) and "n" in g)
                if sizes:
                    parts.append(f"{attribute} ({sizes})")
        out["composition"] = _section("; ".join(parts) + ".", f"scan {scan['id']}")
    return out


def missing(sections: dict[str, dict]) -> list[str]:
    return [key for key, value in sections.items() if not value.get("text")]


def to_markdown(kind: str, project: Project, card: dict[str, Any]) -> str:
    names = SECTIONS[kind]
    lines = [f"# {TITLES[kind]}: {project.name}", "",
             f"Version {card['version']}, {card['created_at']} by {card['created_by']}.", ""]
    gaps = missing(card["sections"])
    if gaps:
        lines += ["**Missing sections:** " + ", ".join(names[g] for g in gaps), ""]
    for key, title in names.items():
        section = card["sections"].get(key, {})
        lines += [f"## {title}", "", section.get("text") or "_Missing: to be completed._"]
        if section.get("source"):
            lines += ["", f"_Source: {section['source']}_"]
        lines.append("")
    return "\n".join(lines)


def to_html(kind: str, project: Project, card: dict[str, Any]) -> str:
    from jinja2 import Environment, select_autoescape

    env = Environment(autoescape=select_autoescape(default=True))
    template = env.from_string(_HTML)
    names = SECTIONS[kind]
    return template.render(title=f"{TITLES[kind]}: {project.name}", card=card, names=names,
                           gaps=[names[g] for g in missing(card["sections"])])


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;line-height:1.5}
.missing{color:#a33}.source{color:#666;font-size:.9em}</style></head>
<body><h1>{{ title }}</h1>
<p>Version {{ card.version }}, {{ card.created_at }} by {{ card.created_by }}.</p>
{% if gaps %}<p class="missing"><strong>Missing sections:</strong>
{{ gaps | join(', ') }}</p>{% endif %}
{% for key, name in names.items() %}{% set s = card.sections.get(key, {}) %}
<h2>{{ name }}</h2>
{% if s.text %}<p>{{ s.text }}</p><p class="source">Source: {{ s.source }}</p>
{% else %}<p class="missing">Missing: to be completed.</p>{% endif %}
{% endfor %}</body></html>
"""
