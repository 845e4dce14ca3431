"""The job engine: a JobRunner subclass does the work; execute_job() is what an RQ worker calls.

Log lines, progress and checkpoints are committed the moment they happen so the browser (and a
person reading after a crash) sees exactly how far the job got.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, ClassVar

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from portal.object_urls import object_url

from .choices import JobStatus, LogLevel
from .models import Job, JobCheckpoint, JobLogLine
from .redaction import redact, redact_data

logger = logging.getLogger("portal.jobs")

JOB_KINDS: dict[str, type[JobRunner]] = {}
MAX_MESSAGE = 10_000
CANCEL_POLL_SECONDS = 0.5


class JobCancelled(Exception):
    """Raised inside run() at the next cancellation point after someone pressed Cancel."""


class JobSuperseded(BaseException):  # noqa: N818 - not an error of the job: a stop order
    """This runner's attempt is no longer the job's current one (the job was resumed elsewhere).

    A BaseException so that no step's ``except Exception`` (which would roll back) catches it: a
    superseded runner stops at once and writes nothing more; the current attempt owns the job.
    """


class JobWaiting(BaseException):  # noqa: N818 - not an error of the job: a pause order
    """Stop this attempt here and free the worker; the job waits (status Waiting) until the portal
    queues it again (:func:`portal.jobs.services.do_release_waiting_job`), and the next attempt resumes
    after the last checkpoint. A BaseException for the reason JobSuperseded is one: no step's
    ``except Exception`` may take a pause for a failure and roll back."""


class JobFailed(Exception):
    """A job's expected way to end in failure: the message is the summary, no traceback is logged."""

    def __init__(self, message: str, *, result: dict[str, Any] | None = None):
        super().__init__(message)
        self.result = result or {}


# A wrongly declared worker loss does not take the job from a runner that is still alive.
RUNNER_OWNED = (JobStatus.RUNNING, JobStatus.WORKER_LOST)
# Job pks whose runner is alive in this process (inline runs have no RQ entry to ask).
RUNNING_HERE: set[int] = set()


def assert_current(job_pk: int, attempt: int | None, *, lock: bool = False) -> None:
    """Fence: raise JobSuperseded unless ``attempt`` is still the job's current attempt. With ``lock``
    (inside a transaction) the job row stays locked until commit, so a resume cannot slip in between
    this check and the write it guards."""
    if attempt is None:
        return
    rows = Job.objects.filter(pk=job_pk)
    if lock:
        rows = rows.select_for_update()
    current = rows.values("attempts", "status").first()
    if current is None or not owned_by(current, attempt):
        raise JobSuperseded(f"job {job_pk}: attempt {attempt} is no longer current ({current})")


