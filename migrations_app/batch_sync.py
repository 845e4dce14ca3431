"""One delta sync per wave of a running batch, instead of one (or two) per list.

A list moved out of the sync scope needs a delta cycle before its cloud twin disappears; a finished
list needs one to publish its routing contact. In a batch the list's job does not start that cycle:

* after its move it *joins* the batch's open round and parks (:class:`~portal.jobs.runner.JobWaiting`:
  its worker is free for the next list, so a wave larger than the number of workers still gathers);
* its final sync is *deferred*: recorded in the open round, the list finishes without waiting.

The batch's run job (:func:`do_release_due_round`, every turn) starts the round's one sync once every
list job of the batch that could still join has parked (or ``DL_BATCH_SYNC_GATHER_SECONDS`` after the
first joined), then queues the parked jobs again; they resume after their last checkpoint, find their
round started and go on. A round holding only deferred requests is started once no list of the batch
waits or runs any more (the batch's end): the last wave's routing contacts are published too.

Every attempt is fenced as usual: a list joins inside its runner's fenced transaction, under the
batch's row lock that the run job's turns take as well, and a parked job runs again only through
:func:`portal.jobs.services.do_release_waiting_job` (a new attempt, a new claim).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.runner import JobRunner, JobWaiting
from portal.jobs.services import do_release_waiting_job

from .choices import BackupKind, BatchListRun, MigrationMethod, MigrationStatus
from .models import BatchList, BatchSyncRound, Migration, MigrationBackup, MigrationBatch

Log = Callable[[str, str], None]


class SharedSyncFailed(Exception):
    """The batch's delta sync for this list could not be started: the list rolls back (before its point
    of no return) rather than wait an hour for a deletion nothing will do."""


def _open_round(batch_id: int) -> BatchSyncRound:
    """The batch's open round, made when there is none (the caller holds the batch's row lock)."""
    found = BatchSyncRound.objects.filter(batch_id=batch_id, status=BatchSyncRound.Status.OPEN).first()
    if found is not None:
        return found
    number = (BatchSyncRound.objects.filter(batch_id=batch_id).aggregate(n=Max("number"))["n"] or 0) + 1
    return BatchSyncRound.objects.create(batch_id=batch_id, number=number)


class BatchSyncGate:
    """What a list's migration asks instead of starting a delta sync, when the list runs in a batch."""

    def __init__(self, *, batch_id: int) -> None:
        self.batch_id = batch_id

    def join(self, *, runner: JobRunner, step: str, why: str) -> None:
        """Pass when the batch's round this step joined has started its sync; else join the open round
        and park the job (raises JobWaiting)."""
        key = f"{runner.job.pk}:{step}"
        runner.check_cancel(force=True)  # a cancel asked before it parks still rolls the list back
        with runner.fenced():
            MigrationBatch.objects.select_for_update().filter(pk=self.batch_id).first()
            served = next((r for r in BatchSyncRound.objects.filter(batch_id=self.batch_id).exclude(
                status=BatchSyncRound.Status.OPEN) if key in r.waiting), None)
            if served is None:
                current = _open_round(self.batch_id)
                if key not in current.waiting:
                    current.waiting = [*current.waiting, key]
                    current.save(update_fields=["waiting"])
        if served is not None and served.status == BatchSyncRound.Status.STARTED:
            runner.info(f"The batch's delta sync {served.number} serves this list ({why}): {served.note}")
            return
        if served is not None and served.status == BatchSyncRound.Status.FAILED:
            raise SharedSyncFailed(f"the batch's delta sync {served.number} could not be started: {served.note}")
        if served is not None:  # STARTING: released early by hand; the sync is being started now
            runner.info(f"The batch's delta sync {served.number} is being started ({why}).")
            return
        runner.info(f"Waiting for the batch's delta sync {current.number}, shared by every list of this wave "
                    f"({why}); this job's worker is free meanwhile.")
        raise JobWaiting(f"Waits for the batch's delta sync {current.number}, started once every list of the "
                         "wave has moved.")

    def twin_gone(self, *, runner: JobRunner, step: str, twin_id: str,
                  present: Callable[[list[str]], set[str]]) -> bool:
        """Whether the twin of this list, which moved at ``step``, is gone according to one read of every twin of its
        wave (``present(ids)``: the ids Exchange still has), made by the first of the wave's lists to ask once the
        sync has run. A twin seen gone stays gone (only this list's own rollback brings it back); one still there,
        or a list of no started round, answers False: the list asks Exchange itself, as alone."""
        from . import read_once

        key = f"{runner.job.pk}:{step}"
        served = next((r for r in BatchSyncRound.objects.filter(batch_id=self.batch_id,
                                                                status=BatchSyncRound.Status.STARTED)
                       if key in r.waiting), None)
        if served is None:
            return False
        memo = read_once.wave_memo(self.batch_id, served.number)
        if ("read",) not in memo:
            jobs = [int(k.split(":", 1)[0]) for k in served.waiting if k.endswith(f":{step}")]
            twins = [str(d.get("ExternalDirectoryObjectId") or "").lower() for d in MigrationBackup.objects.filter(
                kind=BackupKind.CLOUD_GROUP, migration__job_id__in=jobs).values_list("data", flat=True)]
            twins = [t for t in twins if t]
            still = present(twins)
            for twin in twins:
                if twin not in still:
                    memo[("gone", twin)] = (True, True)
            memo[("read",)] = (True, len(twins))
            runner.info(f"Read the {len(twins)} cloud twin(s) of delta sync {served.number}'s wave in one go: "
                        f"{len(twins) - len(still)} gone.")
        return ("gone", twin_id.lower()) in memo

    def defer(self, *, runner: JobRunner, why: str) -> int:
        """A sync the list needs but does not wait for (its final sync, the one a rollback needs to bring its
        cloud twin back): published by the batch's next round with the wave's lists. Returns its number."""
        migration_id = (runner.job.params or {}).get("migration_id")
        with runner.fenced():
            MigrationBatch.objects.select_for_update().filter(pk=self.batch_id).first()
            current = _open_round(self.batch_id)
            if migration_id not in current.deferred:
                current.deferred = [*current.deferred, migration_id]
                current.save(update_fields=["deferred"])
        runner.info(f"The batch's delta sync {current.number} publishes this ({why}), with the other lists' "
                    "changes; the list does not wait for it.")
        return current.number


