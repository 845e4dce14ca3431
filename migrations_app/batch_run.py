"""Running a signed batch: schedule it, start one single-list migration job per list (children before
parents), pause, resume, cancel between lists, and finish it through the one transition service.

The decisions (:func:`decide`) are pure: which lists start now, which are blocked by a failed child or
left out by the window's end or a cancel, and whether the batch is over. :func:`do_advance_batch`
applies them under the batch's row lock, so two callers at once never start a list twice; each list
runs as an ordinary migration job (its attempt fencing included) on whichever worker takes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.audit.services import record
from portal.jobs.models import Job
from portal.jobs.runner import append_line
from portal.jobs.services import do_start_job

from . import batch_sync
from .batch_preflight import children_in_batch
from .batch_services import do_transition_batch
from .choices import FINAL_LIST_RUNS, BatchListRun, BatchStatus, MigrationMethod, MigrationStatus
from .models import BatchList, Migration, MigrationBatch
from .services import MigrationRefused, _queue_migration

KIND_BATCH_RUN = "dl_batch_run"
_FROM_MIGRATION = {MigrationStatus.MIGRATED: BatchListRun.MIGRATED,
                   MigrationStatus.MIGRATED_WITH_WARNINGS: BatchListRun.WARNINGS,
                   MigrationStatus.ROLLED_BACK: BatchListRun.FAILED, MigrationStatus.FAILED: BatchListRun.FAILED,
                   MigrationStatus.CANCELLED: BatchListRun.FAILED, MigrationStatus.REJECTED: BatchListRun.FAILED}


# -- decisions -----------------------------------------------------------------------------------
@dataclass
class Decision:
    start: list[str] = field(default_factory=list)
    settle: dict[str, tuple[str, str]] = field(default_factory=dict)  # key → (final run state, why)
    finished: bool = False
    final: str | None = None  # the batch's end state once finished


def decide(*, states: dict[str, str], children: dict[str, set[str]], now: datetime,
           window_end: datetime | None, paused: bool, cancelled: bool) -> Decision:
    """``states``: each list's run state; ``children``: each list → the lists of the batch it contains."""
    out = Decision()
    states = dict(states)
    changed = True
    while changed:  # a blocked parent blocks its own parents in the same turn
        changed = False
        for key in sorted(states):
            if states[key] != BatchListRun.PENDING:
                continue
            bad = sorted(c for c in children.get(key, ()) if states.get(c) in (
                BatchListRun.FAILED, BatchListRun.BLOCKED, BatchListRun.NOT_STARTED))
            if bad:
                out.settle[key] = (BatchListRun.BLOCKED, f"Not started: its child list {bad[0]} "
                                   f"{'failed' if states[bad[0]] == BatchListRun.FAILED else 'did not migrate'}.")
                states[key] = BatchListRun.BLOCKED
                changed = True
    for key in sorted(states):
        if states[key] != BatchListRun.PENDING:
            continue
        if cancelled:
            out.settle[key], states[key] = (BatchListRun.NOT_STARTED, "Not started: the batch was cancelled."), \
                BatchListRun.NOT_STARTED
        elif window_end is not None and now >= window_end:
            out.settle[key], states[key] = (BatchListRun.NOT_STARTED, "Not started: the window ended at "
                                            f"{window_end:%Y-%m-%d %H:%M} UTC."), BatchListRun.NOT_STARTED
        elif not paused and all(states.get(c) in (BatchListRun.MIGRATED, BatchListRun.WARNINGS)
                                for c in children.get(key, ())):
            out.start.append(key)
    if out.start or any(s in (BatchListRun.PENDING, BatchListRun.RUNNING) for s in states.values()):
        return out
    out.finished = True
    if cancelled:
        out.final = BatchStatus.CANCELLED
    elif any(s in (BatchListRun.FAILED, BatchListRun.BLOCKED, BatchListRun.NOT_STARTED) for s in states.values()):
        out.final = BatchStatus.COMPLETED_WITH_ERRORS
    elif any(s == BatchListRun.WARNINGS for s in states.values()):
        out.final = BatchStatus.COMPLETED_WITH_WARNINGS
    else:
        out.final = BatchStatus.COMPLETED
    return out


# -- services --------------------------------------------------------------------------------------
def _target(batch: MigrationBatch) -> str:
    return f"dl-batch:{batch.pk}"


