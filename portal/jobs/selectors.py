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
