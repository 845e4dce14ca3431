"""Reads on jobs."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Job, JobLogLine

LOG_PAGE = 500


def jobs_for_list() -> QuerySet[Job]:
    return Job.objects.select_related("user")


def log_lines_after(*, job: Job, after: int, limit: int = LOG_PAGE) -> list[JobLogLine]:
    return list(job.log_lines.filter(seq__gt=after).order_by("seq")[:limit])


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