def gate_for(migration: Migration) -> BatchSyncGate | None:
    """The gate of the batch the migration runs in; None for a list migrated on its own."""
    batch_id = BatchList.objects.filter(migration=migration).values_list("batch_id", flat=True).first()
    return BatchSyncGate(batch_id=batch_id) if batch_id else None


def _blocking_jobs(batch: MigrationBatch, waiting: set[int]) -> list[int]:
    """Jobs of the batch's lists that run or wait for a worker and have not joined: they may still join."""
    return list(Job.objects.filter(
        pk__in=batch.lists.filter(run_state=BatchListRun.RUNNING).values("migration__job"),
        status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).exclude(pk__in=waiting).values_list("pk", flat=True))


def _due(batch: MigrationBatch, current: BatchSyncRound, now: datetime) -> str | None:
    """Why the round's sync starts now, or None while it should gather more lists."""
    waiting = {int(key.split(":", 1)[0]) for key in current.waiting}
    if waiting:
        # A joined job that has not parked yet is about to: releasing it now would leave it parked for good.
        if Job.objects.filter(pk__in=waiting, status=JobStatus.RUNNING).exists():
            return None
        if not _blocking_jobs(batch, waiting):
            return f"every running list has moved ({len(waiting)} waiting)"
        if current.opened_at <= now - timedelta(seconds=settings.DL_BATCH_SYNC_GATHER_SECONDS):
            return (f"{len(waiting)} list(s) waited {settings.DL_BATCH_SYNC_GATHER_SECONDS:.0f} s; the others "
                    "join the next sync")
        return None
    if current.deferred and not batch.lists.filter(run_state__in=(BatchListRun.PENDING,
                                                                  BatchListRun.RUNNING)).exists():
        return "no list of the batch runs or waits any more"
    return None


