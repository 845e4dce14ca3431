"""Reads of Address repair."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

from ..figures import cached_figure, filtered_count
from ..models import AddressFinding, AddressFix, AddressScan
from .choices import (
    SEVERITY_COLOURS,
    FindingCategory,
    FindingRule,
    FindingSeverity,
    FindingState,
    FixStatus,
    ScanStatus,
)


def scans() -> QuerySet[AddressScan]:
    return AddressScan.objects.all()


def scan_or_latest(scan_id: str | int | None) -> AddressScan | None:
    """The scan asked for, else the latest complete one (else the latest at all, to show that it runs)."""
    if scan_id not in (None, ""):
        try:
            return AddressScan.objects.filter(pk=int(scan_id)).first()
        except (TypeError, ValueError):
            return None
    return (AddressScan.objects.filter(status=ScanStatus.COMPLETE).first() or AddressScan.objects.first())


def scan_of_job(job: Any) -> AddressScan | None:
    """The scan a scan job began (stored when its job starts)."""
    return AddressScan.objects.filter(job=job).only("id").first()


def scan_findings(scan: AddressScan) -> QuerySet[AddressFinding]:
    return scan.findings.all()


def _when_complete(scan: AddressScan, what: str, compute: Callable[[], Any]) -> Any:
    """A complete scan's findings never change (do_finish_scan is the last write): its figures are computed once
    per process. A running scan's are read again on every page."""
    return cached_figure(scan, what, compute) if scan.status == ScanStatus.COMPLETE else compute()


def finding_choices(scan: AddressScan) -> dict[str, list[str]]:
    """The OUs (at most 500) and attributes (at most 100) the scan's findings hold, for the page's filters."""
    return _when_complete(scan, "finding-choices", lambda: {
        "ou": list(scan.findings.values_list("ou", flat=True).distinct().order_by("ou")[:500]),
        "attribute": list(scan.findings.values_list("attribute", flat=True).distinct().order_by("attribute")[:100])})


def finding_count(scan: AddressScan, *, rows: QuerySet[AddressFinding], filters: dict[str, Any] | None) -> int | None:
    """How many of the scan's findings the page's filters keep (None: let the paginator count them)."""
    if scan.status != ScanStatus.COMPLETE:
        return None
    return filtered_count(scan, rows=rows, filters=filters)


def object_findings(finding: AddressFinding) -> QuerySet[AddressFinding]:
    """Every finding of the same object in the same scan (the drill-down page)."""
    return finding.scan.findings.filter(dn=finding.dn).order_by("state", "attribute", "id")


def object_history(finding: AddressFinding, limit: int = 20) -> QuerySet[AddressFinding]:
    return (AddressFinding.objects.filter(key=finding.key).select_related("scan")
            .only("id", "state", "scan__id", "scan__created_at").order_by("-scan__created_at")[:limit])


def breakdown(scan: AddressScan) -> dict[str, list[dict]]:
    """Counts per severity, rule and Connect Health category for the charts and the filter links."""
    counts = scan.counts or {}
    total = max(scan.findings_total, 1)

    def rows(field: str, choices) -> list[dict]:
        out = []
        for value, label in choices:
            n = int((counts.get(field) or {}).get(value, 0))
            if n:
                out.append({"value": value, "label": label, "count": n, "pct": round(100 * n / total, 1)})
        return out

    severity = rows("severity", FindingSeverity.choices)
    fills = {"red": "#cf222e", "amber": "#bf8700", "grey": "#8c959f"}
    for row in severity:
        row["fill"] = fills[SEVERITY_COLOURS[FindingSeverity(row["value"])]]
    return {"severity": severity, "rule": sorted(rows("rule", FindingRule.choices), key=lambda r: -r["count"]),
            "category": rows("category", [c for c in FindingCategory.choices if c[0]]),
            "state": rows("state", FindingState.choices)}


def fixes_awaiting_approval(*, user) -> QuerySet[AddressFix]:
    """Address fixes this user may sign (four eyes: never their own), oldest first, for the approvals queue."""
    if not user.has_perm("diagnostics_app.approve_address_fix"):
        return AddressFix.objects.none()
    return (AddressFix.objects.filter(status=FixStatus.AWAITING_APPROVAL).exclude(requested_by=user)
            .select_related("requested_by").order_by("created_at"))
