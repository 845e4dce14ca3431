from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    WARNINGS = "warnings", "Succeeded with warnings"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    WORKER_LOST = "worker_lost", "Worker lost"
    QUEUE_LOST = "queue_lost", "Lost from the queue"
    # Parked between two steps, its worker freed, until the portal queues it again (a batch's list
    # waiting for the delta sync its whole wave shares).
    WAITING = "waiting", "Waiting"


# Badge colour per status (templates/includes/badge.html); the word always goes with the colour.
JOB_STATUS_COLOURS = {
    JobStatus.QUEUED: "grey",
    JobStatus.RUNNING: "blue",
    JobStatus.SUCCEEDED: "green",
    JobStatus.WARNINGS: "amber",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "dark",
    JobStatus.WORKER_LOST: "dark",
    JobStatus.QUEUE_LOST: "dark",
    JobStatus.WAITING: "grey",
}

ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING)
FINISHED_STATUSES = tuple(s for s in JobStatus if s not in ACTIVE_STATUSES)
# Stopped without finishing: an Administrator may queue them again once nothing runs them any more.
RESUMABLE_STATUSES = (JobStatus.WORKER_LOST, JobStatus.QUEUE_LOST)


class LogLevel(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    SUCCESS = "success", "Success"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


LOG_LEVEL_COLOURS = {
    LogLevel.DEBUG: "grey",
    LogLevel.INFO: "blue",
    LogLevel.SUCCESS: "green",
    LogLevel.WARNING: "amber",
    LogLevel.ERROR: "red",
}
