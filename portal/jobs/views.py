from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_POST
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from portal.accounts.permissions import requires
from portal.audit.services import record_download
from portal.exports import download

from .filtersets import JobFilterSet
from .models import Job
from .runner import JOB_KINDS
from .selectors import heartbeat_stale, jobs_for_list, log_lines_after, log_lines_before, stranded_jobs
from .services import (
    JobActionRefused,
    can_cancel,
    can_resume,
    do_cancel_job,
    do_detect_lost_jobs,
    do_resume_job,
    do_start_job,
)
from .tables import JobTable


class JobListView(SingleTableMixin, FilterView):
    required_permissions = ("jobs.view_job",)
    table_class = JobTable
    filterset_class = JobFilterSet
    template_name = "jobs/job_list.html"

    def get_queryset(self):
        do_detect_lost_jobs()
        return jobs_for_list()

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "stranded": stranded_jobs()}


def _actions(job: Job, user) -> dict:
    """The buttons a person sees are the ones the services would accept from them, and the way back
    to the object the job acts on."""
    runner_cls = JOB_KINDS.get(job.kind)
    return {"can_cancel": can_cancel(job=job, user=user), "can_resume": can_resume(job=job, user=user),
            "object_url": runner_cls.object_url(job) if runner_cls else None,
            "object_label": runner_cls.object_label(job) if runner_cls else None}


def _job_context(job: Job, user, **extra) -> dict:
    # The newest page only; the reader pages back with "Show earlier lines", the poll appends after it.
    page = log_lines_before(job=job)
    return {"job": job, "lines": page.lines, "last_seq": page.last_seq, "earlier_before": page.earlier_before,
            "poll_ms": settings.JOB_LOG_POLL_MS, "checkpoint": _last_checkpoint(job), **_actions(job, user), **extra}


@requires("jobs.view_job")
@require_GET
def job_detail(request, pk: int):
    job = get_object_or_404(Job, pk=pk)
    if job.is_active:
        do_detect_lost_jobs()
        job.refresh_from_db()
    return render(request, "jobs/job_detail.html", _job_context(job, request.user))


@requires("jobs.view_job")
@require_GET
def job_log(request, pk: int):
    """The live log's poll: new lines after `after`, and the header parts that change (out of band)."""
    job = get_object_or_404(Job, pk=pk)
    if heartbeat_stale(job):
        # Asked by every reader of a running job every second: only a job whose heartbeat stopped can be found
        # lost (read again if it was); other jobs are looked at by the jobs list, job pages and the workers' sweep.
        job = next((lost for lost in do_detect_lost_jobs() if lost.pk == job.pk), job)
    try:
        after = max(0, int(request.GET.get("after", "0")))
    except ValueError:
        after = 0
    lines = log_lines_after(job=job, after=after)
    last_seq = lines[-1].seq if lines else after
    # Keep asking while the job runs, and once more after it ends if a page of lines is still unread.
    more = job.is_active or job.log_lines.filter(seq__gt=last_seq).exists()
    return render(request, "jobs/_log_poll.html",
                  {"job": job, "lines": lines, "last_seq": last_seq, "keep_polling": more,
                   "poll_ms": settings.JOB_LOG_POLL_MS, "checkpoint": _last_checkpoint(job),
                   **_actions(job, request.user)})


def _last_checkpoint(job: Job) -> SimpleLazyObject:
    """Read if the header shows it (a job whose worker was lost), not on every poll of a running job."""
    return SimpleLazyObject(lambda: job.last_checkpoint)


@requires("jobs.view_job")
@require_GET
def job_log_earlier(request, pk: int):
    """The page of lines above the oldest one shown, to go on top of the log, and the next such button."""
    job = get_object_or_404(Job, pk=pk)
    try:
        before = int(request.GET["before"])
    except (KeyError, ValueError):
        return HttpResponseBadRequest("before must be the seq of the oldest line shown")
    page = log_lines_before(job=job, before=before)
    return render(request, "jobs/_log_earlier.html",
                  {"job": job, "lines": page.lines, "earlier_before": page.earlier_before})


@requires("jobs.view_job")
@require_GET
def job_log_download(request, pk: int, fmt: str):
    job = get_object_or_404(Job, pk=pk)
    record_download(user=request.user, what="job_log", target=f"job:{job.pk}", request=request, format=fmt)
    lines = job.log_lines.order_by("seq").iterator(chunk_size=2000)
    if fmt == "json":
        def rows():
            yield "[\n"
            for i, line in enumerate(lines):
                item = {"seq": line.seq, "time": line.time.isoformat(), "level": line.level,
                        "message": line.message, "data": line.data}
                yield ("" if i == 0 else ",\n") + json.dumps(item)
            yield "\n]\n"
        return download(rows(), name=f"job-{job.pk}-log.json", content_type="application/json")
    return download((f"{line.time:%Y-%m-%d %H:%M:%S.%f}"[:-3] + f" {line.level.upper():7} {line.message}\n"
                     for line in lines), name=f"job-{job.pk}-log.txt", content_type="text/plain; charset=utf-8")


def _job_action(request, pk: int, action, done: str):
    """A button on the job page: run the service, say what happened or why it was refused, go back."""
    job = get_object_or_404(Job, pk=pk)
    try:
        action(job=job, user=request.user, request=request)
        messages.info(request, done.format(pk=job.pk))
    except JobActionRefused as exc:
        messages.warning(request, str(exc))
    return redirect(job)


@requires("jobs.cancel_job")
@require_POST
def job_cancel(request, pk: int):
    if request.POST.get("confirm") != "on":
        messages.warning(request, "Tick 'Yes, stop this job' to cancel it. Nothing was changed.")
        return redirect("jobs:detail", pk=pk)
    return _job_action(request, pk, do_cancel_job, "Cancel requested for job #{pk}.")


@requires("jobs.resume_job")
@require_POST
def job_resume(request, pk: int):
    return _job_action(request, pk, do_resume_job, "Job #{pk} is queued again; it resumes after its last checkpoint.")


@requires("jobs.run_connectivity_check")
@require_POST
def start_connectivity_check(request):
    job = do_start_job(kind="connectivity_check", user=request.user, target="portal dependencies",
                       request=request)
    return redirect(job)
