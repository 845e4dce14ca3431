"""Writes of migration batches: build (from the inventory or a CSV), preflight, sign-off, schedule.

Every change of a batch's state goes through :func:`do_transition_batch`, which refuses any move
:data:`.choices.BATCH_TRANSITIONS` does not list; the approval copies the single-list pattern (four
eyes also in the database, the plan hash the approver read pinned, an expiry). A change to a batch
after its sign-off sends it back to Submitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from portal.approvals import check_approval_validity, plan_hash
from portal.audit.services import record, refusal_recorded
from portal.jobs.models import Job
from portal.jobs.services import do_start_job

from . import batch_rows
from .choices import (
    BATCH_TRANSITIONS,
    EDITABLE_BATCH_STATUSES,
    BatchListOutcome,
    BatchMethod,
    BatchStatus,
    MigrationMethod,
)
from .models import BatchList, MigrationBatch
from .options import MigrationOptions
from .services import MigrationRefused, check_options

KIND_BATCH_PREFLIGHT = "dl_batch_preflight"
_SIGNED = (BatchStatus.APPROVED, BatchStatus.SCHEDULED)
_RUN_MOVES = (BatchStatus.RUNNING, BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_WARNINGS,
              BatchStatus.COMPLETED_WITH_ERRORS)


class RowsRefused(MigrationRefused):
    """Some rows cannot join the batch; ``rows`` says which and why. Nothing was added."""

    def __init__(self, message: str, rows: list[batch_rows.Row]):
        super().__init__(message)
        self.rows = rows


def _target(batch: MigrationBatch) -> str:
    return f"dl-batch:{batch.pk}"


def check_can_build(user) -> None:
    if not user.has_perm("migrations_app.migrate_dl"):
        raise PermissionDenied("Building a batch needs the Helpdesk or Administrator role.")


def check_window(window_start: datetime | None, window_end: datetime | None) -> None:
    if window_start and window_end and window_end <= window_start:
        raise MigrationRefused("The window must end after it starts.")
    if window_end and window_end <= timezone.now():
        raise MigrationRefused("The window's end has passed already: choose a later end.")


def batch_plan_hash(batch: MigrationBatch) -> str:
    """What a sign-off pins: every list with its own plan hash, the options and the window. Empty while a
    list has no passed preflight."""
    lists = list(batch.lists.order_by("mail").values_list("mail", "plan_hash", "outcome"))
    if not lists or any(not h or o not in (BatchListOutcome.READY, BatchListOutcome.WARNINGS) for _, h, o in lists):
        return ""
    plan = {"options": batch.options, "lists": [[m.lower(), h] for m, h, _ in lists],
            "window_start": batch.window_start.isoformat() if batch.window_start else None,
            "window_end": batch.window_end.isoformat() if batch.window_end else None}
    return plan_hash(plan)


# -- building ------------------------------------------------------------------------------------
def check_batch_method(method: str | None, opts: MigrationOptions) -> str:
    """The batch's rule for its lists' methods; none given: the options' method for every list (as before
    a batch chose per list)."""
    method = method or opts.method
    if method not in BatchMethod.values:
        raise MigrationRefused(f"The method must be one of {', '.join(BatchMethod.values)}, not {method!r}.")
    return method


def check_list_method(value: str) -> str:
    if value not in ("", *MigrationMethod.values):
        raise MigrationRefused(f"A list's method is recreate, in_place or empty (the batch's rule), not {value!r}.")
    return value


@transaction.atomic
def do_create_batch(*, name: str, options: dict[str, Any] | None, user, window_start: datetime | None = None,
                    window_end: datetime | None = None, method: str | None = None, request=None) -> MigrationBatch:
    check_can_build(user)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise MigrationRefused("Give the batch a name (at most 200 characters), e.g. 'Sales lists, Saturday'.")
    opts = check_options(options)
    method = check_batch_method(method, opts)
    check_window(window_start, window_end)
    batch = MigrationBatch.objects.create(name=name, options=opts.to_dict(), method=method, requested_by=user,
                                          window_start=window_start, window_end=window_end)
    record(actor=user, action="dl.batch.create", target=_target(batch),
           after={"name": name, "options": opts.to_dict(), "method": method}, request=request)
    return batch


@transaction.atomic
def do_set_list_methods(*, batch: MigrationBatch, methods: dict[int, str], user, request=None) -> int:
    """A person's method for some lists of the batch (list id → recreate, in_place, or "" for the batch's
    rule). Each list changed needs its preflight again: its plan, and so the batch's, names the method."""
    batch = _editable(batch, user)
    wanted = {pk: check_list_method(value) for pk, value in methods.items()}
    changed = [item for item in batch.lists.filter(pk__in=list(wanted)) if item.method != wanted[item.pk]]
    for item in changed:
        before = item.method
        item.method = wanted[item.pk]
        item.outcome, item.plan_hash, item.preflight = BatchListOutcome.UNCHECKED, "", {}
        item.save(update_fields=["method", "outcome", "plan_hash", "preflight"])
        record(actor=user, action="dl.batch.list_method", target=_target(batch), request=request,
               before={"mail": item.mail, "method": before}, after={"mail": item.mail, "method": item.method})
    if changed:
        _changed(batch, user=user, request=request, what=f"the method of {len(changed)} list(s) changed")
    return len(changed)


