"""Scan reports: uploads from CI, the list, each scan with related lessons, the report."""

from dataclasses import replace
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse

from failwell.findings import ScanResult
from failwell.kb.lessons import lessons_for_scan
from failwell.limits import MAX_ID_CHARS
from failwell.web.bodies import DbId, ScanResultBody
from failwell.web.site import Site
from failwell.workflows import record_scan


def add_routes(r: FastAPI, site: Site) -> None:
    """Register this area's routes on the app."""
    kb, Viewer = site.kb, site.Viewer

    @r.post("/api/scans", status_code=201)
    def api_upload_scan(body: ScanResultBody, user: site.ScanUploader,
                        project: Annotated[str | None, Query(max_length=MAX_ID_CHARS)] = None):
        """Store a scan result (the JSON of ``failwell scan --format json``; its JSON Schema
        is docs/scan-result.schema.json), as CI does with ``failwell scan --upload URL``;
        returns its id and page, the lessons that apply and, with ``?project=``, the
        project's proxy-guard verdict (as ``scan --kb``)."""
        result = ScanResult.from_dict(body.model_dump(mode="json"), source="the scan result")
        check_shown(result)
        recorded = record_scan(site.governance, result, project=project, by=user.username,
                               audit=site.audit(user, "scan.upload",
                                                {"findings": len(result.findings)},
                                                project=project))
        return recorded.to_dict() | {"url": f"/scans/{recorded.scan_id}",
                                     "findings": len(result.findings)}

    @r.get("/api/scans")
    def api_scans(user: Viewer, limit: Annotated[int, Query(ge=1, le=500)] = 50):
        """Stored scans, newest first, with their finding counts."""
        return {"scans": site.json_rows(kb.scan_list(limit=limit))}

    @r.get("/api/scans/{scan_id}")
    def api_scan(scan_id: DbId, user: Viewer):
        """One stored scan: its result (findings with evidence and mitigations) and the
        lessons of past incidents with the same failure modes."""
        result = kb.scan(scan_id)
        return {"id": scan_id, "result": result.to_dict(),
                "related": [h.to_dict() for h in lessons_for_scan(kb, result)]}

    @r.get("/scans", response_class=HTMLResponse, include_in_schema=False)
    def scan_list(request: Request, user: Viewer):
        return site.page(request, "scans.html", user, scans=kb.scan_list())

    @r.get("/scans/{scan_id}", response_class=HTMLResponse, include_in_schema=False)
    def scan_page(request: Request, scan_id: DbId, user: Viewer):
        result = kb.scan(scan_id)
        return site.page(request, "scan.html", user, scan_id=scan_id, result=result,
                         related=lessons_for_scan(kb, result))

    @r.get("/scans/{scan_id}/report", response_class=HTMLResponse, include_in_schema=False)
    def scan_report(scan_id: DbId, user: Viewer):
        from failwell.report import render

        return HTMLResponse(render(kb.scan(scan_id), "html", title=f"scan {scan_id}"))


def check_shown(result: ScanResult) -> None:
    """Refuse (422) a scan result its report could not show: the report reads ``evidence``
    and ``diagnostics`` in the shapes failwell's detectors write, which the schema leaves
    open. Renders the report without plots (milliseconds) and, when that fails, names the
    part to blame."""
    from failwell.report.documents import _env  # the report's own templates
    from failwell.taxonomy import load_catalog

    def fails(candidate: ScanResult) -> Exception | None:
        try:
            for name in ("report.html.j2", "report.md.j2"):
                _env().get_template(name).render(
                    title="check", result=candidate, findings=candidate.sorted_findings(),
                    modes=load_catalog().failure_modes, plots={})
        except Exception as exc:  # any error at all is a report that would not show
            return exc
        return None

    problem = fails(result)
    if problem is None:
        return
    where: tuple = ()
    if fails(replace(result, diagnostics={})) is None:
        where = ("diagnostics",)
    elif fails(replace(result, diagnostics={}, findings=[])) is None:
        # the first finding that breaks it (bisected: a few renders, not one per finding)
        found, low, high = result.findings, 0, len(result.findings)
        while high - low > 1:
            middle = (low + high) // 2
            if fails(replace(result, diagnostics={}, findings=found[:middle])) is None:
                low = middle
            else:
                high = middle
        where = ("findings", low) + (("evidence",) if fails(replace(
            result, diagnostics={}, findings=[replace(found[low], evidence={})])) is None
            else ())
    raise RequestValidationError([{
        "type": "value_error", "loc": ("body", *where),
        "msg": "not in the shape failwell's report reads, so it could not be shown "
               f"({type(problem).__name__}: {str(problem)[:200]})"}])
