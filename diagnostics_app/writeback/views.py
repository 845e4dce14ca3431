"""Pages of the writeback rename area: the plan (table, filters, diff, exports), its approval, the runbook,
verifications and the Cloud Sync readiness."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig

from portal.accounts.permissions import requires
from portal.approvals.views import decided, signed
from portal.audit.services import record_download
from portal.connectors.registry import NotConfigured
from portal.exports import CSV_TYPE, download, filename
from portal.jobs.services import JobActionRefused

from ..models import WritebackPlan
from . import cloud_sync, exports, runbook, selectors
from .choices import CLOUD_SYNC_COLOURS, RISKS, CloudSyncVerdict, RowSection
from .filtersets import WritebackPlanRowFilterSet
from .forms import CompareForm, ConfirmStepForm, PinnedApproveForm, RejectForm, StartForm
from .services import (
    WritebackRefused,
    do_approve_plan,
    do_confirm_step,
    do_reject_plan,
    do_request_approval,
    do_start_plan,
    do_start_verification,
)
from .tables import WritebackPlanRowTable

COMPARE_CHOICES = 100  # earlier versions offered for a diff (the newest first)


def _comparison(request, plan: WritebackPlan) -> dict:
    """The diff the page shows: against the previous version (stored with the plan) unless the reader chose
    another earlier one; a choice that is not an earlier version shows the form's error and no diff."""
    earlier = list(selectors.earlier_plans(plan)[:COMPARE_CHOICES])
    bound = "compare" in request.GET
    form = CompareForm(request.GET if bound else None, earlier=earlier,
                       initial={"compare": plan.previous.version if plan.previous else None})
    compared, diff = plan.previous, plan.diff
    if bound:
        if form.is_valid():
            compared = next(p for p in earlier if p.version == form.cleaned_data["compare"])
            diff = selectors.diff_against(plan=plan, earlier=compared)
        else:
            compared, diff = None, None
    return {"compare_form": form, "earlier": earlier, "compared": compared, "diff": diff}


def _filename(plan: WritebackPlan, what: str, ext: str) -> str:
    return filename(f"writeback-{what}", f"v{plan.version}", plan.created_at, ext)


@requires("accounts.view_writeback_plan")
@require_GET
def writeback(request):
    plan = selectors.latest_plan()
    if plan is not None:
        return _plan_page(request, plan)  # the newest plan, as the MFA page opens on the newest snapshot
    return render(request, "diagnostics_app/writeback/plan.html", {
        "plan": None, "start_form": StartForm(),
        "can_run": request.user.has_perm("diagnostics_app.run_writeback_plan")})


@requires("accounts.view_writeback_plan")
@require_GET
def writeback_plan(request, pk: int):
    return _plan_page(request, get_object_or_404(selectors.plans(), pk=pk))


def _plan_page(request, plan: WritebackPlan):
    filterset = WritebackPlanRowFilterSet(request.GET or None, queryset=selectors.plan_rows(plan))
    rows = filterset.qs
    if request.GET.get("export") == "csv":
        record_download(user=request.user, what="writeback_plan", target=f"writeback_plan:{plan.pk}",
                        request=request, format="csv", rows=rows.count())
        return download(exports.plan_csv_lines(rows), name=_filename(plan, "plan", "csv"), content_type=CSV_TYPE)
    table = WritebackPlanRowTable(rows)
    RequestConfig(request).configure(table)
    user = request.user
    approve_form = PinnedApproveForm.with_defaults(plan_hash=plan.plan_hash)
    return render(request, "diagnostics_app/writeback/plan.html", {
        "plan": plan, "filter": filterset, "table": table, "sections": selectors.section_counts(plan),
        "history": selectors.plans().order_by("-version")[:12], "risks": RISKS,
        "risk_counts": [(k, text, plan.counts.get(f"risk:{k}", 0)) for k, text in RISKS.items()],
        "start_form": StartForm(), "approve_form": approve_form, "reject_form": RejectForm(),
        "can_run": user.has_perm("diagnostics_app.run_writeback_plan"),
        "can_approve": (user.has_perm("diagnostics_app.approve_writeback_plan")
                        and plan.requested_by_id != user.pk),
        "verifications": plan.verifications.all()[:5],
        **_comparison(request, plan),
    })


@requires("accounts.view_writeback_plan")
@require_GET
def writeback_print(request, pk: int):
    plan = get_object_or_404(selectors.plans(), pk=pk)
    rows = list(selectors.plan_rows(plan))
    record_download(user=request.user, what="writeback_plan", target=f"writeback_plan:{plan.pk}", request=request,
                    format="html", rows=len(rows))
    return render(request, "diagnostics_app/writeback/print.html", {
        "plan": plan, "groups": [(s, [r for r in rows if r.section == s.value]) for s in RowSection],
        "risks": RISKS, "steps": runbook.STEPS.values()})


