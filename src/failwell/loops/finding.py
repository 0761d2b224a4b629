"""A loop audit as a scan result: the finding, its metrics, and the figures the reports,
the knowledge base and the web app read like any other scan's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from failwell.findings import DetectorOutcome, Finding, Metric, ScanResult, Severity
from failwell.scanner.detectors._common import mitigation_for

if TYPE_CHECKING:
    from failwell.loops.audit import LoopAudit

DETECTOR = "loop-audit"


def scan_result(audit: LoopAudit) -> ScanResult:
    findings = [_finding(audit)] if audit.verdict == "feedback-loop" else []
    status = "inconclusive" if audit.verdict == "inconclusive" else "ran"
    outcome = DetectorOutcome(DETECTOR, status, audit.seconds,
                              "; ".join(audit.reasons) if status == "inconclusive" else "",
                              len(findings))
    return ScanResult(
        findings=findings, outcomes=[outcome], metrics=_metrics(audit),
        diagnostics={"loop_windows": audit.windows.to_dict(orient="records")},
        config={"kind": "loop-audit", "verdict": audit.verdict, "reasons": audit.reasons,
                "columns": audit.columns, "logs": audit.logs, "reference": audit.reference,
                "comparison": audit.comparison,
                "settings": {k: v for k, v in vars(audit.config).items()}},
        timings={DETECTOR: audit.seconds},
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _metrics(audit: LoopAudit) -> dict[str, float]:
    out = {}
    for role, summary in (("logs", audit.logs), ("reference", audit.reference)):
        if summary is None:
            continue
        for key, value in summary["concentration"].items():
            out[f"{role}.{key}"] = value
        out[f"{role}.reward_rate"] = summary["proxy"]["mean"]
        rgr = summary.get("rich_get_richer")
        if rgr:
            out[f"{role}.rich_get_richer"] = rgr["coefficient"]
        overlap = summary.get("user_overlap")
        if overlap:
            out[f"{role}.user_overlap"] = overlap["mean_jaccard"]
    if audit.comparison.get("gini"):
        out["gini_difference"] = audit.comparison["gini"]["difference"]
    if audit.comparison.get("proxy"):
        out["reward_rate_difference"] = audit.comparison["proxy"]["difference"]
    return out


def _finding(audit: LoopAudit) -> Finding:
    comparison = audit.comparison
    gini, proxy = comparison["gini"], comparison["proxy"]
    fallen = [r for r in audit.reasons if r.startswith("guardrail")]
    severity = Severity.HIGH if fallen else Severity.MEDIUM
    against = "the reference" if comparison["basis"] == "reference" else "earlier in the period"
    logs = audit.logs["concentration"]
    title = (f"Exposure concentrates (Gini {logs['gini']:.2f}, top {logs['top_items']} items "
             f"take {logs['top_share']:.0%}) "
             + ("while a guardrail falls" if fallen else "without a significant proxy gain"))
    summary = (f"Against {against}, the exposure Gini rises by {gini['difference']:+.3f} "
               f"(95 % interval {gini['low']:+.3f} to {gini['high']:+.3f}, at equal sample "
               "sizes). " + " ".join(r[0].upper() + r[1:] + "." for r in audit.reasons[1:]))
    rgr = audit.logs.get("rich_get_richer")
    if rgr:
        summary += (f" Past exposure predicts next-window exposure beyond the reward rate "
                    f"(slope {rgr['coefficient']:.2f}, {rgr['low']:.2f} to {rgr['high']:.2f}).")
    metrics = [Metric("gini_difference", gini["difference"], audit.config.margin,
                      ci=(gini["low"], gini["high"])),
               Metric("reward_rate_difference", proxy["difference"], None, False,
                      ci=(proxy["low"], proxy["high"]))]
    return Finding("feedback-loop", severity, title, summary, DETECTOR, metrics,
                   {"comparison": comparison, "reasons": audit.reasons,
                    "rich_get_richer": rgr},
                   mitigation_for("feedback-loop"))
