"""Pages of roll-out waves as groups: request from the readiness page, one request's waves, approve, reject."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from portal.accounts.permissions import requires
from portal.approvals import RejectForm
from portal.jobs.services import JobActionRefused

from ..models import MfaSnapshot, MfaWaveGroups
from . import selectors
from .forms import WaveApproveForm, WaveRequestForm
from .wave_services import WavesRefused, do_approve_wave_groups, do_reject_wave_groups, do_request_wave_groups


@requires("diagnostics_app.request_mfa_wave_groups")
@require_POST
def mfa_request_wave_groups(request):
    form = WaveRequestForm(request.POST)
    if not form.is_valid():
        messages.warning(request, "The wave request is not valid (snapshot, scope, wave size). Nothing was requested.")
        return redirect("diagnostics_app:mfa_readiness")
    data = form.cleaned_data
    snapshot = MfaSnapshot.objects.filter(pk=data["snapshot"]).first()
    if snapshot is None:
        messages.warning(request, "That snapshot no longer exists. Nothing was requested.")
        return redirect("diagnostics_app:mfa_readiness")
    result = selectors.readiness(snapshot, group_id=data["group"] or "", wave_by=data["wave_by"], list_limit=0)
    try:
        req = do_request_wave_groups(snapshot=snapshot, scope=result.scope, group_id=data["group"] or "",
                                     wave_by=data["wave_by"], max_size=data["wave_max"],
                                     buckets=selectors.wave_buckets(result), shown_hash=data["plan_hash"],
                                     user=request.user, request=request)
    except (WavesRefused, PermissionDenied) as exc:
        messages.warning(request, f"{exc} Nothing was requested.")
        return redirect("diagnostics_app:mfa_readiness")
    messages.info(request, f"Wave groups #{req.pk} requested: someone else approves them before they are written.")
    return redirect(req)


@requires("diagnostics_app.approve_mfa_wave_groups")
@require_GET
def mfa_wave_groups(request, pk: int):
    req = get_object_or_404(MfaWaveGroups.objects.select_related("requested_by", "approved_by", "job", "snapshot"),
                            pk=pk)
    user = request.user
    approve = WaveApproveForm.with_defaults()
    approve.initial["plan_hash"] = req.plan_hash
    report = (req.report or {}).get("waves") or {}
    return render(request, "diagnostics_app/mfa/wave_groups.html", {
        "req": req, "approve_form": approve, "reject_form": RejectForm(),
        "waves": [{**w, "size": len(w["user_ids"]), "done": report.get(str(w["number"]))} for w in req.waves],
        "can_decide": (user.has_perm("diagnostics_app.approve_mfa_wave_groups") and req.requested_by_id != user.pk
                       and req.status == "awaiting_approval")})


def _action(request, pk: int, action, done: str):
    req = get_object_or_404(MfaWaveGroups, pk=pk)
    try:
        result = action(req)
    except (WavesRefused, PermissionDenied, JobActionRefused) as exc:
        messages.warning(request, f"{exc} Nothing was changed.")
        return redirect(req)
    messages.info(request, done.format(pk=pk))
    return redirect(result)


@requires("diagnostics_app.approve_mfa_wave_groups")
@require_POST
def mfa_approve_wave_groups(request, pk: int):
    form = WaveApproveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Tick the confirmation that you read the waves, and give a positive number of "
                                "hours. Nothing was changed.")
        return redirect("diagnostics_app:mfa_wave_groups", pk=pk)
    hours = form.cleaned_data["valid_hours"]
    return _action(request, pk, lambda r: do_approve_wave_groups(
        req=r, user=request.user, request=request, note=form.cleaned_data["note"],
        shown_hash=form.cleaned_data["plan_hash"], valid_for=timedelta(hours=hours) if hours else None),
        "Wave groups #{pk} approved; the job writing the groups is queued.")


@requires("diagnostics_app.approve_mfa_wave_groups")
@require_POST
def mfa_reject_wave_groups(request, pk: int):
    form = RejectForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    return _action(request, pk, lambda r: do_reject_wave_groups(req=r, user=request.user, reason=reason,
                                                                request=request), "Wave groups #{pk} rejected.")
