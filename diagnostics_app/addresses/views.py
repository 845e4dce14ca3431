import re

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig

from portal.accounts.permissions import requires
from portal.audit.services import record_download
from portal.jobs.services import JobActionRefused

from .. import charts
from ..models import AddressFinding
from . import exports, selectors
from .choices import FindingRule
from .filtersets import AddressFindingFilterSet
from .forms import ScanForm
from .services import do_start_scan
from .tables import AddressFindingTable


def _filename(scan, filters: dict | None = None) -> str:
    used = [f"{k}-{v}" for k, v in sorted((filters or {}).items()) if v not in (None, "", [])]
    tag = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(used))[:80]
    return f"address-findings-{scan.pk}-{scan.created_at:%Y%m%d-%H%M}{'-' + tag if tag else ''}.csv"


@requires("accounts.view_address_repair")
@require_GET
def address_repair(request):
    scan = selectors.scan_or_latest(request.GET.get("scan"))
    context = {"scan": scan, "scan_form": ScanForm(),
               "can_run": request.user.has_perm("diagnostics_app.run_address_scan"),
               "history": selectors.scans()[:12]}
    if scan is None:
        return render(request, "diagnostics_app/addresses/findings.html", context)
    filterset = AddressFindingFilterSet(request.GET or None, queryset=selectors.scan_findings(scan), scan=scan)
    rows = filterset.qs
    if request.GET.get("export") == "csv":
        filters = filterset.form.cleaned_data if filterset.is_bound and filterset.form.is_valid() else {}
        record_download(user=request.user, what="address_findings", target=f"address_scan:{scan.pk}",
                        request=request, format="csv", rows=rows.count())
        response = StreamingHttpResponse(exports.csv_lines(rows, scan), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{_filename(scan, filters)}"'
        return response
    table = AddressFindingTable(rows)
    RequestConfig(request).configure(table)
    counts = selectors.breakdown(scan)
    context.update({"filter": filterset, "table": table, "counts": counts,
                    "donut": charts.donut(counts["severity"]) if counts["severity"] else None})
    return render(request, "diagnostics_app/addresses/findings.html", context)


@requires("accounts.view_address_repair")
@require_GET
def address_finding(request, pk: int):
    finding = get_object_or_404(AddressFinding.objects.select_related("scan"), pk=pk)
    return render(request, "diagnostics_app/addresses/finding.html", {
        "finding": finding, "scan": finding.scan, "rule_label": FindingRule(finding.rule).label,
        "object_findings": selectors.object_findings(finding), "history": selectors.object_history(finding)})


@requires("diagnostics_app.run_address_scan")
@require_POST
def address_start_scan(request):
    form = ScanForm(request.POST)
    if not form.is_valid():
        messages.warning(request, "The scan request was not valid. Nothing was started.")
        return redirect("diagnostics_app:address_repair")
    try:
        job = do_start_scan(user=request.user, request=request)
    except (JobActionRefused, PermissionDenied) as exc:
        messages.warning(request, str(exc))
        return redirect("diagnostics_app:address_repair")
    return redirect(job)
