"""Writes on jobs: start, cancel, resume, the detection of jobs whose worker died, and the sweep that
queues again what a Redis outage left waiting."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

import django_rq
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from portal.audit.services import record, refusal_recorded

from .choices import ACTIVE_STATUSES, RESUMABLE_STATUSES, JobStatus, LogLevel
from .liveness import queue_entry_exists, runner_alive
from .models import Job
from .runner import JOB_KINDS, JobRunner, append_line, execute_job
from .selectors import stale_before

logger = logging.getLogger("portal.jobs")


class JobActionRefused(Exception):
    """The action makes no sense for this job in its present state; the message says why."""


def _enqueue(job_pk: int, queue: str) -> None:
    rq_job = django_rq.get_queue(queue).enqueue(execute_job, job_pk, job_timeout=settings.RQ_QUEUES[queue]
                                                ["DEFAULT_TIMEOUT"], result_ttl=3600, failure_ttl=86400)
    Job.objects.filter(pk=job_pk).update(rq_id=rq_job.id)


def _enqueue_on_commit(job_pk: int, queue: str) -> None:
    """After commit the job exists whatever Redis says: if Redis is down now, the job stays queued
    without a queue entry and the workers' sweep (do_sweep_jobs) queues it once Redis is back."""
    try:
        _enqueue(job_pk, queue)
    except Exception:  # noqa: BLE001 - the request that created the job must not fail after its commit
        logger.warning("job %s: could not be put on the queue now; the sweep will retry", job_pk, exc_info=True)
        # Info, not a warning: the delay is the portal's, the job's own outcome is still to come.
        append_line(job_pk, level=LogLevel.INFO,
                    message="The job queue (Redis) could not be reached; the job is queued again automatically "
                            "once it answers.")


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
                 enqueue: bool = True, on_behalf_of=None) -> Job:
    """Create the job and queue it once the transaction commits (a worker never sees a half-made job).

    ``on_behalf_of``: the job runs as that person's request (their permission, their name on the job),
    started by ``user``, who the audit log names (an Approver signing off someone's migration).
    """
    runner = runner_for(kind)
    runs_as = on_behalf_of or user
    if runs_as is not None and not runs_as.has_perm(runner.permission):
        raise PermissionDenied(f"Starting a {runner.name} needs the permission {runner.permission}.")
    job = Job.objects.create(kind=kind, name=runner.name, target=target, params=params or {},
                             user=runs_as, queue=runner.queue)
    record(actor=user, action=f"job.start.{kind}", target=f"job:{job.pk}", after={"params": job.params},
           detail={"on_behalf_of": on_behalf_of.get_username()} if on_behalf_of is not None else None,
           job=job, request=request)
    if enqueue:
        transaction.on_commit(partial(_enqueue_on_commit, job.pk, job.queue))
    return job


def run_job_inline(job: Job) -> Job:
    """Run in this process (command line, tests): the same code path as a worker."""
    execute_job(job.pk)
    job.refresh_from_db()
    return job


def check_can_cancel(*, job: Job, user) -> None:
    if not user.has_perm("jobs.cancel_job"):
        raise PermissionDenied("Cancelling a job needs the Helpdesk or Administrator role.")
    if not job.is_active:
        raise JobActionRefused(f"Job #{job.pk} has already ended ({job.get_status_display().lower()}); "
                               "there is nothing to cancel.")
    if job.user_id != getattr(user, "pk", None) and not user.has_perm("jobs.cancel_any_job"):
        raise JobActionRefused("Only the person who started this job, or an Administrator, can cancel it.")
    if not job.cancellable:
        why = job.not_cancellable_reason or "it cannot be stopped safely any more"
        raise JobActionRefused(f"Job #{job.pk} is past its point of no return ({why}); it cannot be cancelled, "
                               "let it finish.")


def do_cancel_job(*, job: Job, user, request=None) -> Job:
    with refusal_recorded(user=user, action="job.cancel", target=f"job:{job.pk}", job=job, request=request,
                          refused=(JobActionRefused, PermissionDenied)):
        return _cancel_job(job=job, user=user, request=request)