def _insert_fenced_line(job_pk: int, attempt: int, *, seq: int, level: str, message: str, data: Any) -> int:
    """Insert one line only while ``attempt`` owns the job, in one statement: a log line is the most
    frequent write of all (thousands a second), so the fence costs no extra round trip or lock."""
    fields = {f.name: f for f in JobLogLine._meta.concrete_fields}
    values = [job_pk, seq, fields["time"].get_db_prep_save(timezone.now(), connection), level, message,
              fields["data"].get_db_prep_save(data, connection)]
    table, jobs = JobLogLine._meta.db_table, Job._meta.db_table
    columns = ", ".join(connection.ops.quote_name(fields[n].column) for n in ("job", "seq", "time", "level",
                                                                             "message", "data"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT %s, %s, %s, %s, %s, %s WHERE EXISTS "
            f"(SELECT 1 FROM {jobs} WHERE id = %s AND attempts = %s AND status IN (%s, %s))",
            [*values, job_pk, attempt, *RUNNER_OWNED])
        return cursor.rowcount


def owned_by(row: dict, attempt: int) -> bool:
    """A runner owns its job while the attempt is its own and nobody queued the job again (a resume
    re-queues before the next runner takes a new attempt number)."""
    return row["attempts"] == attempt and row["status"] in RUNNER_OWNED


def _last_seq(job_pk: int) -> int:
    return JobLogLine.objects.filter(job_id=job_pk).aggregate(m=Max("seq"))["m"] or 0


# How long a writer keeps trying for a free seq. Every lost try means another writer stored a line, so the
# log moves on; only a job whose writers never pause could hold one back this long.
APPEND_PATIENCE_SECONDS = 30.0


def append_line(job_pk: int, *, level: str, message: str, data: Any = None, next_seq: int | None = None,
                attempt: int | None = None) -> int:
    """Store one log line and return its seq. Lines come from the runner and from the portal (cancel,
    worker lost) at once, so a taken seq is not an error: re-read the end of the log and try again.
    A runner passes its ``attempt``: a superseded runner's line is refused (JobSuperseded).

    On PostgreSQL the loser of a race waits for the winner's commit and both wake together, the winner
    already a step ahead: retried at once, the same writer can lose every time while the other keeps
    writing (CI saw a runner thread lose 20 in a row to the portal). A random pause after a second loss
    breaks that lockstep, and the limit is time, not a count of tries."""
    seq = next_seq
    losses = 0
    give_up_at = time.monotonic() + APPEND_PATIENCE_SECONDS
    while True:
        if seq is None:
            seq = _last_seq(job_pk) + 1
        try:
            with transaction.atomic():  # a savepoint, so a taken seq does not spoil a caller's transaction
                if attempt is None:
                    JobLogLine.objects.create(job_id=job_pk, seq=seq, time=timezone.now(), level=level,
                                              message=message, data=data)
                elif not _insert_fenced_line(job_pk, attempt, seq=seq, level=level, message=message, data=data):
                    assert_current(job_pk, attempt)  # says why: superseded (or the job is gone)
                    raise JobSuperseded(f"job {job_pk}: line {seq} refused")
            return seq
        except IntegrityError:
            if not Job.objects.filter(pk=job_pk).exists():
                raise
            if time.monotonic() > give_up_at:
                raise RuntimeError(f"could not append a log line to job {job_pk}") from None
            seq = None
            losses += 1
            if losses > 1:
                time.sleep(random.uniform(0, min(0.02, 0.001 * losses)))


class JobRunner:
    """Base of every job kind. Subclasses set kind, name, permission and implement run()."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    permission: ClassVar[str] = ""
    queue: ClassVar[str] = "default"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind:
            JOB_KINDS[cls.kind] = cls

    def __init__(self, job: Job):
        self.job = job
        self.attempt = job.attempts
        self.summary = ""
        self._lock = threading.Lock()
        self._seq = _last_seq(job.pk)
        self._cancel_checked_at = 0.0
        self._side_writer: ThreadPoolExecutor | None = None
        self._shielded = 0
        # Set by the heartbeat when it sees another attempt own the job: the next write stops us.
        self.superseded = threading.Event()

    # How the pages name the object object_of returns ("MFA snapshot"), followed by its own number.
    object_noun: ClassVar[str] = ""
    # Kinds that carry their object's number in the job's params name that param and the object's page here:
    # a jobs table then links each row without reading its object.
    object_param: ClassVar[str] = ""
    object_view: ClassVar[str] = ""

    @classmethod
    def object_of(cls, job: Job) -> Any | None:
        """The stored object (with get_absolute_url) this job acts on or made, for kinds that set object_noun;
        None while it does not exist yet (a snapshot is stored at the end of its job)."""
        return None

    @classmethod
    def object_url(cls, job: Job) -> str | None:
        """The page of the object this job acts on (a migration, a preflight report), if it has one."""
        if cls.object_param:
            pk = (job.params or {}).get(cls.object_param)
            return object_url(cls.object_view, pk) if pk else None
        obj = cls.object_of(job)
        return obj.get_absolute_url() if obj is not None else None

    @classmethod
    def object_label(cls, job: Job) -> str | None:
        """How the pages name that object ("Migration #7"): its own number, never the job's, which differs."""
        if cls.object_param:
            pk = (job.params or {}).get(cls.object_param)
            return f"{cls.object_noun} #{pk}" if pk else None
        obj = cls.object_of(job) if cls.object_noun else None
        return f"{cls.object_noun} #{obj.pk}" if obj is not None else None

    @classmethod
    def on_cancelled_before_start(cls, job: Job) -> None:
        """Called (in the cancelling transaction) when a queued job of this kind is cancelled before
        any runner started: a subclass ends the object the job was for."""

    @classmethod
    def on_cancel_queued_again(cls, job: Job) -> str:
        """What a cancel does to a job of this kind that ran before and is queued again (resumed after its
        worker was lost): its next run stops at its first cancellation point. A subclass says what that
        means for its object; the cancel's log line and audit event carry it."""
        return "its next run stops at its first safe point; the steps its earlier run completed stay done"

    # -- what subclasses implement -------------------------------------------------------------
    def run(self) -> dict[str, Any] | None:
        raise NotImplementedError

    # -- log -----------------------------------------------------------------------------------
    def log(self, message: str, *, level: str = LogLevel.INFO, data: Any = None) -> None:
        message = redact(str(message))[:MAX_MESSAGE]
        data = redact_data(data) if data is not None else None
        self._check_not_superseded()
        with self._lock:
            self._seq = self._write(lambda: append_line(self.job.pk, level=level, message=message, data=data,
                                                        next_seq=self._seq + 1, attempt=self.attempt))
        # Never a cancellation point: a rollback's or a failure handler's own lines must not abort it.
        logger.info("job %s [%s] %s", self.job.pk, level, message)

    def warning_total(self) -> int:
        """Warnings of every run of this job, a resumed run's included."""
        return self.job.log_lines.filter(level=LogLevel.WARNING).count()

    def debug(self, message: str, **kw) -> None:
        self.log(message, level=LogLevel.DEBUG, **kw)

    def info(self, message: str, **kw) -> None:
        self.log(message, level=LogLevel.INFO, **kw)

    def success(self, message: str, **kw) -> None:
        self.log(message, level=LogLevel.SUCCESS, **kw)

    def warning(self, message: str, **kw) -> None:
        self.log(message, level=LogLevel.WARNING, **kw)

    def error(self, message: str, **kw) -> None:
        self.log(message, level=LogLevel.ERROR, **kw)

    def _write(self, fn):
        """Commit now even when called inside a transaction: a log line must never wait for, or
        be rolled back with, the step that wrote it. Django gives each thread its own connection."""
        if connection.in_atomic_block:
            if self._side_writer is None:
                self._side_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"job{self.job.pk}-log")
            return self._side_writer.submit(fn).result()
        return fn()

    # -- progress, checkpoints, cancel ---------------------------------------------------------
    def progress(self, done: int, total: int | None = None) -> None:
        """Record progress. A unit of work is done here, so it is also a cancellation point."""
        fields = {"progress_done": max(0, int(done))}
        if total is not None:
            fields["progress_total"] = max(0, int(total))
        self._check_not_superseded()
        if not self._write(lambda: Job.objects.filter(pk=self.job.pk, attempts=self.attempt,
                                                          status__in=RUNNER_OWNED).update(**fields)):
            raise JobSuperseded(f"job {self.job.pk}: attempt {self.attempt} is superseded")
        for key, value in fields.items():
            setattr(self.job, key, value)
        self.check_cancel()

    def checkpoint(self, name: str, data: dict | None = None) -> None:
        """Record that step `name` is complete; a resumed run skips it (see `completed`)."""
        self._check_not_superseded()

        def write():
            with transaction.atomic():
                assert_current(self.job.pk, self.attempt, lock=True)
                JobCheckpoint.objects.create(job_id=self.job.pk, name=name, data=data or {})
        self._write(write)
        self.debug(f"Checkpoint: {name}")

    @contextmanager
    def fenced(self) -> Iterator[None]:
        """A transaction in which this runner is the job's current attempt until commit: wrap every
        write of a runner to other tables (a migration's status, its backups) in it."""
        self._check_not_superseded()
        with transaction.atomic():
            assert_current(self.job.pk, self.attempt, lock=True)
            yield

    def _check_not_superseded(self) -> None:
        if self.superseded.is_set():
            raise JobSuperseded(f"job {self.job.pk}: attempt {self.attempt} is superseded")

    @property
    def checkpoints(self) -> dict[str, dict]:
        return {c.name: c.data for c in self.job.checkpoints.all()}

    def completed(self, name: str) -> bool:
        return self.job.checkpoints.filter(name=name).exists()

    def check_cancel(self, *, force: bool = False) -> None:
        """A cancellation point: between steps and inside long waits, never inside a shield."""
        self._check_not_superseded()
        if self._shielded:
            return
        now = time.monotonic()
        if not force and now - self._cancel_checked_at < CANCEL_POLL_SECONDS:
            return
        self._cancel_checked_at = now
        row = Job.objects.filter(pk=self.job.pk).values("cancel_requested", "attempts", "status").first()
        if row is None or not owned_by(row, self.attempt):
            raise JobSuperseded(f"job {self.job.pk}: attempt {self.attempt} is superseded")
        if row["cancel_requested"]:
            raise JobCancelled()

    @contextmanager
    def shield(self) -> Iterator[None]:
        """Cancel waits while this block runs: rollbacks and the saving of final states finish."""
        self._shielded += 1
        try:
            yield
        finally:
            self._shielded -= 1

    def forbid_cancel(self, reason: str) -> None:
        """From here on a cancel is refused (the point of no return). A cancel that was requested just
        before wins instead: it is raised now, while stopping is still safe."""
        self._check_not_superseded()
        updated = Job.objects.filter(pk=self.job.pk, attempts=self.attempt, status__in=RUNNER_OWNED,
                                     cancel_requested=False).update(
            cancellable=False, not_cancellable_reason=reason[:200])
        if not updated:
            self.check_cancel(force=True)
            raise JobSuperseded(f"job {self.job.pk}: attempt {self.attempt} is superseded")
        self.job.cancellable = False

    @contextmanager
    def step(self, name: str, data_on_done: dict | None = None) -> Iterator[bool]:
        """Run a step once: yields False (skip) when a previous run already completed it."""
        if self.completed(name):
            self.info(f"Step '{name}' already done in an earlier run; skipping it.")
            yield False
            return
        self.check_cancel(force=True)
        yield True
        self.checkpoint(name, data_on_done)

    def close(self) -> None:
        if self._side_writer is not None:
            self._side_writer.submit(connection.close).result()
            self._side_writer.shutdown()
            self._side_writer = None


