"""The job engine: a JobRunner subclass does the work; execute_job() is what an RQ worker calls.

Log lines, progress and checkpoints are committed the moment they happen so the browser (and a
person reading after a crash) sees exactly how far the job got.
"""

from __future__ import annotations

import logging
import os
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
from django.db.models import Max
from django.utils import timezone

from .choices import JobStatus, LogLevel
from .models import Job, JobCheckpoint, JobLogLine
from .redaction import redact, redact_data

logger = logging.getLogger("portal.jobs")

JOB_KINDS: dict[str, type[JobRunner]] = {}
MAX_MESSAGE = 10_000
CANCEL_POLL_SECONDS = 0.5


class JobCancelled(Exception):
    """Raised inside run() at the next cancellation point after someone pressed Cancel."""


class JobFailed(Exception):
    """A job's expected way to end in failure: the message is the summary, no traceback is logged."""

    def __init__(self, message: str, *, result: dict[str, Any] | None = None):
        super().__init__(message)
        self.result = result or {}


def append_line(job_pk: int, *, level: str, message: str, data: Any = None, next_seq: int | None = None) -> int:
    """Store one log line and return its seq. Lines come from the runner and from the portal (cancel,
    worker lost) at once, so a taken seq is not an error: re-read the end of the log and try again."""
    seq = next_seq
    for _ in range(20):
        if seq is None:
            seq = (JobLogLine.objects.filter(job_id=job_pk).aggregate(m=Max("seq"))["m"] or 0) + 1
        try:
            with transaction.atomic():  # a savepoint, so a taken seq does not spoil a caller's transaction
                JobLogLine.objects.create(job_id=job_pk, seq=seq, time=timezone.now(), level=level,
                                          message=message, data=data)
            return seq
        except IntegrityError:
            if not Job.objects.filter(pk=job_pk).exists():
                raise
            seq = None
    raise RuntimeError(f"could not append a log line to job {job_pk}")


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
        self.summary = ""
        self._lock = threading.Lock()
        self._seq = job.log_lines.aggregate(m=Max("seq"))["m"] or 0
        self._cancel_checked_at = 0.0
        self._side_writer: ThreadPoolExecutor | None = None

    # -- what subclasses implement -------------------------------------------------------------
    def run(self) -> dict[str, Any] | None:
        raise NotImplementedError

    # -- log -----------------------------------------------------------------------------------
    def log(self, message: str, *, level: str = LogLevel.INFO, data: Any = None) -> None:
        message = redact(str(message))[:MAX_MESSAGE]
        data = redact_data(data) if data is not None else None
        with self._lock:
            self._seq = self._write(lambda: append_line(self.job.pk, level=level, message=message, data=data,
                                                        next_seq=self._seq + 1))
        logger.info("job %s [%s] %s", self.job.pk, level, message)
        self.check_cancel()

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
        fields = {"progress_done": max(0, int(done))}
        if total is not None:
            fields["progress_total"] = max(0, int(total))
        self._write(lambda: Job.objects.filter(pk=self.job.pk).update(**fields))
        for key, value in fields.items():
            setattr(self.job, key, value)
        self.check_cancel()

    def checkpoint(self, name: str, data: dict | None = None) -> None:
        """Record that step `name` is complete; a resumed run skips it (see `completed`)."""
        self._write(lambda: JobCheckpoint.objects.create(job_id=self.job.pk, name=name, data=data or {}))
        self.debug(f"Checkpoint: {name}")

    @property
    def checkpoints(self) -> dict[str, dict]:
        return {c.name: c.data for c in self.job.checkpoints.all()}

    def completed(self, name: str) -> bool:
        return self.job.checkpoints.filter(name=name).exists()

    def check_cancel(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._cancel_checked_at < CANCEL_POLL_SECONDS:
            return
        self._cancel_checked_at = now
        if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled()

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
    """Proves the worker is alive; silence beyond JOB_WORKER_LOST_AFTER_SECONDS means it died."""

    def __init__(self, job_pk: int):
        super().__init__(name=f"job{job_pk}-heartbeat", daemon=True)
        self.job_pk = job_pk
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.JOB_HEARTBEAT_SECONDS):
                Job.objects.filter(pk=self.job_pk, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())
        finally:
            connection.close()


def execute_job(job_pk: int) -> str:
    """Entry point for an RQ worker (and for inline runs from the command line)."""
    close_old_connections()
    claimed = Job.objects.filter(pk=job_pk, status=JobStatus.QUEUED, cancel_requested=False)
    now = timezone.now()
    job = Job.objects.filter(pk=job_pk).first()
    if job is None:
        return "missing"
    if not claimed.update(status=JobStatus.RUNNING, heartbeat_at=now, worker=f"{socket.gethostname()}:{os.getpid()}",
                          started_at=job.started_at or now, attempts=job.attempts + 1):
        # Cancelled while queued, or another worker has it: nothing to do.
        return job.status
    job.refresh_from_db()
    runner_cls = JOB_KINDS.get(job.kind)
    heartbeat = _Heartbeat(job.pk)
    heartbeat.start()
    runner = runner_cls(job) if runner_cls else None
    status, error, result = JobStatus.FAILED, "", {}
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
        runner.warning("Cancelled at the user's request; the steps before this line are complete.")
        runner.summary = runner.summary or "Cancelled before it finished."
    except JobFailed as exc:
        error, result = str(exc), exc.result
        if runner is not None:
            runner.error(error)
        else:
            append_line(job.pk, level=LogLevel.ERROR, message=error)
    except Exception as exc:  # noqa: BLE001 - any failure must end as a failed job, never a stuck one
        error = f"{type(exc).__name__}: {exc}"
        if runner is not None:
            runner.error(f"Failed: {error}", data={"traceback": traceback.format_exc()})
    finally:
        heartbeat.stopped.set()
        heartbeat.join()
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
    Job.objects.filter(pk=job.pk).update(
        status=status,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
        summary=summary[:500],
        result=redact_data(result),
        error=redact(error),
        warning_count=warnings,
        error_count=job.log_lines.filter(level=LogLevel.ERROR).count(),
    )
    if runner is not None:
        runner.close()
    return status