@transaction.atomic
def do_schedule_batch(*, batch: MigrationBatch, user, now_: bool = True, request=None,
                      enqueue: bool = True, inline: bool = False) -> MigrationBatch:
    """Scheduled; it starts now (``now_``, or its window has begun) or the workers' sweep starts it at
    the window's start."""
    if not now_ and batch.window_start is None:
        raise MigrationRefused("The batch has no window start: schedule it now, or set a window first.")
    batch = do_transition_batch(batch=batch, to=BatchStatus.SCHEDULED, user=user, request=request,
                                note="now" if now_ else "at the window's start")
    if now_ or batch.window_start <= timezone.now():
        return do_start_batch_run(batch=batch, user=user, request=request, enqueue=enqueue, inline=inline)
    return batch


def do_start_batch_run(*, batch: MigrationBatch, user, request=None, enqueue: bool = True,
                       inline: bool = False) -> MigrationBatch:
    """Running, with its run job (one per batch: a second call finds it running and does nothing).
    ``inline`` (the command line): the run job runs each list's migration job itself, one at a time."""
    with transaction.atomic():
        locked = MigrationBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != BatchStatus.SCHEDULED or locked.job_id:
            return locked
        locked = do_transition_batch(batch=locked, to=BatchStatus.RUNNING, user=user, request=request)
        job = do_start_job(kind=KIND_BATCH_RUN, user=locked.requested_by or user, target=f"batch #{locked.pk}",
                           params={"batch_id": locked.pk, "inline": inline}, request=request, enqueue=enqueue)
        MigrationBatch.objects.filter(pk=locked.pk).update(job=job)
        locked.lists.update(run_state=BatchListRun.PENDING, run_note="")
        locked.refresh_from_db()
        return locked


def do_end_unstarted_run(*, job: Job) -> None:
    """The batch's run job was cancelled before any worker ran it: no list has started (the run job starts
    them), so the batch ends Cancelled, each list not started, instead of staying Running with nothing to
    run it. Called in the cancelling transaction."""
    batch = MigrationBatch.objects.select_for_update().filter(job=job, status=BatchStatus.RUNNING).first()
    if batch is None or batch.lists.exclude(migration=None).exists():
        return
    batch.lists.update(run_state=BatchListRun.NOT_STARTED,
                       run_note="Not started: the batch's run job was cancelled before it started.")
    do_transition_batch(batch=batch, to=BatchStatus.CANCELLED, user=job.user,
                        note=f"its run job #{job.pk} was cancelled before it started")


def do_start_due_batches(*, now: datetime | None = None) -> list[int]:
    """The workers' periodic sweep: start every scheduled batch whose window has begun."""
    now = now or timezone.now()
    started = []
    for batch in MigrationBatch.objects.filter(status=BatchStatus.SCHEDULED, job__isnull=True,
                                               window_start__lte=now).select_related("requested_by"):
        if batch.requested_by is None:
            continue
        do_start_batch_run(batch=batch, user=batch.requested_by)
        started.append(batch.pk)
    return started


@transaction.atomic
def do_pause_batch(*, batch: MigrationBatch, user, paused: bool, request=None) -> MigrationBatch:
    """Between lists: running lists go on; no new list starts until resumed."""
    if not user.has_perm("migrations_app.migrate_dl"):
        raise PermissionDenied("Pausing a batch needs the Helpdesk or Administrator role.")
    locked = MigrationBatch.objects.select_for_update().get(pk=batch.pk)
    if locked.status not in (BatchStatus.SCHEDULED, BatchStatus.RUNNING):
        raise MigrationRefused(f"Batch #{locked.pk} is {locked.get_status_display().lower()}: only a scheduled or "
                               "running batch is paused or resumed.")
    if locked.paused != paused:
        MigrationBatch.objects.filter(pk=locked.pk).update(paused=paused)
        record(actor=user, action="dl.batch.pause" if paused else "dl.batch.resume", target=_target(locked),
               before={"paused": not paused}, after={"paused": paused}, request=request)
    locked.refresh_from_db()
    return locked


def planned_method(batch: MigrationBatch, item: BatchList) -> str:
    """The method a list of a signed batch runs with: the one its preflight judged and planned it for (its
    plan hash, part of the batch's, pins it)."""
    report = item.preflight or {}
    return (report.get("method") or ((report.get("plan") or {}).get("options") or {}).get("method")
            or (batch.options or {}).get("method") or MigrationMethod.RECREATE)