@transaction.atomic
def _cancel_job(*, job: Job, user, request=None) -> Job:
    job = Job.objects.select_for_update().get(pk=job.pk)
    check_can_cancel(job=job, user=user)
    detail = None
    if job.status == JobStatus.QUEUED and job.attempts:
        # Resumed after a lost worker: what its earlier run did is real, so it is not "not started". Its next
        # run stops at the first safe point (a migration rolls back); ended here, it would strand that work.
        last = job.last_checkpoint
        done = f"its last completed step is '{last.name}'" if last else "it completed no step"
        runner_cls = JOB_KINDS.get(job.kind)
        what = runner_cls.on_cancel_queued_again(job) if runner_cls else "its next run stops at its first safe point"
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        _system_line(job, f"Cancel requested by {user.get_username()} while it waits to resume: it ran before "
                          f"({job.attempts} run(s), {done}); {what}.", LogLevel.WARNING)
        detail = {"queued_again": True, "runs": job.attempts, "last_checkpoint": last.name if last else None}
    elif job.status == JobStatus.QUEUED:
        # Not started: it ends here; a worker that picks it up later finds it cancelled and skips it.
        Job.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED, cancel_requested=True,
                                             finished_at=timezone.now(), summary="Cancelled before it started.")
        _system_line(job, f"Cancelled by {user.get_username()} before it started.", LogLevel.WARNING)
        runner_cls = JOB_KINDS.get(job.kind)
        if runner_cls is not None:
            runner_cls.on_cancelled_before_start(job)
    else:
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        _system_line(job, f"Cancel requested by {user.get_username()}; the job stops at its next safe point.",
                     LogLevel.WARNING)
    record(actor=user, action="job.cancel", target=f"job:{job.pk}", before={"status": job.status},
           detail=detail, job=job, request=request)
    job.refresh_from_db()
    return job


def _mark_lost(job: Job, *, now, stale) -> bool:
    with transaction.atomic():
        updated = Job.objects.filter(pk=job.pk, attempts=job.attempts, status=JobStatus.RUNNING,
                                     heartbeat_at__lt=stale).update(
            status=JobStatus.WORKER_LOST, finished_at=now,
            summary="The worker running this job stopped answering; the job did not finish.")
        if not updated:
            return False
        checkpoint = job.last_checkpoint
        where = f"its last checkpoint was '{checkpoint.name}'" if checkpoint else "it reached no checkpoint"
        _system_line(job, f"Worker lost: no heartbeat from {job.worker or 'the worker'} since "
                          f"{job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC; {where}.", LogLevel.ERROR)
        record(actor=None, action="job.worker_lost", target=f"job:{job.pk}",
               detail={"worker": job.worker, "checkpoint": checkpoint.name if checkpoint else None}, job=job)
    return True


def do_detect_lost_jobs(*, now=None) -> list[Job]:
    """Running jobs whose heartbeat stopped and whose process (or RQ) says it is gone are marked worker
    lost, with their last checkpoint. A late heartbeat of a live runner is not a loss."""
    now = now or timezone.now()
    stale = stale_before(now)
    lost = []
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale):
        if runner_alive(job) or not _mark_lost(job, now=now, stale=stale):
            continue
        job.refresh_from_db()
        lost.append(job)
    return lost


def do_sweep_jobs(*, now=None) -> dict[str, list[int]]:
    """What the worker processes run every JOB_SWEEP_SECONDS: nothing waits for ever.

    A queued job without a queue entry (Redis was down when its transaction committed) is queued
    again; a queued job whose queue entry vanished (Redis restarted without persistence) is marked for
    an Administrator to resume; running jobs whose worker died are marked lost.
    """
    now = now or timezone.now()
    old = now - timedelta(seconds=settings.JOB_REQUEUE_AFTER_SECONDS)
    requeued, vanished = [], []
    for job in Job.objects.filter(status=JobStatus.QUEUED, cancel_requested=False, created_at__lt=old):
        if not job.rq_id:
            _enqueue(job.pk, job.queue)
            _system_line(job, "Queued again by the sweep: its queue entry had not been written (the job queue "
                              "was unreachable when it was created).", LogLevel.INFO)
            record(actor=None, action="job.requeue", target=f"job:{job.pk}", job=job)
            requeued.append(job.pk)
        elif queue_entry_exists(job) is False:
            with transaction.atomic():
                if not Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED, rq_id=job.rq_id).update(
                        status=JobStatus.QUEUE_LOST, finished_at=now,
                        summary="Its entry in the job queue vanished before a worker took it: an Administrator "
                                "can queue it again."):
                    continue
                _system_line(job, f"The job queue no longer holds entry {job.rq_id}; nothing will run this job "
                                  "unless an Administrator resumes it.", LogLevel.ERROR)
                record(actor=None, action="job.queue_lost", target=f"job:{job.pk}", job=job)
            vanished.append(job.pk)
    lost = [job.pk for job in do_detect_lost_jobs(now=now)]
    return {"requeued": requeued, "queue_lost": vanished, "worker_lost": lost}