class _Heartbeat(threading.Thread):
    """Proves the worker is alive; silence beyond JOB_WORKER_LOST_AFTER_SECONDS means it died.

    It must outlive database errors (a write lock held longer than SQLite's timeout used to kill it,
    and a live job then looked lost): it logs them and beats again. It beats only for its own attempt;
    when another attempt owns the job it tells the runner, which stops at its next write.
    """

    def __init__(self, job_pk: int, attempt: int, superseded: threading.Event):
        super().__init__(name=f"job{job_pk}-heartbeat", daemon=True)
        self.job_pk = job_pk
        self.attempt = attempt
        self.superseded = superseded
        self.stopped = threading.Event()

    def beat(self) -> None:
        rows = Job.objects.filter(pk=self.job_pk, attempts=self.attempt, status__in=RUNNER_OWNED)
        # A job wrongly marked worker lost (its heartbeat was late) is running after all: say so again.
        if not rows.update(heartbeat_at=timezone.now(), status=JobStatus.RUNNING, finished_at=None):
            self.superseded.set()
            self.stopped.set()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.JOB_HEARTBEAT_SECONDS):
                try:
                    self.beat()
                except Exception:  # noqa: BLE001 - a missed beat is harmless, a dead heartbeat is not
                    logger.warning("job %s: heartbeat failed; trying again", self.job_pk, exc_info=True)
                    close_old_connections()
                    try:
                        connection.close()
                    except Exception:  # noqa: BLE001
                        pass
        finally:
            connection.close()


