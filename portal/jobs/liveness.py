"""Whether anything still runs a job: asked before a job is declared lost and before Resume is offered.

A stale heartbeat alone is not proof (a database lock can delay it); a second runner beside a live
one is the worst outcome, so a job counts as dead only when the process or RQ says so.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime, timedelta

from django.conf import settings

from portal.stack import pid_alive

from .models import Job

logger = logging.getLogger("portal.jobs")


def _rq_alive(job: Job) -> bool | None:
    """What RQ knows: None when it cannot be asked (Redis down), so nothing is decided on a guess."""
    if not job.rq_id:
        return False
    try:
        import django_rq
        from rq.exceptions import NoSuchJobError
        from rq.job import Job as RqJob
        from rq.job import JobStatus as RqStatus
        from rq.registry import StartedJobRegistry
        from rq.worker import Worker

        conn = django_rq.get_connection(job.queue)
        try:
            rq_job = RqJob.fetch(job.rq_id, connection=conn)
        except NoSuchJobError:
            return False
        status = rq_job.get_status(refresh=True)
        if status in (RqStatus.QUEUED, RqStatus.DEFERRED, RqStatus.SCHEDULED):
            return True
        if status != RqStatus.STARTED:
            return False
        if job.rq_id not in StartedJobRegistry(job.queue, connection=conn).get_job_ids():
            return False
        worker = next((w for w in Worker.all(connection=conn) if w.name == rq_job.worker_name), None)
        if worker is None or worker.last_heartbeat is None:
            return False
        beat = worker.last_heartbeat
        if beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        # RQ beats while a job runs every job_monitoring_interval (30 s) with 60 s of grace.
        return datetime.now(UTC) - beat < timedelta(seconds=settings.JOB_RQ_WORKER_SILENCE_SECONDS)
    except Exception:  # noqa: BLE001 - Redis unreachable: unknown, not dead
        logger.warning("job %s: RQ could not be asked whether it runs", job.pk, exc_info=True)
        return None


def runner_alive(job: Job) -> bool:
    """True unless the process that ran the job is gone (same host) or RQ says job and worker are gone."""
    from .runner import RUNNING_HERE

    if not job.worker:
        return False  # no runner ever claimed it
    host, _, pid_text = (job.worker or "").rpartition(":")
    if host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        if pid == os.getpid():
            return job.pk in RUNNING_HERE
        if not pid_alive(pid):
            return False
        return True
    if not job.rq_id:
        return False
    alive = _rq_alive(job)
    return True if alive is None else alive


def queue_entry_exists(job: Job) -> bool | None:
    """For a queued job: does RQ still hold its entry? None when Redis cannot be asked."""
    if not job.rq_id:
        return False
    try:
        import django_rq
        from rq.exceptions import NoSuchJobError
        from rq.job import Job as RqJob

        try:
            RqJob.fetch(job.rq_id, connection=django_rq.get_connection(job.queue))
        except NoSuchJobError:
            return False
        return True
    except Exception:  # noqa: BLE001
        return None