def _start_list(batch: MigrationBatch, item: BatchList, *, enqueue: bool) -> None:
    report = item.preflight or {}
    method = planned_method(batch, item)
    try:
        with transaction.atomic():
            migration = Migration.objects.create(
                mail=item.mail, options={**(batch.options or {}), "method": method},
                requested_by=batch.requested_by, method=method,
                approved_by=batch.approved_by, decided_at=batch.decided_at,
                decision_note=f"Signed in batch #{batch.pk}", approval_expires_at=batch.approval_expires_at,
                preflight=report, plan_hash=item.plan_hash, distribution_list=item.distribution_list,
                group_name=report.get("group_name") or "", original_dn=report.get("group_dn") or "",
                group_guid=report.get("group_guid") or None, status=MigrationStatus.QUEUED)
    except IntegrityError:
        item.run_state, item.run_note = BatchListRun.FAILED, "Not started: the list has another open migration."
        item.save(update_fields=["run_state", "run_note"])
        return
    _queue_migration(migration=migration, user=batch.requested_by, enqueue=enqueue)
    item.migration, item.run_state, item.run_note = migration, BatchListRun.RUNNING, ""
    item.save(update_fields=["migration", "run_state", "run_note"])


def do_advance_batch(*, batch: MigrationBatch, now: datetime | None = None, enqueue: bool = True,
                     log=None) -> Decision:
    """One turn of the run: read each started list's outcome, start what may start, settle what may
    not, and end the batch once nothing runs or waits. ``log(level, message)`` gets what happened."""
    log = log or (lambda level, message: None)
    with transaction.atomic():
        batch = MigrationBatch.objects.select_for_update().get(pk=batch.pk)
        items = {i.mail.lower(): i for i in batch.lists.select_related("migration", "migration__job",
                                                                       "distribution_list")}
        for item in items.values():
            if item.run_state == BatchListRun.RUNNING and item.migration is not None:
                state = _FROM_MIGRATION.get(item.migration.status)
                if state is not None:
                    item.run_state = state
                    job = item.migration.job
                    item.run_note = (job.summary if job is not None else "")[:500]
                    item.save(update_fields=["run_state", "run_note"])
                    log("success" if state == BatchListRun.MIGRATED else "warning" if state == BatchListRun.WARNINGS
                        else "error", f"{item.mail}: {item.get_run_state_display().lower()}. {item.run_note}")
        decision = decide(states={k: i.run_state for k, i in items.items()},
                          children=children_in_batch(list(items.values())), now=now or timezone.now(),
                          window_end=batch.window_end, paused=batch.paused,
                          cancelled=batch.status == BatchStatus.CANCELLED)
        for key, (state, why) in decision.settle.items():
            BatchList.objects.filter(pk=items[key].pk).update(run_state=state, run_note=why[:500])
            log("warning", f"{items[key].mail}: {why}")
        for key in decision.start:
            _start_list(batch, items[key], enqueue=enqueue)
            log("info", f"{items[key].mail}: started {MigrationMethod(items[key].migration.method).label.lower()} "
                f"(migration job #{items[key].migration.job_id})"
                if items[key].migration else f"{items[key].mail}: {items[key].run_note}")
        if decision.finished and batch_sync.unpublished(batch):
            # The last lists' routing contacts wait for the batch's closing delta sync: the batch ends once
            # the run job started it (its next turn), so "Completed" means published too.
            decision.finished = False
            log("info", "Every list has settled; starting the delta sync that publishes the last lists' changes.")
        if decision.finished and batch.status == BatchStatus.RUNNING:
            summary = {s: 0 for s in BatchListRun.values}
            for state in batch.lists.values_list("run_state", flat=True):
                summary[state] += 1
            note = ", ".join(f"{n} {BatchListRun(s).label.lower()}" for s, n in summary.items() if n)
            do_transition_batch(batch=batch, to=decision.final, user=batch.requested_by, note=note)
    return decision


def do_resume_lost_lists(*, batch: MigrationBatch, log=None, enqueue: bool = True) -> list[int]:
    """A started list whose worker died (SIGKILL, a lost machine) runs on: its job is queued again for the
    next free worker and resumes after its last checkpoint (or rolls back), under the batch's approval.
    Twice at most per list: a list that kills its worker every time waits for an Administrator."""
    from portal.audit.models import AuditEvent
    from portal.jobs.choices import JobStatus
    from portal.jobs.services import do_requeue_lost_job

    log = log or (lambda level, message: None)
    resumed = []
    for job in Job.objects.filter(pk__in=batch.lists.filter(run_state=BatchListRun.RUNNING).values(
            "migration__job"), status=JobStatus.WORKER_LOST):
        resumes = AuditEvent.objects.filter(action="job.resume", target=f"job:{job.pk}").count()
        if resumes >= settings.DL_BATCH_RESUME_LOST:
            continue
        if do_requeue_lost_job(job=job, why=f"it is a list of batch #{batch.pk}, which runs every list it signed",
                               enqueue=enqueue):
            resumed.append(job.pk)
            log("warning", f"Migration job #{job.pk} lost its worker; queued again, it resumes after its last "
                           "checkpoint on the next free worker.")
    return resumed


