"""Writes of the fix flow: plan selected findings, approve (four eyes, pinned hash, expiry: DL migrations'
pattern), and the apply / undo steps the jobs call. The AD reads and writes go through the connector."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from portal.approvals.signoff import SignOff, do_decline, do_sign
from portal.audit.services import record, refusal_recorded
from portal.jobs.models import Job
from portal.jobs.services import do_start_job

from ..models import AddressFinding, AddressFix
from .choices import FixStatus
from .exchange_values import fixable_in_exchange, read_values
from .fixplan import AttributeChange, FixPlan, build_plan
from .rules import Fix

APPLY_JOB = "address_fix_apply"
UNDO_JOB = "address_fix_undo"
VERIFY_JOB = "address_fix_verify"
MAX_OBJECTS = 200


class FixRefused(Exception):
    """A fix step refused with a reason the person reads (nothing was changed)."""


EXCHANGE = "exchange_online"


def _fix_of(finding: AddressFinding) -> Fix | None:
    data = finding.fix or None
    if not data:
        return None
    target = data.get("target")
    if target == EXCHANGE:
        # Exchange Online: the recipient's object id is needed, and only its address properties are changed.
        if not data.get("identity") or not fixable_in_exchange(data["attribute"]):
            return None
    elif target != "ad":
        return None
    return Fix(attribute=data["attribute"], replace=data.get("replace"), clear=bool(data.get("clear")),
               add=tuple(data.get("add") or ()), remove=tuple(data.get("remove") or ()), target=target,
               identity=data.get("identity") if target == EXCHANGE else None)


def check_can_plan(*, findings: list[AddressFinding], user) -> list[tuple[AddressFinding, Fix]]:
    if not user.has_perm("diagnostics_app.plan_address_fix"):
        raise PermissionDenied("Planning a fix needs the Administrator role.")
    fixable = [(f, fix) for f in findings if (fix := _fix_of(f)) is not None]
    if not fixable:
        raise FixRefused("None of the selected findings has a fix the portal can make (a duplicate needs your "
                         "choice of holder).")
    objects = {f.dn.lower() for f, _ in fixable}
    if len(objects) > MAX_OBJECTS:
        raise FixRefused(f"A plan holds at most {MAX_OBJECTS} objects; {len(objects)} were selected.")
    return fixable


def current_values(directory: Any, wanted: Mapping[str, set[str]]) -> dict[str, dict[str, list[str]]]:
    """dn -> attribute -> values, read from AD now; a DN that is gone is left out."""
    from portal.connectors.ad import NotFound

    out: dict[str, dict[str, list[str]]] = {}
    for dn, attributes in wanted.items():
        try:
            obj = directory.read(dn, attributes=sorted(attributes))
        except NotFound:
            continue
        out[dn] = {a: [v for v in obj.get(a) if isinstance(v, str)] for a in attributes}
    return out


def _wanted(changes: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    wanted: dict[str, set[str]] = {}
    for dn, attribute in changes:
        wanted.setdefault(dn, set()).add(attribute)
    return wanted


def exchange_wanted(changes: Iterable[tuple[str, str | None, str]]) -> dict[str, tuple[str, set[str]]]:
    """(dn, Entra object id, attribute) -> dn -> (object id, attributes), what exchange_values.read_values takes."""
    wanted: dict[str, tuple[str, set[str]]] = {}
    for dn, identity, attribute in changes:
        wanted.setdefault(dn, (identity or "", set()))[1].add(attribute)
    return wanted


def needs_exchange(findings: Iterable[AddressFinding]) -> bool:
    """Whether planning these findings reads Exchange Online (the view opens the connection only then)."""
    return any((f.fix or {}).get("target") == EXCHANGE for f in findings)


def do_plan_fix(*, findings: list[AddressFinding], user, directory: Any, exchange: Any | None = None,
                request=None) -> AddressFix:
    """The before/after of every selected finding's fix from the values now (AD's, or Exchange Online's for a
    cloud-managed object or a tenant contact), awaiting someone else's approval."""
    with refusal_recorded(user=user, action="address.fix.plan", target="address_fix", request=request,
                          refused=(FixRefused, PermissionDenied), findings=[f.pk for f in findings][:50]):
        fixable = check_can_plan(findings=findings, user=user)
        in_ad = [(f, fix) for f, fix in fixable if fix.target == "ad"]
        in_exchange = [(f, fix) for f, fix in fixable if fix.target == EXCHANGE]
        current = current_values(directory, _wanted((f.dn, fix.attribute) for f, fix in in_ad)) if in_ad else {}
        if in_exchange:
            if exchange is None:
                raise FixRefused("Exchange Online is not connected: a cloud-managed object's fix cannot be planned.")
            online, _kinds = read_values(exchange, exchange_wanted((f.dn, fix.identity, fix.attribute)
                                                                   for f, fix in in_exchange))
            current.update(online)
        plan = build_plan([(f.dn, fix) for f, fix in fixable], current)
        if not plan.changes:
            raise FixRefused("Nothing to change: " + (" ".join(plan.refused) or "AD already holds the fixed values."))
    fix = AddressFix.objects.create(
        scan=fixable[0][0].scan, requested_by=user, finding_ids=[f.pk for f, _ in fixable], plan=plan.as_dict(),
        plan_hash=plan.hash, refused=list(plan.refused))
    record(actor=user, action="address.fix.plan", target=f"address_fix:{fix.pk}",
           after={"plan_hash": fix.plan_hash, "changes": len(plan.changes), "findings": fix.finding_ids},
           request=request)
    return fix


