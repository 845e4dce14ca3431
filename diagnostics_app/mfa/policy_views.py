"""Pages of the conditional access side of the MFA report: the policies a snapshot read, one policy's users."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from portal.accounts.permissions import requires
from portal.audit.services import record_download
from portal.exports import CSV_TYPE, XLSX_TYPE, download

from . import exports, policy_selectors, selectors
from .choices import INTERRUPTED_IF_REQUIRED_HELP, INTERRUPTED_TODAY_HELP
from .forms import HYPOTHETICAL, PolicyReadinessForm

PAGE = 100


@requires("accounts.view_mfa_report")
@require_GET
def mfa_policies(request):
    snapshot = selectors.snapshot_or_latest(request.GET.get("snapshot"))
    context = {"snapshot": snapshot, "help": {"if_required": INTERRUPTED_IF_REQUIRED_HELP,
                                              "today": INTERRUPTED_TODAY_HELP}}
    if snapshot is not None:
        context.update({"policies": policy_selectors.snapshot_policies(snapshot),
                        "outcomes": policy_selectors.outcome_breakdown(snapshot)})
    return render(request, "diagnostics_app/mfa/policies.html", context)


@requires("accounts.view_mfa_report")
@require_GET
def mfa_policy(request, pk: int):
    policy = policy_selectors.policy(pk)
    if policy is None:
        raise Http404("No such policy in any snapshot.")
    status = request.GET.get("status") or ""
    if status not in policy_selectors.POLICY_USER_STATUSES:
        status = ""
    rows = policy_selectors.policy_users(policy, status=status).order_by("upn", "id")
    export = request.GET.get("export")
    if export in ("csv", "xlsx"):
        record_download(user=request.user, what="mfa_policy_users", target=f"mfa_policy:{policy.pk}",
                        request=request, format=export, rows=rows.count())
    name = f"mfa-policy-{policy.snapshot_id}-{policy.pk}{'-' + status if status else ''}.{export}"
    if export == "xlsx":
        return download(exports.policy_xlsx_bytes(policy, rows, policy_selectors.target_lines(policy)), name=name,
                        content_type=XLSX_TYPE)
    if export == "csv":
        return download(exports.policy_csv_lines(policy, rows), name=name, content_type=CSV_TYPE)
    try:
        page = max(1, int(request.GET.get("page") or 1))
    except ValueError:
        page = 1
    total = rows.count()
    shown = []
    for row in rows[(page - 1) * PAGE:page * PAGE]:
        hit = policy_selectors.hit_of(row, policy.policy_id) or {}
        shown.append({"row": row, "hit": hit,
                      "status_label": policy_selectors.POLICY_USER_STATUSES.get(hit.get("status"), "")})
    return render(request, "diagnostics_app/mfa/policy.html", {
        "policy": policy, "snapshot": policy.snapshot, "targets": policy_selectors.target_lines(policy),
        "status": status, "statuses": policy_selectors.POLICY_USER_STATUSES, "shown": shown, "total": total,
        "page": page, "has_next": total > page * PAGE, "first_shown": (page - 1) * PAGE + 1,
        "last_shown": (page - 1) * PAGE + len(shown)})


@requires("accounts.view_mfa_report")
@require_GET
def mfa_policy_readiness(request):
    snapshot = selectors.snapshot_or_latest(request.GET.get("snapshot"))
    policies = list(policy_selectors.snapshot_policies(snapshot)) if snapshot else []
    form = PolicyReadinessForm(request.GET or None, snapshot=snapshot, policies=policies)
    result, page = None, 1
    if snapshot is not None and form.is_bound and form.is_valid():
        choice = form.cleaned_data["policy"] or HYPOTHETICAL
        existing = next((p for p in policies if str(p.pk) == choice), None)
        try:
            page = max(1, int(request.GET.get("page") or 1))
        except ValueError:
            page = 1
        result = policy_selectors.policy_readiness(
            snapshot, existing=existing, group_id=form.cleaned_data["group"] or "",
            demand_key=form.cleaned_data["demand"] or "mfa", list_limit=PAGE, list_offset=(page - 1) * PAGE)
    return render(request, "diagnostics_app/mfa/policy_readiness.html", {
        "snapshot": snapshot, "form": form, "result": result, "page": page,
        "has_next": bool(result) and result.interrupted_total > page * PAGE,
        "first_shown": (page - 1) * PAGE + 1, "last_shown": (page - 1) * PAGE + (len(result.interrupted) if result
                                                                                 else 0)})