def _parked_jobs(batch: MigrationBatch) -> Iterator[tuple[Job, BatchSyncRound | None]]:
    """The Waiting jobs of the batch's running lists, each with the round it parked on (None: on no round)."""
    keys = {}
    for r in BatchSyncRound.objects.filter(batch=batch).order_by("number"):
        for key in r.waiting:
            keys.setdefault(int(key.split(":", 1)[0]), []).append(r)
    for job in Job.objects.filter(pk__in=batch.lists.filter(run_state=BatchListRun.RUNNING).values(
            "migration__job"), status=JobStatus.WAITING).order_by("pk"):
        rounds = keys.get(job.pk, [])
        # A job joins one round per step: it waits on its newest round.
        yield job, (rounds[-1] if rounds else None)


def _release_stranded(batch: MigrationBatch, *, log: Log, enqueue: bool) -> list[int]:
    """Parked jobs whose round started (or failed) but that were never queued again: the run that started it
    was lost between the two. Queued now, they find their round's outcome and go on or roll back."""
    released = []
    for job, served in _parked_jobs(batch):
        if served is None or served.status not in (BatchSyncRound.Status.STARTED, BatchSyncRound.Status.FAILED):
            continue
        outcome = "started" if served.status == BatchSyncRound.Status.STARTED else "refused"
        why = f"the batch's delta sync {served.number} was {outcome} (the run that should have queued it was lost)."
        if do_release_waiting_job(job=job, why=why, enqueue=enqueue):
            released.append(job.pk)
            log("warning", f"Migration job #{job.pk} was left waiting by a lost run of the batch; queued again for "
                           f"delta sync {served.number}, which was {outcome}.")
    return released


def do_fail_open_rounds(*, batch: MigrationBatch, why: str, log: Log | None = None, enqueue: bool = True) -> list[int]:
    """Nothing will start the batch's pending syncs (its run job is gone for good): each open or half-started
    round fails, and its parked lists, queued again, roll back (they are before their point of no return). The
    finished lists it would have published are published by the sync server's next scheduled cycle."""
    log = log or (lambda level, message: None)
    with transaction.atomic():
        MigrationBatch.objects.select_for_update().filter(pk=batch.pk).first()
        failed = list(BatchSyncRound.objects.filter(batch=batch, status__in=(
            BatchSyncRound.Status.OPEN, BatchSyncRound.Status.STARTING)).values_list("number", flat=True))
        BatchSyncRound.objects.filter(batch=batch, number__in=failed).update(status=BatchSyncRound.Status.FAILED,
                                                                             note=why[:500])
    for number in failed:
        log("error", f"Delta sync {number} will not be started ({why}); its waiting lists roll back.")
    return _release_stranded(batch, log=log, enqueue=enqueue)


