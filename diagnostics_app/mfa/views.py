
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig

from portal.accounts.permissions import requires
from portal.audit.services import record_download
from portal.exports import CSV_TYPE, XLSX_TYPE, download, filename
from portal.jobs.services import JobActionRefused
from portal.tables import CountedPaginator

from .. import charts
from ..models import MfaUserRow
from . import exports, policy_selectors, selectors
from .choices import (
    INTERRUPTED_IF_REQUIRED_HELP,
    INTERRUPTED_TODAY_HELP,
    POLICY_STATE_COLOURS,
    MfaClass,
    PolicyState,
)
from .filtersets import MfaUserRowFilterSet
from .forms import ReadinessForm, SnapshotForm, WaveRequestForm
from .policies import EVIDENCE_LABELS
from .services import do_start_snapshot
from .tables import MfaUserRowTable
from .waves import MAX_WAVES, plan_hash, split_waves

READINESS_PAGE = 100


def policy_state(state: str) -> dict[str, str]:
    try:
        return {"state_label": PolicyState(state).label, "state_colour": POLICY_STATE_COLOURS[PolicyState(state)]}
    except ValueError:
        return {"state_label": f"Unknown ({state})", "state_colour": "dark"}


# --------------------------------------------------------------------------------------------
# MFA registration


def _filename(snapshot, ext: str, filters: dict | None = None) -> str:
    return filename("mfa-registration", snapshot.pk, snapshot.taken_at, ext, filters)


@requires("accounts.view_mfa_report")
@require_GET
def mfa(request):
    snapshot = selectors.snapshot_or_latest(request.GET.get("snapshot"))
    context = {"snapshot": snapshot, "snapshot_form": SnapshotForm(),
               "can_run": request.user.has_perm("diagnostics_app.run_mfa_snapshot"),
               "history": selectors.snapshots()[:12]}
    if snapshot is None:
        return render(request, "diagnostics_app/mfa/report.html", context)
    filterset = MfaUserRowFilterSet(request.GET or None, queryset=selectors.snapshot_rows(snapshot),
                                    snapshot=snapshot)
    rows = filterset.qs
    export = request.GET.get("export")
    filters = filterset.form.cleaned_data if filterset.is_bound and filterset.form.is_valid() else {}
    if export in ("csv", "xlsx"):
        record_download(user=request.user, what="mfa_report", target=f"mfa_snapshot:{snapshot.pk}", request=request,
                        format=export, rows=rows.count())
    if export == "csv":
        return download(exports.csv_lines(rows, snapshot), name=_filename(snapshot, "csv", filters),
                        content_type=CSV_TYPE)
    if export == "xlsx":
        return download(exports.xlsx_bytes(rows, snapshot), name=_filename(snapshot, "xlsx", filters),
                        content_type=XLSX_TYPE)
    table = MfaUserRowTable(rows.only(*MfaUserRowTable.reads))
    # a snapshot's rows never change: the number a filter keeps is counted once, not on every page
    count = selectors.row_count(snapshot, rows=rows, filters=filters if not filterset.is_bound
                                or filterset.form.is_valid() else None)
    RequestConfig(request, paginate={"paginator_class": CountedPaginator, "count": count}).configure(table)
    by_class = selectors.classification_breakdown(snapshot)
    by_method = selectors.method_breakdown(snapshot)
    points = selectors.trend()
    context.update({
        "filter": filterset, "table": table, "headline": selectors.headline(snapshot),
        "by_class": by_class, "donut": charts.donut(by_class), "by_method": by_method,
        "method_bars": charts.bars(by_method), "trend": points,
        "trend_chart": charts.trend_lines(points) if len(points) > 1 else None,
        "outcomes": {o["value"]: o for o in policy_selectors.outcome_breakdown(snapshot)}
        if snapshot.policies_read else None,
        "help": {"if_required": INTERRUPTED_IF_REQUIRED_HELP, "today": INTERRUPTED_TODAY_HELP},
    })
    return render(request, "diagnostics_app/mfa/report.html", context)


