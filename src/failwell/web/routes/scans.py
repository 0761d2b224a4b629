"""Scan reports: uploads from CI, the list, each scan with related lessons, the report."""

from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse

from failwell.errors import FailwellError
from failwell.findings import ScanResult
from failwell.kb.lessons import lessons_for_scan
from failwell.web.site import Site
from failwell.workflows import record_scan


def add_routes(r: FastAPI, site: Site) -> None:
    """Register this area's routes on the app."""
    kb, Viewer = site.kb, site.Viewer

    @r.post("/api/scans", status_code=201)
    def api_upload_scan(body: dict[str, Any], user: site.ScanUploader,
                        project: str | None = None):
        """Store a scan result (the JSON of ``failwell scan --format json``), as CI does
        with ``failwell scan --upload URL``; returns its id and page, the lessons that apply
        and, with ``?project=``, the project's proxy-guard verdict (as ``scan --kb``)."""
        try:
            result = ScanResult.from_dict(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise FailwellError(f"not a failwell scan result: {exc}") from None
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
    def api_scan(scan_id: int, user: Viewer):
        """One stored scan: its result (findings with evidence and mitigations) and the
        lessons of past incidents with the same failure modes."""
        result = kb.scan(scan_id)
        return {"id": scan_id, "result": result.to_dict(),
                "related": [h.to_dict() for h in lessons_for_scan(kb, result)]}

    @r.get("/scans", response_class=HTMLResponse, include_in_schema=False)
    def scan_list(request: Request, user: Viewer):
        return site.page(request, "scans.html", user, scans=kb.scan_list())

    @r.get("/scans/{scan_id}", response_class=HTMLResponse, include_in_schema=False)
    def scan_page(request: Request, scan_id: int, user: Viewer):
        result = kb.scan(scan_id)
        return site.page(request, "scan.html", user, scan_id=scan_id, result=result,
                         related=lessons_for_scan(kb, result))

    @r.get("/scans/{scan_id}/report", response_class=HTMLResponse, include_in_schema=False)
    def scan_report(scan_id: int, user: Viewer):
        from failwell.report import render

        return HTMLResponse(render(kb.scan(scan_id), "html", title=f"scan {scan_id}"))