def do_release_due_round(*, batch: MigrationBatch, start_sync: Callable[[str], None], log: Log | None = None,
                         now: datetime | None = None, enqueue: bool = True,
                         guard: Callable[[], AbstractContextManager] | None = None,
                         before_sync: Callable[[list[int]], None] | None = None) -> BatchSyncRound | None:
    """One turn of the batch's shared sync: start the open round's delta sync when it is due and queue
    its parked lists again. ``start_sync(why)`` starts one delta cycle (it waits for one already running:
    that one may have begun before the moves). ``before_sync(job_ids)`` reads what the parked lists' twins
    still answer before the sync deletes them (their cloud dependencies); if it fails, the sync is not started
    and the round fails like a sync that could not start. Returns the round it started, if any.

    Only the batch's run job calls it, one turn at a time, in a transaction of ``guard`` (its fence): a
    round found half-started, or parked jobs of a started round, were left so by a lost run of that job,
    and this turn finishes what it began."""
    log = log or (lambda level, message: None)
    now = now or timezone.now()
    _release_stranded(batch, log=log, enqueue=enqueue)
    with guard() if guard is not None else transaction.atomic():
        MigrationBatch.objects.select_for_update().filter(pk=batch.pk).first()
        current = BatchSyncRound.objects.filter(batch=batch, status=BatchSyncRound.Status.STARTING).first()
        if current is not None:
            why = "a lost run of the batch's job had begun to start it"
        else:
            current = BatchSyncRound.objects.filter(batch=batch, status=BatchSyncRound.Status.OPEN).first()
            if current is None or (why := _due(batch, current, now)) is None:
                return None
        # From here no list joins this round: a later one opens the next (its move may follow our start).
        BatchSyncRound.objects.filter(pk=current.pk).update(status=BatchSyncRound.Status.STARTING)
    what = (f"{len(current.waiting)} list(s) moved out of the sync scope"
            + (f", {len(current.deferred)} list(s) to publish" if current.deferred else ""))
    try:
        if before_sync is not None and current.waiting:
            before_sync(sorted({int(k.split(":", 1)[0]) for k in current.waiting}))
        start_sync(f"batch #{batch.pk}, shared by {what}")
    except Exception as exc:  # noqa: BLE001 - the waiting lists must hear of it and roll back, not hang
        note = f"{type(exc).__name__}: {exc}"[:500]
        BatchSyncRound.objects.filter(pk=current.pk).update(status=BatchSyncRound.Status.FAILED, note=note)
        log("error", f"Delta sync {current.number} could not be started ({note}); its waiting lists roll back.")
    else:
        note = f"delta sync {current.number} started {timezone.now():%H:%M:%S} UTC for {what} ({why})"
        BatchSyncRound.objects.filter(pk=current.pk).update(status=BatchSyncRound.Status.STARTED,
                                                            started_at=timezone.now(), note=note[:500])
        log("info", f"D{note[1:]}.")
    current.refresh_from_db()
    outcome = "started" if current.status == BatchSyncRound.Status.STARTED else "refused"
    for job in Job.objects.filter(pk__in={int(k.split(":", 1)[0]) for k in current.waiting}).order_by("pk"):
        do_release_waiting_job(job=job, why=f"the batch's delta sync {current.number} was {outcome}.",
                               enqueue=enqueue)
    return current


def unpublished(batch: MigrationBatch) -> bool:
    """Lists finished whose final changes wait for a delta sync not started yet."""
    return any(r.deferred for r in BatchSyncRound.objects.filter(batch=batch, status=BatchSyncRound.Status.OPEN))


def sync_rounds(batch: MigrationBatch) -> list[BatchSyncRound]:
    return list(BatchSyncRound.objects.filter(batch=batch).order_by("number"))


TAKE_BACK_NOTE = "After the batch's last sync:"


def take_backs_to_check(batch: MigrationBatch) -> dict[int, tuple[str, BatchSyncRound]]:
    """Lists of the batch taken back from an in-place conversion (rolled back, cancelled or failed) whose sync
    rode on one of the batch's rounds: migration id → (its group's object id, that round). A list migrated on
    its own waits for its cycle and checks there; in a batch only the run job, after the batch's last sync,
    can see whether AD is the list's source again."""
    rounds = {m: r for r in sync_rounds(batch) for m in r.deferred}
    if not rounds:
        return {}
    taken_back = Migration.objects.filter(pk__in=rounds, method=MigrationMethod.IN_PLACE).exclude(
        status__in=(MigrationStatus.MIGRATED, MigrationStatus.MIGRATED_WITH_WARNINGS))
    backups = {b.migration_id: b.data for b in MigrationBackup.objects.filter(
        migration__in=taken_back, kind=BackupKind.CLOUD_GROUP)}
    return {m.pk: (m.cloud_group_id or (backups.get(m.pk) or {}).get("ExternalDirectoryObjectId") or "",
                   rounds[m.pk]) for m in taken_back}


def do_record_take_back_checks(*, batch: MigrationBatch, outcomes: dict[int, str]) -> None:
    """Each checked list's outcome after its run note, on the batch's page and in its exports (once: a run job
    queued again after a loss checks again and replaces what its lost run wrote)."""
    for item in BatchList.objects.filter(batch=batch, migration_id__in=outcomes):
        head = item.run_note.split(TAKE_BACK_NOTE)[0].strip()
        note = f"{head} {TAKE_BACK_NOTE} {outcomes[item.migration_id]}".strip()
        BatchList.objects.filter(pk=item.pk).update(run_note=note[:500])