def _editable(batch: MigrationBatch, user) -> MigrationBatch:
    check_can_build(user)
    locked = MigrationBatch.objects.select_for_update().get(pk=batch.pk)
    if locked.status not in EDITABLE_BATCH_STATUSES:
        raise MigrationRefused(f"Batch #{locked.pk} is {locked.get_status_display().lower()}: its lists and "
                               "options can no longer change.")
    if locked.requested_by_id != user.pk and not user.has_perm("jobs.cancel_any_job"):
        raise MigrationRefused(f"Batch #{locked.pk} is {locked.requested_by}'s: only they (or an Administrator) "
                               "change it.")
    return locked


def _changed(batch: MigrationBatch, *, user, request, what: str, reset_lists: bool = False) -> None:
    """Whatever changed, the last preflight and the sign-off no longer describe the batch."""
    if reset_lists:
        batch.lists.update(outcome=BatchListOutcome.UNCHECKED, plan_hash="", preflight={})
    MigrationBatch.objects.filter(pk=batch.pk).update(preflight_job=None, preflight_summary={}, plan_hash="")
    if batch.status in _SIGNED:
        do_transition_batch(batch=batch, to=BatchStatus.SUBMITTED, user=user, request=request,
                            note=f"Changed after sign-off: {what}")


@transaction.atomic
def do_add_to_batch(*, batch: MigrationBatch, values: list[tuple[int, str]], user, skip_refused: bool = False,
                    source: str = "csv", request=None) -> list[batch_rows.Row]:
    """Add the addresses (line, address): all of them, or none while a row has a problem
    (``skip_refused``, the inventory's "add what can be added", leaves those rows out instead)."""
    batch = _editable(batch, user)
    rows = batch_rows.judge(values, batch=batch)
    refused = [r for r in rows if not r.ok]
    if refused and not skip_refused:
        raise RowsRefused(f"{len(refused)} of {len(rows)} row(s) cannot join the batch: fix or exclude them. "
                          "Nothing was added.", rows)
    good = [r for r in rows if r.ok]
    BatchList.objects.bulk_create([BatchList(batch=batch, mail=r.value, distribution_list_id=r.list_id)
                                   for r in good])
    if good:
        _changed(batch, user=user, request=request, what=f"{len(good)} list(s) added")
    record(actor=user, action="dl.batch.add", target=_target(batch), request=request,
           after={"added": len(good), "source": source, "left_out": len(refused)},
           detail={"addresses": [r.value for r in good][:200]})
    return rows


