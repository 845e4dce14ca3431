"""Pages of roll-out waves as groups: request from the readiness page, one request's waves, approve, reject."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from portal.accounts.permissions import requires
from portal.approvals import PinnedApproveForm, RejectForm
from portal.approvals.views import decided, signed
from portal.jobs.services import JobActionRefused

from ..models import MfaSnapshot, MfaWaveGroups
from . import selectors
from .forms import WaveRequestForm
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
    approve = PinnedApproveForm.with_defaults(plan_hash=req.plan_hash)
    report = (req.report or {}).get("waves") or {}
    return render(request, "diagnostics_app/mfa/wave_groups.html", {
        "req": req, "approve_form": approve, "reject_form": RejectForm(),
        "waves": [{**w, "size": len(w["user_ids"]), "done": report.get(str(w["number"]))} for w in req.waves],
        "can_decide": (user.has_perm("diagnostics_app.approve_mfa_wave_groups") and req.requested_by_id != user.pk
                       and req.status == "awaiting_approval")})


@requires("diagnostics_app.approve_mfa_wave_groups")
@require_POST
def mfa_approve_wave_groups(request, pk: int):
    req, form = get_object_or_404(MfaWaveGroups, pk=pk), PinnedApproveForm(request.POST)
    return signed(request, obj=req, form=form, refused=(WavesRefused, JobActionRefused),
                  done=f"Wave groups #{pk} approved; the job writing the groups is queued.",
                  decide=lambda: do_approve_wave_groups(req=req, user=request.user, request=request,
                                                        note=form.cleaned_data["note"], valid_for=form.valid_for,
                                                        shown_hash=form.cleaned_data["plan_hash"]))


@requires("diagnostics_app.approve_mfa_wave_groups")
@require_POST
def mfa_reject_wave_groups(request, pk: int):
    req, form = get_object_or_404(MfaWaveGroups, pk=pk), RejectForm(request.POST)
    return decided(request, obj=req, refused=(WavesRefused,), done=f"Wave groups #{pk} rejected.",
                   decide=lambda: do_reject_wave_groups(req=req, user=request.user, reason=form.reason_given,
                                                        request=request))
