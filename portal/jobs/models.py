from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.object_urls import object_url

from .choices import ACTIVE_STATUSES, JOB_STATUS_COLOURS, LOG_LEVEL_COLOURS, JobStatus, LogLevel


class Job(models.Model):
    """One run of a long action: who started it, on what, how far it got, what it found."""

    kind = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=200)
    target = models.CharField(max_length=500, blank=True, help_text="What the job acts on")
    params = models.JSONField(default=dict, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    queue = models.CharField(max_length=32, default="default")
    rq_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the process running it")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    # Cleared by the runner at a point of no return (JobRunner.forbid_cancel): cancel is refused after it.
    cancellable = models.BooleanField(default=True)
    not_cancellable_reason = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    warning_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    summary = models.CharField(max_length=500, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("run_connectivity_check", "Start a connectivity check"),
            ("cancel_job", "Cancel jobs one started"),
            ("cancel_any_job", "Cancel anyone's job"),
            ("resume_job", "Resume a job whose worker or queue entry was lost"),
        ]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

    def get_absolute_url(self) -> str:
        return object_url("jobs:detail", self.pk)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def status_colour(self) -> str:
        return JOB_STATUS_COLOURS[JobStatus(self.status)]

    @property
    def progress_percent(self) -> int:
        if not self.progress_total:
            return 100 if not self.is_active else 0
        return min(100, round(100 * self.progress_done / self.progress_total))

    @property
    def duration(self):
        if self.started_at is None:
            return None
        from django.utils import timezone

        return (self.finished_at or timezone.now()) - self.started_at

    @property
    def last_checkpoint(self) -> JobCheckpoint | None:
        return self.checkpoints.order_by("-id").first()


class JobLogLine(models.Model):
    """One line of a job's log, stored the moment it is logged and never rewritten."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_lines")
    seq = models.PositiveIntegerField()
    time = models.DateTimeField()
    level = models.CharField(max_length=10, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField()
    data = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="joblogline_job_seq_unique")]
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.time:%H:%M:%S} {self.level.upper():7} {self.message}"

    @property
    def level_colour(self) -> str:
        return LOG_LEVEL_COLOURS[LogLevel(self.level)]


class JobCheckpoint(models.Model):
    """A step the job completed, with what a restarted run needs to carry on after it."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="checkpoints")
    name = models.CharField(max_length=100)
    data = models.JSONField(default=dict, blank=True)
    time = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "id"]
        default_permissions = ()

    def __str__(self) -> str:
        return self.name