@transaction.atomic
def do_remove_from_batch(*, batch: MigrationBatch, list_ids: list[int], user, request=None) -> int:
    batch = _editable(batch, user)
    gone = list(batch.lists.filter(pk__in=list_ids).values_list("mail", flat=True))
    batch.lists.filter(pk__in=list_ids).delete()
    if gone:
        _changed(batch, user=user, request=request, what=f"{len(gone)} list(s) removed")
        record(actor=user, action="dl.batch.remove", target=_target(batch), request=request,
               before={"addresses": gone[:200]})
    return len(gone)


@transaction.atomic
def do_update_batch(*, batch: MigrationBatch, name: str, options: dict[str, Any] | None,
                    window_start: datetime | None, window_end: datetime | None, user, method: str | None = None,
                    request=None) -> MigrationBatch:
    batch = _editable(batch, user)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise MigrationRefused("Give the batch a name (at most 200 characters).")
    checked = check_options(options)
    if method is None:  # a caller that knows only the options: their method changed is the batch's rule changed
        method = checked.method if checked.method != (batch.options or {}).get("method") else batch.method
    method = check_batch_method(method, checked)
    opts = checked.to_dict()
    check_window(window_start, window_end)
    before = {"name": batch.name, "options": batch.options, "window_start": batch.window_start,
              "window_end": batch.window_end, "method": batch.method}
    after = {"name": name, "options": opts, "window_start": window_start, "window_end": window_end, "method": method}
    if before == after:
        return batch
    MigrationBatch.objects.filter(pk=batch.pk).update(name=name, options=opts, window_start=window_start,
                                                      window_end=window_end, method=method)
    batch.refresh_from_db()
    if {k: v for k, v in before.items() if k != "name"} != {k: v for k, v in after.items() if k != "name"}:
        _changed(batch, user=user, request=request, what="options, method or window changed",
                 reset_lists=before["options"] != opts or before["method"] != method)
    record(actor=user, action="dl.batch.update", target=_target(batch), before=before, after=after, request=request)
    batch.refresh_from_db()
    return batch


# -- preflight -----------------------------------------------------------------------------------
@transaction.atomic
def do_start_batch_preflight(*, batch: MigrationBatch, user, request=None, enqueue: bool = True) -> Job:
    if not user.has_perm("migrations_app.run_preflight"):
        raise PermissionDenied("A preflight needs the Helpdesk or Administrator role.")
    batch = MigrationBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status not in (BatchStatus.DRAFT, BatchStatus.SUBMITTED):
        raise MigrationRefused(f"Batch #{batch.pk} is {batch.get_status_display().lower()}: only a draft or a "
                               "submitted batch is checked again.")
    if not batch.lists.exists():
        raise MigrationRefused("The batch has no list yet: add lists from the inventory or a CSV first.")
    job = do_start_job(kind=KIND_BATCH_PREFLIGHT, user=user, params={"batch_id": batch.pk},
                       target=f"batch #{batch.pk}", request=request, enqueue=enqueue)
    MigrationBatch.objects.filter(pk=batch.pk).update(preflight_job=job, preflight_summary={}, plan_hash="")
    return job


@dataclass(frozen=True)
class ListVerdict:
    mail: str
    report: dict[str, Any]
    outcome: str


def do_record_batch_preflight(*, batch: MigrationBatch, job: Job, verdicts: list[ListVerdict],
                              summary: dict[str, Any]) -> None:
    """Store each list's result and the batch's plan hash, unless the batch changed since this job
    started (then its preflight is someone else's, or none)."""
    with transaction.atomic():
        batch = MigrationBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.preflight_job_id != job.pk:
            return
        by_mail = {v.mail.lower(): v for v in verdicts}
        for item in batch.lists.all():
            verdict = by_mail.get(item.mail.lower())
            if verdict is None:
                continue
            item.outcome, item.preflight = verdict.outcome, verdict.report
            item.plan_hash = verdict.report.get("plan_hash") or "" if verdict.outcome != BatchListOutcome.BLOCKED \
                else ""
            item.save(update_fields=["outcome", "preflight", "plan_hash"])
        batch.preflight_summary = summary
        batch.plan_hash = batch_plan_hash(batch)
        batch.save(update_fields=["preflight_summary", "plan_hash"])


