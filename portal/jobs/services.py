"""Writes on jobs: start, cancel, resume, and the detection of jobs whose worker died."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import django_rq
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from portal.audit.services import record

from .choices import ACTIVE_STATUSES, JobStatus, LogLevel
from .models import Job
from .runner import JOB_KINDS, JobRunner, append_line, execute_job


class JobActionRefused(Exception):
    """The action makes no sense for this job in its present state; the message says why."""


def _enqueue(job_pk: int, queue: str) -> None:
    rq_job = django_rq.get_queue(queue).enqueue(execute_job, job_pk, job_timeout=settings.RQ_QUEUES[queue]
                                                ["DEFAULT_TIMEOUT"], result_ttl=3600, failure_ttl=86400)
    Job.objects.filter(pk=job_pk).update(rq_id=rq_job.id)


def runner_for(kind: str) -> type[JobRunner]:
    try:
        return JOB_KINDS[kind]
    except KeyError:
        raise JobActionRefused(f"There is no job kind '{kind}'.") from None


def _system_line(job: Job, message: str, level: str = LogLevel.INFO) -> None:
    """A line written by the portal itself (not the runner), e.g. on cancel or worker loss."""
    append_line(job.pk, level=level, message=message)


@transaction.atomic
def do_start_job(*, kind: str, user, params: dict | None = None, target: str = "", request=None,
                 enqueue: bool = True) -> Job:
    """Create the job and queue it once the transaction commits (a worker never sees a half-made job)."""
    runner = runner_for(kind)
    if user is not None and not user.has_perm(runner.permission):
        raise PermissionDenied(f"Starting a {runner.name} needs the permission {runner.permission}.")
    job = Job.objects.create(kind=kind, name=runner.name, target=target, params=params or {},
                             user=user, queue=runner.queue)
    record(actor=user, action=f"job.start.{kind}", target=f"job:{job.pk}", after={"params": job.params},
           job=job, request=request)
    if enqueue:
        transaction.on_commit(partial(_enqueue, job.pk, job.queue))
    return job


def run_job_inline(job: Job) -> Job:
    """Run in this process (command line, tests): the same code path as a worker."""
    execute_job(job.pk)
    job.refresh_from_db()
    return job


def check_can_cancel(*, job: Job, user) -> None:
    if not job.is_active:
        raise JobActionRefused(f"Job #{job.pk} has already ended ({job.get_status_display().lower()}); "
                               "there is nothing to cancel.")
    if job.user_id != getattr(user, "pk", None) and not user.has_perm("jobs.cancel_any_job"):
        raise JobActionRefused("Only the person who started this job, or an Administrator, can cancel it.")


@transaction.atomic
def do_cancel_job(*, job: Job, user, request=None) -> Job:
    job = Job.objects.select_for_update().get(pk=job.pk)
    check_can_cancel(job=job, user=user)
    if job.status == JobStatus.QUEUED:
        # Not started: it ends here; a worker that picks it up later finds it cancelled and skips it.
        Job.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED, cancel_requested=True,
                                             finished_at=timezone.now(), summary="Cancelled before it started.")
        _system_line(job, f"Cancelled by {user.get_username()} before it started.", LogLevel.WARNING)
    else:
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        _system_line(job, f"Cancel requested by {user.get_username()}; the job stops at its next safe point.",
                     LogLevel.WARNING)
    record(actor=user, action="job.cancel", target=f"job:{job.pk}", before={"status": job.status},
           job=job, request=request)
    job.refresh_from_db()
    return job


def do_detect_lost_jobs(*, now=None) -> list[Job]:
    """Running jobs whose heartbeat stopped are marked worker lost, with their last checkpoint."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.JOB_WORKER_LOST_AFTER_SECONDS)
    lost = []
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale):
        with transaction.atomic():
            updated = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, heartbeat_at__lt=stale).update(
                status=JobStatus.WORKER_LOST, finished_at=now,
                summary="The worker running this job stopped answering; the job did not finish.")
            if not updated:
                continue
            checkpoint = job.last_checkpoint
            where = f"its last checkpoint was '{checkpoint.name}'" if checkpoint else "it reached no checkpoint"
            _system_line(job, f"Worker lost: no heartbeat from {job.worker or 'the worker'} since "
                              f"{job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC; {where}.", LogLevel.ERROR)
            record(actor=None, action="job.worker_lost", target=f"job:{job.pk}",
                   detail={"worker": job.worker, "checkpoint": checkpoint.name if checkpoint else None}, job=job)
        job.refresh_from_db()
        lost.append(job)
    return lost


@transaction.atomic
def do_resume_job(*, job: Job, user, request=None) -> Job:
    """Queue a lost job again; its runner skips the steps its checkpoints say are done."""
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.status != JobStatus.WORKER_LOST:
        raise JobActionRefused("Only a job whose worker was lost can be resumed.")
    Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED, finished_at=None, cancel_requested=False)
    _system_line(job, f"Resumed by {user.get_username()}.")
    record(actor=user, action="job.resume", target=f"job:{job.pk}", job=job, request=request)
    transaction.on_commit(partial(_enqueue, job.pk, job.queue))
    job.refresh_from_db()
    return job


__all__ = ["ACTIVE_STATUSES", "JobActionRefused", "do_cancel_job", "do_detect_lost_jobs", "do_resume_job",
           "do_start_job", "run_job_inline"]
