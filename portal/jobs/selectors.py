"""Reads on jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from .choices import JobStatus
from .models import Job, JobLogLine

# Lines per poll, and per page of the log when it is opened or paged back: a job of 100,000 lines
# opens as fast as one of ten.
LOG_PAGE = 500


@dataclass(frozen=True)
class LogPage:
    lines: list[JobLogLine]  # oldest first
    earlier_before: int | None  # the `before` that loads the page above this one; None at the first line

    @property
    def last_seq(self) -> int:
        return self.lines[-1].seq if self.lines else 0


def jobs_for_list() -> QuerySet[Job]:
    return Job.objects.select_related("user")


def log_lines_after(*, job: Job, after: int, limit: int = LOG_PAGE) -> list[JobLogLine]:
    return list(job.log_lines.filter(seq__gt=after).order_by("seq")[:limit])


def log_lines_before(*, job: Job, before: int | None = None, limit: int = LOG_PAGE) -> LogPage:
    """The `limit` lines just before seq `before` (the newest lines when None), in one query: one line
    more than shown is read to know whether a page remains above."""
    lines = job.log_lines.order_by("-seq")
    if before is not None:
        lines = lines.filter(seq__lt=before)
    newest_first = list(lines[:limit + 1])
    more = len(newest_first) > limit
    page = newest_first[:limit][::-1]
    return LogPage(lines=page, earlier_before=page[0].seq if more else None)


def job_kinds_in_use() -> list[str]:
    return list(Job.objects.order_by().values_list("kind", flat=True).distinct())


def stranded_jobs() -> dict[str, list[Job]]:
    """What waits on someone: jobs lost (worker or queue entry) that an Administrator may resume, and
    jobs queued without a queue entry that the workers' sweep will queue again."""
    from .choices import RESUMABLE_STATUSES, JobStatus

    return {
        "lost": list(Job.objects.filter(status__in=RESUMABLE_STATUSES).order_by("-created_at")[:20]),
        "unqueued": list(Job.objects.filter(status=JobStatus.QUEUED, rq_id="").order_by("created_at")[:20]),
    }


def dashboard(*, user) -> dict:
    """The home page's view of the work: what runs, what failed lately, when the inventory and the MFA
    snapshot were last taken. A Helpdesk tech sees their own jobs; who may act on anyone's, all."""
    from datetime import timedelta

    from django.utils import timezone

    from .choices import ACTIVE_STATUSES, JobStatus

    mine_only = not (user.has_perm("jobs.cancel_any_job") or user.has_perm("audit.view_auditevent"))
    jobs = Job.objects.select_related("user")
    if mine_only:
        jobs = jobs.filter(user=user)
    failed = (JobStatus.FAILED, JobStatus.WORKER_LOST, JobStatus.QUEUE_LOST)
    since = timezone.now() - timedelta(days=7)

    def latest(kind: str) -> Job | None:
        return Job.objects.filter(kind=kind, status__in=(JobStatus.SUCCEEDED, JobStatus.WARNINGS)).order_by(
            "-finished_at").first()

    return {
        "mine_only": mine_only,
        "running": list(jobs.filter(status__in=ACTIVE_STATUSES).order_by("-created_at")[:8]),
        "failures": list(jobs.filter(status__in=failed, created_at__gte=since).order_by("-created_at")[:8]),
        "last_inventory": latest("dl_inventory") if user.has_perm("accounts.view_dl_migration") else None,
        "last_snapshot": latest("mfa_snapshot") if user.has_perm("accounts.view_mfa_report") else None,
    }


def stale_before(now: datetime) -> datetime:
    """A running job whose heartbeat is older than this may have lost its worker."""
    return now - timedelta(seconds=settings.JOB_WORKER_LOST_AFTER_SECONDS)


def heartbeat_stale(job: Job, *, now=None) -> bool:
    """Whether services.do_detect_lost_jobs would look at this job (running, its heartbeat older than the limit): a job
    whose heartbeat is fresh cannot be found lost, so a reader of it need not ask."""
    return (job.status == JobStatus.RUNNING and job.heartbeat_at is not None
            and job.heartbeat_at < stale_before(now or timezone.now()))