def _resumes(job: Job) -> int:
    from portal.audit.models import AuditEvent

    return AuditEvent.objects.filter(action="job.resume", target=f"job:{job.pk}").count()


def do_recover_lost_batch_run(*, batch: MigrationBatch, enqueue: bool = True) -> str:
    """The batch's own run job lost its worker: nothing starts the wave's sync, so its parked lists would
    wait for ever. Queued again (``DL_BATCH_RESUME_LOST`` times at most), its next attempt goes on where the
    lost one stopped, fenced as any resumed job. Past that, its parked lists are queued again to roll back
    and its lost lists to resume (each finishes or rolls back on its own), no new list starts, and an
    Administrator resumes the run job to close the batch. Returns what was done ("" when nothing)."""
    from portal.jobs.choices import JobStatus
    from portal.jobs.services import do_requeue_lost_job

    job = batch.job
    if job is None or batch.status != BatchStatus.RUNNING or job.status != JobStatus.WORKER_LOST:
        return ""
    if _resumes(job) < settings.DL_BATCH_RESUME_LOST:
        why = (f"it runs batch #{batch.pk}, whose lists wait for it; it goes on where the lost run stopped "
               "(no list starts twice)")
        return "requeued" if do_requeue_lost_job(job=job, why=why, enqueue=enqueue) else ""
    lines: list[tuple[str, str]] = []

    def note(level: str, message: str) -> None:
        lines.append((level, message))

    released = batch_sync.do_fail_open_rounds(
        batch=batch, log=note, enqueue=enqueue,
        why=f"the batch's run job #{job.pk} lost its worker again after {_resumes(job)} automatic resume(s)")
    resumed = do_resume_lost_lists(batch=batch, log=note, enqueue=enqueue)
    for level, message in lines:
        append_line(job.pk, level=level, message=message)
    if not (released or resumed):
        return ""
    record(actor=None, action="dl.batch.run_lost", target=_target(batch), job=job,
           detail={"released": released, "resumed": resumed, "resumes": _resumes(job)})
    return "lists released"


def do_recover_lost_batch_runs() -> list[int]:
    """The workers' periodic sweep (after it marked lost jobs): every running batch whose run job is lost."""
    from portal.jobs.choices import JobStatus

    return [batch.pk for batch in MigrationBatch.objects.filter(status=BatchStatus.RUNNING,
                                                                job__status=JobStatus.WORKER_LOST).select_related("job")
            if do_recover_lost_batch_run(batch=batch)]


def run_story(batch: MigrationBatch) -> str:
    """What happened to the batch's run job when its worker was lost, for the batch's page ("" when nothing)."""
    from portal.jobs.choices import JobStatus

    job = batch.job
    if job is None:
        return ""
    lost = _lost_count(job)
    if not lost:
        return ""
    resumes = _resumes(job)
    if job.status == JobStatus.WORKER_LOST and batch.status == BatchStatus.RUNNING:
        if resumes < settings.DL_BATCH_RESUME_LOST:
            return (f"The run job lost its worker ({lost} time(s)); the workers' sweep queues it again shortly and it "
                    "goes on where it stopped.")
        return (f"The run job lost its worker {lost} time(s) and was queued again {resumes} time(s): it is not "
                "queued again automatically. Its waiting lists were queued again to roll back, lists whose worker "
                "died resume on their own, and no new list starts. An Administrator resumes the run job from its "
                "page to finish the batch.")
    if job.status == JobStatus.QUEUED:
        return (f"The run job lost its worker ({lost} time(s)) and is queued again: it goes on where it stopped "
                "once a worker takes it.")
    return (f"The run job lost its worker {lost} time(s) and was queued again {resumes} time(s); each time it went "
            "on where it stopped, its waiting lists released, no list started twice.")


def _lost_count(job: Job) -> int:
    from portal.audit.models import AuditEvent

    return AuditEvent.objects.filter(action="job.worker_lost", target=f"job:{job.pk}").count()


def queued_migration_jobs(batch: MigrationBatch, *, older_than: timedelta | None = None) -> list[Job]:
    """The started lists' migration jobs no worker has taken yet (queued for at least ``older_than``)."""
    jobs = Job.objects.filter(pk__in=batch.lists.filter(run_state=BatchListRun.RUNNING).values(
        "migration__job"), status="queued")
    if older_than is not None:
        jobs = jobs.filter(created_at__lte=timezone.now() - older_than)
    return list(jobs.order_by("pk"))


def batch_progress(batch: MigrationBatch) -> tuple[int, int]:
    states = list(batch.lists.values_list("run_state", flat=True))
    return sum(1 for s in states if s in FINAL_LIST_RUNS), len(states)


def run_job_of(batch: MigrationBatch) -> Job | None:
    return batch.job