def check_can_resume(*, job: Job, user) -> None:
    """The service asks what the view asks, and more: the permission, the state, and that nothing runs it."""
    if not user.has_perm("jobs.resume_job"):
        raise PermissionDenied("Resuming a job needs the Administrator role.")
    if job.status not in RESUMABLE_STATUSES:
        raise JobActionRefused("Only a job whose worker or queue entry was lost can be resumed.")
    if runner_alive(job):
        raise JobActionRefused(f"Job #{job.pk} may still be running on {job.worker or 'its worker'}: the worker "
                               "still answers. Resume is possible once it is gone.")


def can_resume(*, job: Job, user) -> bool:
    try:
        check_can_resume(job=job, user=user)
    except (JobActionRefused, PermissionDenied):
        return False
    return True


def can_cancel(*, job: Job, user) -> bool:
    try:
        check_can_cancel(job=job, user=user)
    except (JobActionRefused, PermissionDenied):
        return False
    return True


def do_resume_job(*, job: Job, user, request=None) -> Job:
    """Queue a lost job again; its runner skips the steps its checkpoints say are done."""
    with refusal_recorded(user=user, action="job.resume", target=f"job:{job.pk}", job=job, request=request,
                          refused=(JobActionRefused, PermissionDenied)):
        return _resume_job(job=job, user=user, request=request)


@transaction.atomic
def _resume_job(*, job: Job, user, request=None) -> Job:
    job = Job.objects.select_for_update().get(pk=job.pk)
    check_can_resume(job=job, user=user)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED, finished_at=None, cancel_requested=False,
                                         rq_id="")
    _system_line(job, f"Resumed by {user.get_username()}.")
    record(actor=user, action="job.resume", target=f"job:{job.pk}", job=job, request=request)
    transaction.on_commit(partial(_enqueue_on_commit, job.pk, job.queue))
    job.refresh_from_db()
    return job


def do_release_waiting_job(*, job: Job, why: str, enqueue: bool = True) -> bool:
    """Queue a Waiting job again (the portal's own decision: what it waited for has happened); its next
    attempt resumes after its last checkpoint. False when it no longer waits (released already)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        # Still not cancellable: queued, a cancel would take it for a job that never started.
        if not Job.objects.filter(pk=job.pk, status=JobStatus.WAITING).update(status=JobStatus.QUEUED, rq_id="",
                                                                              cancel_requested=False):
            return False
        if job.cancel_requested:  # asked in the instant it parked: a worker would never take it otherwise
            _system_line(job, "The cancel requested as it parked could not stop it half-way: it runs on to its end "
                              "or its rollback.", LogLevel.WARNING)
        _system_line(job, f"Queued again: {why}")
        if enqueue:
            transaction.on_commit(partial(_enqueue_on_commit, job.pk, job.queue))
    return True


def do_requeue_lost_job(*, job: Job, why: str, enqueue: bool = True) -> bool:
    """Queue a job whose worker died again without an Administrator: for work already signed off that
    the portal itself runs (a batch's list). Refused (False) while its runner may be alive, as a resume is;
    the next attempt resumes after the last checkpoint and fences out the lost one."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status != JobStatus.WORKER_LOST or runner_alive(job):
            return False
        Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED, finished_at=None, cancel_requested=False,
                                             rq_id="")
        _system_line(job, f"Queued again after its worker was lost: {why}", LogLevel.WARNING)
        record(actor=None, action="job.resume", target=f"job:{job.pk}", job=job, detail={"why": why})
        if enqueue:
            transaction.on_commit(partial(_enqueue_on_commit, job.pk, job.queue))
    return True


__all__ = ["ACTIVE_STATUSES", "JobActionRefused", "can_cancel", "can_resume", "check_can_cancel", "check_can_resume",
           "do_cancel_job", "do_detect_lost_jobs", "do_release_waiting_job", "do_requeue_lost_job", "do_resume_job",
           "do_start_job", "do_sweep_jobs", "run_job_inline"]
