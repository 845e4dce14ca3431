"""Writes of the writeback rename area: plans (made by a job, stored as a new version), their approval
(the DL migration's four-eyes pattern), the runbook's confirmed steps and verifications."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from portal.approvals.signoff import SignOff, do_decline, do_sign, refusals_audited
from portal.audit.services import record
from portal.directory import writeback_names as wn
from portal.jobs.models import Job
from portal.jobs.services import do_start_job

from ..models import WritebackPlan, WritebackPlanRow, WritebackRunbookStep, WritebackVerification
from .choices import PlanStatus, RowSection
from .plan import BuiltPlan
from .selectors import planned_entries

PLAN_JOB = "writeback_plan"
VERIFY_JOB = "writeback_verify"
ROW_FIELDS = ("section", "object_id", "guid", "display_name", "current_dn", "planned_dn", "planned_cn", "truncated",
              "flags", "changes", "collides", "collision", "same_display_name", "risks", "risks_key", "risk_detail",
              "mail_enabled", "security_enabled", "group_types", "writeback_enabled", "on_premises_group_type",
              "cloud_sync", "cloud_sync_notes")


class WritebackRefused(Exception):
    """The action cannot go ahead; the message says why. Nothing was changed."""


def _target(plan: WritebackPlan) -> str:
    return f"writeback_plan:{plan.pk}"


PLAN_SIGNOFF = SignOff(
    model=WritebackPlan, kwarg="plan", permission="diagnostics_app.approve_writeback_plan",
    what="a writeback plan", refused=WritebackRefused, awaiting=PlanStatus.AWAITING_APPROVAL,
    approved=PlanStatus.APPROVED, rejected=PlanStatus.REJECTED, audit="writeback.plan",
    label=lambda plan: f"Plan v{plan.version}", target=_target, this="this plan")


def do_start_plan(*, user, request=None, enqueue: bool = True) -> Job:
    """Queue a plan job (reads AD and Graph, changes nothing)."""
    return do_start_job(kind=PLAN_JOB, user=user, params={}, target="group writeback: rename plan",
                        request=request, enqueue=enqueue)


@transaction.atomic
def do_store_plan(built: BuiltPlan, *, container: str, job: Job | None = None, user=None) -> WritebackPlan:
    """Store a new version; the previous one is what its diff compares with. Older drafts and unsigned
    requests are superseded: an approver must never sign a reading older than the newest."""
    previous = WritebackPlan.objects.select_for_update().order_by("-version").first()
    version = (WritebackPlan.objects.aggregate(v=Max("version"))["v"] or 0) + 1
    planned = [r for r in built.rows if r["section"] == RowSection.PLANNED]
    entries = [{k: r.get(k) for k in ("object_id", "display_name", "current_dn", "planned_dn", "flags", "risks",
                                      "collides")} for r in planned]
    diff = wn.diff_plans(planned_entries(previous), entries) if previous else {}
    plan = WritebackPlan.objects.create(
        version=version, job=job, started_by=user, container=container, plan_hash=wn.plan_hash(entries),
        counts=built.counts(), diff=diff, previous=previous, notes=built.notes[:50])
    WritebackPlanRow.objects.bulk_create(
        [WritebackPlanRow(plan=plan, **{k: row[k] for k in ROW_FIELDS}) for row in built.rows], batch_size=1000)
    superseded = WritebackPlan.objects.filter(
        status__in=(PlanStatus.DRAFT, PlanStatus.AWAITING_APPROVAL), version__lt=version
    ).update(status=PlanStatus.SUPERSEDED)
    record(actor=user, action="writeback.plan", target=f"writeback_plan:{plan.pk}", job=job,
           after={"version": version, "plan_hash": plan.plan_hash, "counts": plan.counts, "superseded": superseded})
    return plan


# --- approval (the pattern of migrations_app: four eyes, pinned hash, expiry) -----------------------


def check_is_newest(plan: WritebackPlan) -> None:
    newest = WritebackPlan.objects.order_by("-version").values_list("version", flat=True).first()
    if newest != plan.version:
        raise WritebackRefused(f"Plan v{plan.version} is not the newest reading (v{newest} is): open that one.")


@PLAN_SIGNOFF.audited("request_approval")
@transaction.atomic
def do_request_approval(*, plan: WritebackPlan, user, request=None) -> WritebackPlan:
    plan = WritebackPlan.objects.select_for_update().get(pk=plan.pk)
    if not user.has_perm("diagnostics_app.run_writeback_plan"):
        raise PermissionDenied("Requesting approval of a writeback plan needs the Administrator role.")
    if plan.status != PlanStatus.DRAFT:
        raise WritebackRefused(f"Plan v{plan.version} is {plan.get_status_display().lower()}: only a draft can be "
                               "sent for approval.")
    check_is_newest(plan)
    if plan.rows.filter(section=RowSection.PLANNED, collides=True).exists():
        raise WritebackRefused("Some planned DNs collide inside the OU: the rename would fail for them. Resolve the "
                               "collisions (rename a cloud group) and make a new plan.")
    now = timezone.now()
    WritebackPlan.objects.filter(pk=plan.pk).update(status=PlanStatus.AWAITING_APPROVAL, requested_by=user,
                                                    requested_at=now)
    record(actor=user, action="writeback.plan.request_approval", target=f"writeback_plan:{plan.pk}",
           after={"version": plan.version, "plan_hash": plan.plan_hash}, request=request)
    plan.refresh_from_db()
    return plan


@PLAN_SIGNOFF.audited("approve")
@transaction.atomic
def do_approve_plan(*, plan: WritebackPlan, user, plan_hash: str, valid_for: timedelta | None = None,
                    note: str = "", request=None) -> WritebackPlan:
    """Sign exactly the plan the approver read (its hash, sent with the form); the runbook refuses to
    start once the approval has expired."""
    return do_sign(PLAN_SIGNOFF, obj=plan, user=user, valid_for=valid_for, note=note, shown_hash=plan_hash,
                   fields={"approved_hash": plan.plan_hash}, audit={"version": plan.version}, request=request)


@PLAN_SIGNOFF.audited("reject")
@transaction.atomic
def do_reject_plan(*, plan: WritebackPlan, user, reason: str = "", request=None) -> WritebackPlan:
    return do_decline(PLAN_SIGNOFF, obj=plan, user=user, reason=reason, audit={"version": plan.version},
                      request=request)


def check_approved(plan: WritebackPlan) -> None:
    """The plan is signed, the signature covers its content, and it has not expired."""
    if plan.status != PlanStatus.APPROVED:
        raise WritebackRefused(f"Plan v{plan.version} is {plan.get_status_display().lower()}: the runbook needs an "
                               "approved plan.")
    if plan.approved_hash != plan.plan_hash:
        raise WritebackRefused("The approval does not cover this plan's content.")
    if plan.approval_expires_at and plan.approval_expires_at < timezone.now():
        when = f"{plan.approval_expires_at:%Y-%m-%d %H:%M}"
        raise WritebackRefused(f"The approval of plan v{plan.version} expired at {when} UTC: make a new plan and "
                               "have it approved again.")


# --- runbook -----------------------------------------------------------------------------------------


@refusals_audited("writeback.runbook.confirm", kwarg="plan", target=_target, refused=WritebackRefused)
def do_confirm_step(*, plan: WritebackPlan, user, step: str, checks: list[dict[str, Any]], note: str = "",
                    request=None) -> WritebackRunbookStep:
    """Record that a person confirmed a step; ``checks`` are the portal's own checks, all passed (the
    runbook module ran them and refuses before this when one failed)."""
    from .runbook import STEPS, check_order

    if not user.has_perm("diagnostics_app.confirm_writeback_step"):
        raise PermissionDenied("Confirming a runbook step needs the Administrator role.")
    check_approved(plan)
    if step not in STEPS:
        raise WritebackRefused(f"{step!r} is not a step of this runbook.")
    check_order(plan, step)
    failed = [c for c in checks if c.get("ok") is False]  # None: the person checks it by hand
    if failed:
        raise WritebackRefused("Hard stop: " + "; ".join(c["message"] for c in failed))
    try:
        with transaction.atomic():
            done = WritebackRunbookStep.objects.create(plan=plan, step=step, confirmed_by=user, checks=checks,
                                                       note=note[:500])
    except IntegrityError:
        raise WritebackRefused(f"Step {STEPS[step].title!r} is already confirmed.") from None
    record(actor=user, action="writeback.runbook.confirm", target=f"writeback_plan:{plan.pk}",
           after={"step": step, "checks": checks, "note": note[:500]}, request=request)
    return done


def do_start_verification(*, plan: WritebackPlan, user, request=None, enqueue: bool = True) -> Job:
    return do_start_job(kind=VERIFY_JOB, user=user, params={"plan_id": plan.pk},
                        target=f"group writeback: verify plan v{plan.version}", request=request, enqueue=enqueue)


def do_store_verification(*, plan: WritebackPlan, rows: list[dict[str, Any]], job: Job | None = None,
                          user=None) -> WritebackVerification:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    verification = WritebackVerification.objects.create(plan=plan, job=job, counts=counts, rows=rows)
    record(actor=user, action="writeback.verify", target=f"writeback_plan:{plan.pk}", job=job,
           after={"verification": verification.pk, "counts": counts})
    return verification