@requires("accounts.view_mfa_report")
@require_GET
def mfa_user(request, pk: int):
    row = get_object_or_404(MfaUserRow.objects.select_related("snapshot"), pk=pk)
    snapshot = row.snapshot
    timeline = []
    ev = row.evidence or {}
    for e in ev.get("events") or ():
        timeline.append({"time": e.get("time"), "what": e.get("activity"), "detail": e.get("detail"),
                         "actor": e.get("actor"), "kind": e.get("kind"), "source": "Audit log"})
    for m in ev.get("methods") or ():
        if m.get("created"):
            timeline.append({"time": m["created"], "what": f"Method created: {m.get('type')}",
                             "detail": m.get("display") or "", "actor": "", "kind": "method",
                             "source": "Methods (read one by one)"})
    report = ev.get("report")
    if report and report.get("lastUpdated"):
        timeline.append({"time": report["lastUpdated"], "what": "Registration report row computed",
                         "detail": ", ".join(report.get("methodsRegistered") or []) or "no methods",
                         "actor": "", "kind": "report", "source": "Registration report"})
    timeline.sort(key=lambda t: t["time"] or "")
    history = (MfaUserRow.objects.filter(user_id=row.user_id).select_related("snapshot")
               .only("id", "classification", "snapshot__taken_at", "snapshot__id").order_by("-snapshot__taken_at")[:12])
    urls = {p.policy_id: p.get_absolute_url() for p in snapshot.policies.only("id", "policy_id")}
    policy_hits = [{**h, "url": urls.get(h.get("policy_id")), **policy_state(h.get("state", "")),
                    "evidence_label": EVIDENCE_LABELS.get(h.get("evidence") or "", h.get("evidence") or "")}
                   for h in row.policy_hits or ()]
    return render(request, "diagnostics_app/mfa/user.html", {"policy_hits": policy_hits,
        "row": row, "snapshot": snapshot, "timeline": timeline, "report": report, "methods": ev.get("methods"),
        "methods_error": ev.get("methods_error"), "label": MfaClass(row.classification).label,
        "groups": sorted(snapshot.groups.get(g, g) for g in row.group_ids), "history": history})


@requires("accounts.view_mfa_report")
@require_GET
def mfa_readiness(request):
    snapshot = selectors.snapshot_or_latest(request.GET.get("snapshot"))
    form = ReadinessForm(request.GET, snapshot=snapshot)  # every field optional: the page opens with a result
    result, page, waves_ctx = None, 1, {}
    if snapshot is not None and form.is_valid():
        group, wave_by = form.cleaned_data["group"] or "", form.cleaned_data["wave_by"] or "department"
        if request.GET.get("export") == "csv":
            everyone = selectors.readiness(snapshot, group_id=group, wave_by=wave_by, list_limit=None)
            record_download(user=request.user, what="mfa_readiness", target=f"mfa_snapshot:{snapshot.pk}",
                            request=request, format="csv", rows=len(everyone.interrupted))
            return download(exports.readiness_csv_lines(everyone), content_type=CSV_TYPE,
                            name=_filename(snapshot, "csv", {"readiness": "interrupted", "group": group}))
        try:
            page = max(1, int(request.GET.get("page") or 1))
        except ValueError:
            page = 1
        result = selectors.readiness(snapshot, group_id=group, wave_by=wave_by, list_limit=READINESS_PAGE,
                                     list_offset=(page - 1) * READINESS_PAGE)
        wave_max = form.cleaned_data.get("wave_max")
        if wave_max:
            split = split_waves(selectors.wave_buckets(result), wave_max)
            parts = [p.as_dict() for p in split]
            waves_ctx = {"parts": parts, "too_many": len(parts) > MAX_WAVES,
                         "request_form": WaveRequestForm(initial={
                             "snapshot": snapshot.pk, "group": group, "wave_by": wave_by, "wave_max": wave_max,
                             "plan_hash": plan_hash(parts)})}
    return render(request, "diagnostics_app/mfa/readiness.html", {
        "snapshot": snapshot, "form": form, "result": result, "page": page, **waves_ctx,
        "has_next": bool(result) and result.interrupted_total > page * READINESS_PAGE,
        "first_shown": (page - 1) * READINESS_PAGE + 1,
        "last_shown": (page - 1) * READINESS_PAGE + (len(result.interrupted) if result else 0)})


@requires("diagnostics_app.run_mfa_snapshot")
@require_POST
def mfa_start_snapshot(request):
    form = SnapshotForm(request.POST)
    if not form.is_valid():
        messages.warning(request, "The snapshot settings are not valid: "
                         + "; ".join(f"{form.fields[k].label}: {' '.join(v)}" for k, v in form.errors.items())
                         + " Nothing was started.")
        return redirect("diagnostics_app:mfa")
    try:
        job = do_start_snapshot(user=request.user, request=request, **form.params())
    except (JobActionRefused, PermissionDenied) as exc:
        messages.warning(request, str(exc))
        return redirect("diagnostics_app:mfa")
    return redirect(job)