@requires("diagnostics_app.run_writeback_plan")
@require_POST
def writeback_start_plan(request):
    if not StartForm(request.POST).is_valid():
        return redirect("diagnostics_app:writeback")
    try:
        job = do_start_plan(user=request.user, request=request)
    except (JobActionRefused, PermissionDenied) as exc:
        messages.warning(request, str(exc))
        return redirect("diagnostics_app:writeback")
    return redirect(job)


def _decide(request, pk: int, action):
    plan = get_object_or_404(WritebackPlan, pk=pk)
    try:
        action(plan)
    except (WritebackRefused, PermissionDenied) as exc:
        messages.warning(request, str(exc))
    return redirect(plan)


@requires("diagnostics_app.run_writeback_plan")
@require_POST
def writeback_request_approval(request, pk: int):
    if not StartForm(request.POST).is_valid():
        return redirect("diagnostics_app:writeback_plan", pk)

    def act(plan):
        do_request_approval(plan=plan, user=request.user, request=request)
        messages.success(request, f"Plan v{plan.version} waits for an Approver (not you).")
    return _decide(request, pk, act)


@requires("diagnostics_app.approve_writeback_plan")
@require_POST
def writeback_approve(request, pk: int):
    plan, form = get_object_or_404(WritebackPlan, pk=pk), PinnedApproveForm(request.POST)
    return signed(request, obj=plan, form=form, refused=(WritebackRefused,), done=f"Plan v{plan.version} approved.",
                  decide=lambda: do_approve_plan(plan=plan, user=request.user, plan_hash=form.cleaned_data["plan_hash"],
                                                 valid_for=form.valid_for, note=form.cleaned_data["note"],
                                                 request=request))


@requires("diagnostics_app.approve_writeback_plan")
@require_POST
def writeback_reject(request, pk: int):
    plan, form = get_object_or_404(WritebackPlan, pk=pk), RejectForm(request.POST)
    return decided(request, obj=plan, refused=(WritebackRefused,), done=f"Plan v{plan.version} rejected.",
                   decide=lambda: do_reject_plan(plan=plan, user=request.user, reason=form.reason_given,
                                                 request=request))


@requires("accounts.view_writeback_plan")
@require_GET
def writeback_runbook(request, pk: int):
    plan = get_object_or_404(selectors.plans(), pk=pk)
    return render(request, "diagnostics_app/writeback/runbook.html", {
        "plan": plan, "steps": runbook.progress(plan), "form": ConfirmStepForm(),
        "can_confirm": request.user.has_perm("diagnostics_app.confirm_writeback_step"),
        "approval_problem": runbook.approval_problem(plan)})


@requires("diagnostics_app.confirm_writeback_step")
@require_POST
def writeback_confirm_step(request, pk: int, step: str):
    plan = get_object_or_404(WritebackPlan, pk=pk)
    form = ConfirmStepForm(request.POST)
    if not form.is_valid():
        messages.warning(request, "Tick the confirmation: the step was not confirmed.")
        return redirect("diagnostics_app:writeback_runbook", pk)
    try:
        checks = runbook.run_checks(plan, step)
        do_confirm_step(plan=plan, user=request.user, step=step, checks=checks,
                        note=form.cleaned_data.get("note") or "", request=request)
    except (WritebackRefused, PermissionDenied, NotConfigured) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Step confirmed: {runbook.STEPS[step].title}.")
    return redirect("diagnostics_app:writeback_runbook", pk)


@requires("diagnostics_app.run_writeback_plan")
@require_POST
def writeback_start_verify(request, pk: int):
    plan = get_object_or_404(WritebackPlan, pk=pk)
    if not StartForm(request.POST).is_valid():
        return redirect(plan)
    try:
        job = do_start_verification(plan=plan, user=request.user, request=request)
    except (JobActionRefused, PermissionDenied) as exc:
        messages.warning(request, str(exc))
        return redirect(plan)
    return redirect(job)


@requires("accounts.view_writeback_plan")
@require_GET
def writeback_cloud_sync(request, pk: int):
    plan = get_object_or_404(selectors.plans(), pk=pk)
    rows = selectors.readiness_rows(plan)
    if request.GET.get("export") == "csv":
        record_download(user=request.user, what="writeback_cloud_sync", target=f"writeback_plan:{plan.pk}",
                        request=request, format="csv", rows=rows.count())
        return download(exports.readiness_csv_lines(rows), name=_filename(plan, "cloud-sync", "csv"),
                        content_type=CSV_TYPE)
    counts = selectors.readiness_counts(plan)
    return render(request, "diagnostics_app/writeback/cloud_sync.html", {
        "plan": plan, "rows": [(r, exports.group_kind(r)) for r in rows],
        "verdicts": [(v.value, v.label, CLOUD_SYNC_COLOURS[v], counts.get(v.value, 0)) for v in CloudSyncVerdict],
        "prerequisites": cloud_sync.PREREQUISITES, "sources": sorted(cloud_sync.SOURCES.items())})