def execute_job(job_pk: int) -> str:
    """Entry point for an RQ worker (and for inline runs from the command line)."""
    close_old_connections()
    job = Job.objects.filter(pk=job_pk).first()
    if job is None:
        return "missing"
    now = timezone.now()
    # The claim takes a new attempt number: from here every write of an older runner is refused.
    # A job that ran before and was cancelled while queued again still runs: its runner stops at its first
    # cancellation point, undoing what it must (a migration rolls back); one that never ran just ends.
    claimed = Job.objects.filter(Q(cancel_requested=False) | Q(attempts__gt=0), pk=job_pk,
                                 status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, heartbeat_at=now, worker=f"{socket.gethostname()}:{os.getpid()}",
        started_at=job.started_at or now, finished_at=None, attempts=F("attempts") + 1)
    if not claimed:
        # Cancelled while queued, or another worker has it: nothing to do.
        return job.status
    job.refresh_from_db()
    RUNNING_HERE.add(job.pk)
    try:
        return _run_claimed(job)
    finally:
        RUNNING_HERE.discard(job.pk)


def _run_claimed(job: Job) -> str:
    runner_cls = JOB_KINDS.get(job.kind)
    runner = runner_cls(job) if runner_cls else None
    superseded = runner.superseded if runner else threading.Event()
    heartbeat = _Heartbeat(job.pk, job.attempts, superseded)
    heartbeat.start()
    status, error, result = JobStatus.FAILED, "", {}
    try:
        try:
            if runner is None:
                raise JobFailed(f"Unknown job kind '{job.kind}': this portal version cannot run it.")
            if job.attempts > 1:
                last = job.last_checkpoint
                runner.info(f"Run {job.attempts} resumes after checkpoint '{last.name}'." if last
                            else f"Run {job.attempts} starts from the beginning (no checkpoint was reached).")
            result = runner.run() or {}
            status = JobStatus.WARNINGS if runner.warning_total() else JobStatus.SUCCEEDED
        except JobCancelled:
            status = JobStatus.CANCELLED
            with runner.shield():
                runner.warning("Cancelled at the user's request; the steps before this line are complete.")
            runner.summary = runner.summary or "Cancelled before it finished."
        except JobFailed as exc:
            error, result = str(exc), exc.result
            if runner is not None:
                with runner.shield():
                    runner.error(error)
            else:
                append_line(job.pk, level=LogLevel.ERROR, message=error, attempt=job.attempts)
        except Exception as exc:  # noqa: BLE001 - any failure must end as a failed job, never a stuck one
            error = f"{type(exc).__name__}: {exc}"
            if runner is not None:
                with runner.shield():
                    runner.error(f"Failed: {error}", data={"traceback": traceback.format_exc()})
    except JobWaiting as exc:
        status, runner.summary = JobStatus.WAITING, str(exc)
        # Parked half-way: a cancel now would find it queued and end it as "not started", stranding what
        # its first steps did. It runs on to its end or its rollback (the runner checks a cancel requested
        # before it parks).
        Job.objects.filter(pk=job.pk, attempts=job.attempts, status__in=RUNNER_OWNED).update(
            cancellable=False, not_cancellable_reason="it parked half-way, waiting for a step it shares with "
                                                      "other jobs; it runs on to its end or its rollback")
    except JobSuperseded:
        # Another attempt owns the job now; whatever this one would still write would be a lie.
        logger.warning("job %s: attempt %s stopped, another attempt owns the job", job.pk, job.attempts)
        return "superseded"
    finally:
        heartbeat.stopped.set()
        heartbeat.join()
        if runner is not None:
            runner.close()
    warnings = job.log_lines.filter(level=LogLevel.WARNING).count()
    summary = runner.summary if runner else ""
    if summary and status == JobStatus.WARNINGS:
        summary = f"{summary} {warnings} warning(s): review them below."
    if not summary:
        summary = {
            JobStatus.SUCCEEDED: "Finished successfully.",
            JobStatus.WARNINGS: f"Finished with {warnings} warning(s): review them below.",
            JobStatus.FAILED: f"Failed: {redact(error)}",
        }.get(status, "")
    saved = Job.objects.filter(pk=job.pk, attempts=job.attempts, status__in=RUNNER_OWNED).update(
        status=status,
        finished_at=None if status == JobStatus.WAITING else timezone.now(),
        heartbeat_at=timezone.now(),
        summary=summary[:500],
        result=redact_data(result),
        error=redact(error),
        warning_count=warnings,
        error_count=job.log_lines.filter(level=LogLevel.ERROR).count(),
    )
    return status if saved else "superseded"