# -- the one transition service --------------------------------------------------------------------
def check_transition(*, batch: MigrationBatch, to: str) -> None:
    if to not in BATCH_TRANSITIONS.get(batch.status, ()):
        raise MigrationRefused(f"Batch #{batch.pk} is {batch.get_status_display().lower()}: it cannot become "
                               f"{BatchStatus(to).label.lower()}.")


def _check_actor(batch: MigrationBatch, to: str, user) -> None:
    """Who may make each move: the requester builds, submits, withdraws and schedules; an Approver who
    did not request it decides; the requester or an Administrator cancels; the batch's job runs it."""
    if to in (BatchStatus.APPROVED, BatchStatus.REJECTED):
        if not user.has_perm("migrations_app.approve_migration"):
            raise PermissionDenied("Approving a batch needs the Approver or Administrator role.")
        if batch.requested_by_id == user.pk:
            raise MigrationRefused("Four eyes: someone other than the requester must decide on this batch.")
        return
    if not user.has_perm("migrations_app.migrate_dl"):
        raise PermissionDenied("This needs the Helpdesk or Administrator role.")
    if to in _RUN_MOVES:
        return
    if batch.requested_by_id != user.pk and not user.has_perm("jobs.cancel_any_job"):
        raise MigrationRefused(f"Batch #{batch.pk} is {batch.requested_by}'s: only they or an Administrator can "
                               "do that.")


def do_transition_batch(*, batch: MigrationBatch, to: str, user, note: str = "", request=None,
                        valid_for: timedelta | None = None, signed_hash: str | None = None) -> MigrationBatch:
    """Move the batch to ``to`` if that move is legal and ``user`` may make it; audited, refusals too."""
    action = f"dl.batch.{BatchStatus(to).value}"
    with refusal_recorded(user=user, action=action, target=_target(batch), request=request,
                          refused=(MigrationRefused, PermissionDenied), batch=batch.pk):
        with transaction.atomic():
            return _transition(batch=batch, to=to, user=user, note=note, request=request, valid_for=valid_for,
                               signed_hash=signed_hash)


def _transition(*, batch, to, user, note, request, valid_for, signed_hash) -> MigrationBatch:
    batch = MigrationBatch.objects.select_for_update().get(pk=batch.pk)
    check_transition(batch=batch, to=to)
    _check_actor(batch, to, user)
    now = timezone.now()
    before = batch.status
    fields: dict[str, Any] = {"status": to}
    detail: dict[str, Any] = {}
    if to == BatchStatus.SUBMITTED:
        if before == BatchStatus.DRAFT:
            check_ready_to_sign(batch)
            fields["submitted_at"] = now
        # Back from a sign-off (a change): the approval no longer holds.
        fields.update(approved_by=None, decided_at=None, approval_expires_at=None,
                      decision_note=note[:500] if before in _SIGNED else "")
    elif to == BatchStatus.APPROVED:
        check_ready_to_sign(batch)
        if signed_hash is not None and signed_hash != batch.plan_hash:
            raise MigrationRefused("The batch changed while you read it: read it again before you sign.")
        validity = check_approval_validity(valid_for, refused=MigrationRefused)
        fields.update(approved_by=user, decided_at=now, decision_note=note[:500], approval_expires_at=now + validity)
        detail = {"plan_hash": batch.plan_hash, "expires_at": (now + validity).isoformat(),
                  "lists": batch.lists.count()}
    elif to == BatchStatus.REJECTED:
        if not note.strip():
            raise MigrationRefused("Say why it is rejected: the requester reads the reason.")
        fields.update(approved_by=user, decided_at=now, decision_note=note[:500])
    elif to == BatchStatus.DRAFT:
        fields.update(approved_by=None, decided_at=None, approval_expires_at=None, submitted_at=None)
    elif to == BatchStatus.SCHEDULED:
        if batch.approval_expires_at and now > batch.approval_expires_at:
            raise MigrationRefused(f"The approval expired at {batch.approval_expires_at:%Y-%m-%d %H:%M} UTC: submit "
                                   "the batch again.")
        if batch.plan_hash != batch_plan_hash(batch):
            raise MigrationRefused("The batch no longer matches what was approved: submit it again.")
        if batch.window_end and batch.window_end <= now:
            raise MigrationRefused("The window's end has passed: change the window (the batch goes back to "
                                   "Submitted) and have it approved again.")
    elif to in (BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_WARNINGS, BatchStatus.COMPLETED_WITH_ERRORS,
                BatchStatus.CANCELLED):
        fields["finished_at"] = now
        if note:
            detail["note"] = note[:500]
    MigrationBatch.objects.filter(pk=batch.pk).update(**fields)
    record(actor=user, action=f"dl.batch.{BatchStatus(to).value}", target=_target(batch), request=request,
           before={"status": before}, after={"status": to, **({"note": note[:500]} if note else {})}, detail=detail)
    batch.refresh_from_db()
    _after_transition(batch, before=before, user=user)
    return batch


