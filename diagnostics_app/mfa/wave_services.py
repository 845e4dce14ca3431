"""Writes of the wave-groups flow: request (the waves pinned by their hash), approve (four eyes, expiry:
portal/approvals' validity rule and forms, shared with DL migrations and address fixes), reject, and the steps
the job calls. The tenant is written by the job through the Graph connector only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from portal.approvals.signoff import SignOff, do_decline, do_sign
from portal.audit.services import record
from portal.jobs.services import do_start_job

from ..models import MfaSnapshot, MfaWaveGroups
from .choices import WaveGroupsStatus
from .waves import MAX_WAVES, plan_hash, split_waves

WAVE_GROUPS_JOB = "mfa_wave_groups"


class WavesRefused(Exception):
    """A wave-groups step refused with a reason the person reads (nothing was changed)."""


def check_wave_request(*, snapshot: MfaSnapshot, buckets: list[tuple[str, list[str]]], max_size: int) -> list[dict]:
    if max_size < 1:
        raise WavesRefused("A wave holds at least one user: give a positive maximum wave size.")
    waves = [w.as_dict() for w in split_waves(buckets, max_size)]
    if not waves:
        raise WavesRefused("This readiness result has no users: there is no wave to make a group of.")
    if len(waves) > MAX_WAVES:
        raise WavesRefused(f"That makes {len(waves)} waves; at most {MAX_WAVES} groups are written at once. "
                           "Choose a larger maximum wave size or a narrower scope.")
    return waves


def do_request_wave_groups(*, snapshot: MfaSnapshot, scope: str, group_id: str, wave_by: str, max_size: int,
                           buckets: list[tuple[str, list[str]]], shown_hash: str, user, request=None) -> MfaWaveGroups:
    """Store the waves as the requester saw them; refused if the page's hash no longer matches the snapshot's."""
    if not user.has_perm("diagnostics_app.request_mfa_wave_groups"):
        raise PermissionDenied("Requesting wave groups needs the Administrator role.")
    waves = check_wave_request(snapshot=snapshot, buckets=buckets, max_size=max_size)
    digest = plan_hash(waves)
    if shown_hash and shown_hash != digest:
        raise WavesRefused("The waves changed since the page was shown; look at them again before requesting.")
    req = MfaWaveGroups.objects.create(snapshot=snapshot, scope=scope[:300], group_id=group_id, wave_by=wave_by,
                                       max_size=max_size, waves=waves, plan_hash=digest, requested_by=user)
    record(actor=user, action="mfa.wave_groups.request", target=f"mfa_wave_groups:{req.pk}",
           after={"snapshot": snapshot.pk, "scope": scope, "wave_by": wave_by, "max_size": max_size,
                  "waves": len(waves), "users": req.user_total, "plan_hash": digest}, request=request)
    return req


def _check_pinned(req: MfaWaveGroups) -> None:
    if plan_hash(req.waves) != req.plan_hash:
        raise WavesRefused("The stored waves do not match their hash: they were altered after the request.")


WAVES_SIGNOFF = SignOff(
    model=MfaWaveGroups, kwarg="req", permission="diagnostics_app.approve_mfa_wave_groups", what="wave groups",
    refused=WavesRefused, awaiting=WaveGroupsStatus.AWAITING_APPROVAL, approved=WaveGroupsStatus.APPROVED,
    rejected=WaveGroupsStatus.REJECTED, audit="mfa.wave_groups", label=lambda req: f"Wave groups #{req.pk}",
    target=lambda req: f"mfa_wave_groups:{req.pk}", this="these wave groups", plural=True,
    check_pinned=_check_pinned)


@WAVES_SIGNOFF.audited("approve")
@transaction.atomic
def do_approve_wave_groups(*, req: MfaWaveGroups, user, shown_hash: str, valid_for: timedelta | None = None,
                           note: str = "", request=None, enqueue: bool = True) -> MfaWaveGroups:
    """Sign off exactly the membership the approver was shown (its hash); the job refuses once it expired."""
    req = do_sign(WAVES_SIGNOFF, obj=req, user=user, valid_for=valid_for, note=note, shown_hash=shown_hash,
                  request=request)
    # The approver starts it on behalf of the requester, under the requester's permission.
    job = do_start_job(kind=WAVE_GROUPS_JOB, user=user, on_behalf_of=req.requested_by, params={"wave_groups": req.pk},
                       target=f"MFA wave groups #{req.pk}", request=request, enqueue=enqueue)
    MfaWaveGroups.objects.filter(pk=req.pk).update(job=job)
    req.refresh_from_db()
    return req


@WAVES_SIGNOFF.audited("reject")
@transaction.atomic
def do_reject_wave_groups(*, req: MfaWaveGroups, user, reason: str = "", request=None) -> MfaWaveGroups:
    return do_decline(WAVES_SIGNOFF, obj=req, user=user, reason=reason, request=request)


def check_can_write(*, req: MfaWaveGroups) -> None:
    # A finished or failed request may run again while its approval lasts: the groups converge to the waves.
    if req.status not in (WaveGroupsStatus.APPROVED, WaveGroupsStatus.DONE, WaveGroupsStatus.FAILED) \
            or req.approved_by_id is None:
        raise WavesRefused(f"Wave groups #{req.pk} are {req.get_status_display().lower()}: only approved wave "
                           "groups are written.")
    if req.approval_expires_at is None or req.approval_expires_at < timezone.now():
        raise WavesRefused(f"The approval of wave groups #{req.pk} expired; request them again.")
    if plan_hash(req.waves) != req.plan_hash:
        raise WavesRefused("The stored waves do not match the approved hash: nothing is written.")


def do_save_wave_progress(*, req: MfaWaveGroups, report: dict[str, Any]) -> None:
    """After each wave, so a re-run after a failure knows the groups already created."""
    MfaWaveGroups.objects.filter(pk=req.pk).update(report=report)


def do_finish_wave_groups(*, req: MfaWaveGroups, report: dict[str, Any], failed: str = "") -> MfaWaveGroups:
    status = WaveGroupsStatus.FAILED if failed else WaveGroupsStatus.DONE
    report = {**report, "error": failed}
    MfaWaveGroups.objects.filter(pk=req.pk).update(status=status, report=report)
    waves = report.get("waves") or {}
    record(actor=None, action="mfa.wave_groups.write", target=f"mfa_wave_groups:{req.pk}", job=req.job,
           after={"created": sum(1 for w in waves.values() if w.get("created_now")),
                  "added": sum(int(w.get("added", 0)) for w in waves.values()),
                  "removed": sum(int(w.get("removed", 0)) for w in waves.values()), "error": failed})
    req.refresh_from_db()
    return req
