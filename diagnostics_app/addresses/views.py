from contextlib import ExitStack

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig

from portal.accounts.permissions import requires
from portal.addressing.explain import ExplainInputError, explain
from portal.approvals import ApproveForm, RejectForm
from portal.approvals.views import decided, signed
from portal.audit.services import record_download
from portal.connectors.ad import AdError
from portal.connectors.exchange import ExchangeError
from portal.connectors.graph import GraphError
from portal.connectors.registry import NotConfigured, active_directory, entra_graph, exchange_online
from portal.exports import CSV_TYPE, XLSX_TYPE, download, filename
from portal.jobs.services import JobActionRefused
from portal.tables import CountedPaginator

from .. import charts
from ..models import AddressFinding, AddressFix
from . import exports, selectors
from .choices import FindingRule
from .collect import explainer_prefill
from .filtersets import AddressFindingFilterSet
from .fixes import (
    FixRefused,
    do_approve_fix,
    do_plan_fix,
    do_reject_fix,
    do_start_undo,
    do_start_verify,
    needs_exchange,
)
from .forms import ExplainForm, PlanForm, ScanForm
from .services import do_start_scan
from .tables import AddressFindingTable


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
    export = request.GET.get("export")
    if export in ("csv", "xlsx"):
        filters = filterset.form.cleaned_data if filterset.is_bound and filterset.form.is_valid() else {}
        record_download(user=request.user, what="address_findings", target=f"address_scan:{scan.pk}",
                        request=request, format=export, rows=rows.count())
        name = filename("address-findings", scan.pk, scan.created_at, export, filters)
        if export == "csv":
            return download(exports.csv_lines(rows, scan), name=name, content_type=CSV_TYPE)
        return download(exports.xlsx_bytes(rows, scan), name=name, content_type=XLSX_TYPE)
    can_plan = request.user.has_perm("diagnostics_app.plan_address_fix")
    table = AddressFindingTable(rows.only(*AddressFindingTable.reads), exclude=() if can_plan else ("selection",))
    valid = not filterset.is_bound or filterset.form.is_valid()
    count = selectors.finding_count(scan, rows=rows, filters=(filterset.form.cleaned_data if filterset.is_bound
                                                              else {}) if valid else None)
    RequestConfig(request, paginate={"paginator_class": CountedPaginator, "count": count}).configure(table)
    counts = selectors.breakdown(scan)
    context.update({"filter": filterset, "table": table, "counts": counts, "can_plan": can_plan,
                    "fixes": scan.fixes.all()[:10],
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


@requires("diagnostics_app.plan_address_fix")
@require_POST
def address_plan_fix(request):
    form = PlanForm(request.POST)
    if not form.is_valid():
        messages.warning(request, "Select at least one finding to plan a fix for. Nothing was planned.")
        return redirect("diagnostics_app:address_repair")
    findings = list(AddressFinding.objects.filter(pk__in=form.cleaned_data["selection"]).select_related("scan"))
    try:
        with active_directory() as directory, ExitStack() as stack:
            # Exchange Online is read only when a selected fix targets it (a cloud-managed object, a tenant contact).
            exchange = stack.enter_context(exchange_online()) if needs_exchange(findings) else None
            fix = do_plan_fix(findings=findings, user=request.user, directory=directory, exchange=exchange,
                              request=request)
    except (FixRefused, PermissionDenied, NotConfigured, AdError, ExchangeError) as exc:
        messages.warning(request, f"No fix was planned: {exc}")
        return redirect("diagnostics_app:address_repair")
    return redirect(fix)


@requires("accounts.view_address_repair")
@require_GET
def address_fix(request, pk: int):
    fix = get_object_or_404(AddressFix.objects.select_related("requested_by", "approved_by", "job", "undo_job"),
                            pk=pk)
    user = request.user
    return render(request, "diagnostics_app/addresses/fix.html", {
        "fix": fix, "approve_form": ApproveForm.with_defaults(), "reject_form": RejectForm(),
        "can_decide": (user.has_perm("diagnostics_app.approve_address_fix") and fix.requested_by_id != user.pk
                       and fix.status == "awaiting_approval"),
        "can_undo": user.has_perm("diagnostics_app.plan_address_fix") and bool(fix.backup)
        and fix.status in ("applied", "applied_with_skips", "failed"),
        "can_verify": user.has_perm("diagnostics_app.plan_address_fix") and bool((fix.report or {}).get("applied"))
        and fix.status in ("applied", "applied_with_skips")})


def _fix_action(request, pk: int, action, done: str):
    fix = get_object_or_404(AddressFix, pk=pk)
    try:
        result = action(fix)
    except (FixRefused, PermissionDenied) as exc:
        messages.warning(request, f"{exc} Nothing was changed.")
        return redirect(fix)
    messages.info(request, done.format(pk=pk))
    return redirect(result)


@requires("diagnostics_app.approve_address_fix")
@require_POST
def address_approve_fix(request, pk: int):
    fix, form = get_object_or_404(AddressFix, pk=pk), ApproveForm(request.POST)
    return signed(request, obj=fix, form=form, refused=(FixRefused,), done=f"Fix #{pk} approved; the apply job is "
                  "queued.", decide=lambda: do_approve_fix(fix=fix, user=request.user, request=request,
                                                           note=form.cleaned_data["note"], valid_for=form.valid_for))


@requires("diagnostics_app.approve_address_fix")
@require_POST
def address_reject_fix(request, pk: int):
    fix, form = get_object_or_404(AddressFix, pk=pk), RejectForm(request.POST)
    return decided(request, obj=fix, refused=(FixRefused,), done=f"Fix #{pk} rejected.",
                   decide=lambda: do_reject_fix(fix=fix, user=request.user, reason=form.reason_given,
                                                request=request))


@requires("diagnostics_app.plan_address_fix")
@require_POST
def address_verify_fix(request, pk: int):
    return _fix_action(request, pk, lambda f: do_start_verify(fix=f, user=request.user, request=request),
                       "Verification of fix #{pk} queued: a delta sync, then the cloud objects are compared.")


@requires("diagnostics_app.plan_address_fix")
@require_POST
def address_undo_fix(request, pk: int):
    return _fix_action(request, pk, lambda f: do_start_undo(fix=f, user=request.user, request=request),
                       "Undo of fix #{pk} queued: the backed-up values are written back.")


def _prefill(dn: str) -> tuple[dict, str | None]:
    """An object's values for the explainer; the tenant's part is left empty (with a note) if it cannot be read."""
    with active_directory() as directory:
        try:
            with entra_graph() as graph:
                return explainer_prefill(directory, graph, dn), None
        except (NotConfigured, GraphError) as exc:
            return explainer_prefill(directory, None, dn), f"The tenant could not be read ({exc}); " \
                "enter its domains and the cloud's current addresses by hand."


@requires("accounts.view_address_repair")
@require_GET
def address_explain(request):
    """ProxyCalc explained: what Entra ID computes from the values entered (or an object's values), step by
    step. The form re-renders #explain-result through htmx as the admin types; nothing is written anywhere."""
    dn = (request.GET.get("dn") or "").strip()
    note = None
    if dn:
        try:
            data, note = _prefill(dn)
        except (NotConfigured, AdError, ValueError) as exc:
            messages.warning(request, f"The object {dn[:200]} could not be read: {exc}")
            data = None
        form = ExplainForm(ExplainForm.initial_from(data)) if data else ExplainForm()
    else:
        form = ExplainForm(request.GET) if request.GET else ExplainForm()
    answer = None
    if form.is_bound:
        form.is_valid()
        try:
            answer = explain(form.explain_input())
        except ExplainInputError as exc:
            form.show_problems(exc.problems)
    return render(request, "diagnostics_app/addresses/explain.html",
                  {"form": form, "answer": answer, "dn": dn, "note": note})