def check_ready_to_sign(batch: MigrationBatch) -> None:
    """What submitting and approving need: lists, each preflighted since the last change, none blocked.
    The batch page asks it too, so it offers Submit only when the move would be accepted."""
    counts = {o: 0 for o in BatchListOutcome.values}
    for outcome in batch.lists.values_list("outcome", flat=True):
        counts[outcome] += 1
    if not sum(counts.values()):
        raise MigrationRefused("The batch has no list.")
    if counts[BatchListOutcome.UNCHECKED]:
        raise MigrationRefused(f"{counts[BatchListOutcome.UNCHECKED]} list(s) have no preflight since the batch last "
                               "changed: run the batch preflight.")
    if counts[BatchListOutcome.BLOCKED]:
        raise MigrationRefused(f"{counts[BatchListOutcome.BLOCKED]} list(s) are blocked by their preflight: fix "
                               "them or remove them from the batch, then run the preflight again.")
    if not batch.plan_hash or batch.plan_hash != batch_plan_hash(batch):
        raise MigrationRefused("The batch changed since its preflight: run the batch preflight again.")


def _after_transition(batch: MigrationBatch, *, before: str, user) -> None:
    """Hook for what follows a move (notifications); kept apart so the move itself stays one place."""
    from .notifications import notify_batch_moved

    transaction.on_commit(lambda: notify_batch_moved(batch_id=batch.pk, before=before, actor_id=user.pk))


def do_submit_batch(*, batch: MigrationBatch, user, request=None) -> MigrationBatch:
    return do_transition_batch(batch=batch, to=BatchStatus.SUBMITTED, user=user, request=request)


def do_withdraw_batch(*, batch: MigrationBatch, user, request=None) -> MigrationBatch:
    return do_transition_batch(batch=batch, to=BatchStatus.DRAFT, user=user, request=request)


def do_approve_batch(*, batch: MigrationBatch, user, signed_hash: str, note: str = "",
                     valid_for: timedelta | None = None, request=None) -> MigrationBatch:
    return do_transition_batch(batch=batch, to=BatchStatus.APPROVED, user=user, note=note, valid_for=valid_for,
                               signed_hash=signed_hash, request=request)


def do_reject_batch(*, batch: MigrationBatch, user, reason: str, request=None) -> MigrationBatch:
    return do_transition_batch(batch=batch, to=BatchStatus.REJECTED, user=user, note=reason, request=request)


def do_cancel_batch(*, batch: MigrationBatch, user, request=None) -> MigrationBatch:
    return do_transition_batch(batch=batch, to=BatchStatus.CANCELLED, user=user, request=request)