def stored_plan(fix: AddressFix) -> FixPlan:
    return FixPlan(changes=tuple(AttributeChange(dn=c["dn"], attribute=c["attribute"], before=tuple(c["before"]),
                                                 after=tuple(c["after"]), target=c.get("target", "ad"),
                                                 identity=c.get("identity"))
                                 for c in fix.changes))


def _check_pinned(fix: AddressFix) -> None:
    if stored_plan(fix).hash != fix.plan_hash:
        raise FixRefused("The stored plan does not match its hash: it was altered after it was planned.")


FIX_SIGNOFF = SignOff(
    model=AddressFix, kwarg="fix", permission="diagnostics_app.approve_address_fix", what="an address fix",
    refused=FixRefused, awaiting=FixStatus.AWAITING_APPROVAL, approved=FixStatus.APPROVED,
    rejected=FixStatus.REJECTED, audit="address.fix", label=lambda fix: f"Fix #{fix.pk}",
    target=lambda fix: f"address_fix:{fix.pk}", this="it", requester="the person who planned this fix",
    check_pinned=_check_pinned)


@FIX_SIGNOFF.audited("approve")
@transaction.atomic
def do_approve_fix(*, fix: AddressFix, user, valid_for: timedelta | None = None, note: str = "", request=None,
                   enqueue: bool = True) -> AddressFix:
    """Sign off the plan (its hash); the apply job refuses once the approval expired, and skips each object
    whose values changed since the plan."""
    fix = do_sign(FIX_SIGNOFF, obj=fix, user=user, valid_for=valid_for, note=note, request=request)
    # The approver starts it on behalf of the person who planned it, under their permission.
    job = do_start_job(kind=APPLY_JOB, user=user, on_behalf_of=fix.requested_by, params={"fix": fix.pk},
                       target=f"address fix #{fix.pk}", request=request, enqueue=enqueue)
    AddressFix.objects.filter(pk=fix.pk).update(job=job)
    fix.refresh_from_db()
    return fix


@FIX_SIGNOFF.audited("reject")
@transaction.atomic
def do_reject_fix(*, fix: AddressFix, user, reason: str = "", request=None) -> AddressFix:
    return do_decline(FIX_SIGNOFF, obj=fix, user=user, reason=reason, request=request)


def check_can_apply(*, fix: AddressFix) -> None:
    if fix.status != FixStatus.APPROVED or fix.approved_by_id is None:
        raise FixRefused(f"Fix #{fix.pk} is {fix.get_status_display().lower()}: only an approved fix is applied.")
    if fix.approval_expires_at is None or fix.approval_expires_at < timezone.now():
        raise FixRefused(f"The approval of fix #{fix.pk} expired; plan it again and have it approved again.")
    if stored_plan(fix).hash != fix.plan_hash:
        raise FixRefused("The stored plan does not match the approved hash: nothing is applied.")


def do_save_backup(*, fix: AddressFix, backup: dict[str, dict[str, list[str]]]) -> None:
    AddressFix.objects.filter(pk=fix.pk).update(backup=backup)


def do_finish_apply(*, fix: AddressFix, applied: list[dict], skipped: list[dict], failed: str = "") -> AddressFix:
    status = FixStatus.FAILED if failed else (FixStatus.APPLIED_WITH_SKIPS if skipped else FixStatus.APPLIED)
    report = {**(fix.report or {}), "applied": applied, "skipped": skipped, "error": failed}
    AddressFix.objects.filter(pk=fix.pk).update(status=status, report=report)
    record(actor=None, action="address.fix.apply", target=f"address_fix:{fix.pk}", job=fix.job,
           after={"applied": len(applied), "skipped": len(skipped), "error": failed})
    fix.refresh_from_db()
    return fix


def check_can_undo(*, fix: AddressFix, user) -> None:
    if not user.has_perm("diagnostics_app.plan_address_fix"):
        raise PermissionDenied("Undoing a fix needs the Administrator role.")
    if fix.status not in (FixStatus.APPLIED, FixStatus.APPLIED_WITH_SKIPS, FixStatus.FAILED) or not fix.backup:
        raise FixRefused(f"Fix #{fix.pk} is {fix.get_status_display().lower()}: there is nothing applied to undo.")


def do_start_undo(*, fix: AddressFix, user, request=None, enqueue: bool = True) -> Job:
    with refusal_recorded(user=user, action="address.fix.undo", target=f"address_fix:{fix.pk}", request=request,
                          refused=(FixRefused, PermissionDenied)):
        check_can_undo(fix=fix, user=user)
    job = do_start_job(kind=UNDO_JOB, user=user, params={"fix": fix.pk}, target=f"undo address fix #{fix.pk}",
                       request=request, enqueue=enqueue)
    AddressFix.objects.filter(pk=fix.pk).update(undo_job=job)
    return job


def do_finish_undo(*, fix: AddressFix, restored: list[dict]) -> AddressFix:
    AddressFix.objects.filter(pk=fix.pk).update(status=FixStatus.UNDONE,
                                                report={**(fix.report or {}), "undone": restored})
    record(actor=None, action="address.fix.undo", target=f"address_fix:{fix.pk}", job=fix.undo_job,
           after={"restored": len(restored)})
    fix.refresh_from_db()
    return fix


def check_can_verify(*, fix: AddressFix, user) -> None:
    if not user.has_perm("diagnostics_app.plan_address_fix"):
        raise PermissionDenied("Verifying a fix needs the Administrator role.")
    if fix.status not in (FixStatus.APPLIED, FixStatus.APPLIED_WITH_SKIPS) or not (fix.report or {}).get("applied"):
        raise FixRefused(f"Fix #{fix.pk} is {fix.get_status_display().lower()}: only an applied fix is verified.")


def do_start_verify(*, fix: AddressFix, user, request=None, enqueue: bool = True) -> Job:
    """A delta sync through the Entra Connect server, then a comparison of the cloud objects with the plan."""
    with refusal_recorded(user=user, action="address.fix.verify", target=f"address_fix:{fix.pk}", request=request,
                          refused=(FixRefused, PermissionDenied)):
        check_can_verify(fix=fix, user=user)
    job = do_start_job(kind=VERIFY_JOB, user=user, params={"fix": fix.pk}, target=f"verify address fix #{fix.pk}",
                       request=request, enqueue=enqueue)
    AddressFix.objects.filter(pk=fix.pk).update(report={**(fix.report or {}), "verify_job": job.pk})
    return job


def do_finish_verify(*, fix: AddressFix, job: Job | None, sync: str, results: list[dict]) -> AddressFix:
    fix.refresh_from_db()
    verified = all(r["ok"] is not False for r in results) and bool(results)
    verification = {"at": timezone.now().isoformat(), "sync": sync, "verified": verified, "results": results}
    AddressFix.objects.filter(pk=fix.pk).update(report={**(fix.report or {}), "verification": verification})
    record(actor=None, action="address.fix.verify", target=f"address_fix:{fix.pk}", job=job,
           after={"verified": verified, "checked": len(results),
                  "differences": sum(1 for r in results if r["ok"] is False)})
    fix.refresh_from_db()
    return fix
