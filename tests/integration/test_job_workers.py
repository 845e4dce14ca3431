"""Jobs through the real pipeline: enqueue on commit → Redis → RQ worker process → live log."""

import os
import signal

import pytest

from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.services import do_detect_lost_jobs, do_start_job
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def _finished(job):
    job.refresh_from_db()
    return not job.is_active


def test_connectivity_check_runs_on_a_worker(rq_workers, make_user, lab_scheduling):
    rq_workers(2)
    user = make_user("hd", "Helpdesk")
    job = do_start_job(kind="connectivity_check", user=user, target="portal dependencies")
    wait_for(lambda: _finished(job), message="the connectivity check to finish")
    assert job.status == JobStatus.SUCCEEDED, job.summary
    checks = job.result["checks"]
    assert all(check["ok"] for check in checks.values()), checks
    assert "Exchange schema complete" in checks["Active Directory"]["summary"]
    assert checks["Redis and job workers"]["details"]["workers"] >= 2
    assert job.worker and job.worker.split(":")[1] != str(os.getpid()), "ran in a worker process"
    assert list(checks) == ["Database", "Redis and job workers", "Active Directory", "Microsoft Graph",
                            "Exchange Online", "Entra Connect", "Exchange on-premises"]


def test_connectivity_check_reports_unreachable_redis_clearly(transactional_db, make_user, settings, lab_scheduling):
    from portal.jobs.services import run_job_inline

    settings.RQ_QUEUES = {name: {**q, "URL": "redis://127.0.0.1:1/0"} for name, q in settings.RQ_QUEUES.items()}
    job = run_job_inline(do_start_job(kind="connectivity_check", user=None, enqueue=False))
    assert job.status == JobStatus.FAILED
    assert "1 of 7 dependencies failed: Redis and job workers." in job.summary
    err = job.log_lines.filter(level="error").order_by("seq").first().message
    assert err.startswith("Redis and job workers: unreachable: ConnectionError")


@pytest.mark.postgres
def test_killed_worker_is_detected_and_shown_as_worker_lost(rq_workers, make_user, settings):
    [worker] = rq_workers(1)
    user = make_user("hd", "Helpdesk")
    job = do_start_job(kind="test_sleepy", user=user, params={"lines": 400, "interval": 0.05, "checkpoint_at": 5})
    wait_for(lambda: job.log_lines.filter(message="line 10").exists(), message="the job to be under way")
    # The worker and its work horse (RQ puts the horse in a session of its own), as when a machine is lost.
    job.refresh_from_db()
    horse_pid = int(job.worker.rsplit(":", 1)[1])
    os.killpg(worker.pid, signal.SIGKILL)
    os.kill(horse_pid, signal.SIGKILL)
    worker.wait(timeout=10)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING, "nothing tells the database the worker died…"
    lost = wait_for(lambda: do_detect_lost_jobs(), timeout=settings.JOB_WORKER_LOST_AFTER_SECONDS + 10,
                    message="the lost heartbeat to be noticed")
    assert [j.pk for j in lost] == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.WORKER_LOST
    last = job.log_lines.order_by("-seq").first().message
    assert last.startswith("Worker lost: no heartbeat from") and "last checkpoint was 'halfway'" in last


@pytest.mark.postgres
def test_cancel_reaches_a_job_on_a_worker(rq_workers, make_user):
    from portal.jobs.services import do_cancel_job

    rq_workers(1)
    user = make_user("hd", "Helpdesk")
    job = do_start_job(kind="test_sleepy", user=user, params={"lines": 400, "interval": 0.05})
    wait_for(lambda: job.log_lines.filter(message="line 3").exists(), message="the job to be under way")
    do_cancel_job(job=job, user=user)
    wait_for(lambda: _finished(job), message="the job to stop")
    last_lines = list(job.log_lines.order_by("-seq").values_list("message", flat=True)[:5])
    assert job.status == JobStatus.CANCELLED, (job.summary, last_lines)
    assert Job.objects.get(pk=job.pk).log_lines.count() < 100


@pytest.mark.postgres
def test_a_job_created_while_redis_was_down_runs_after_the_workers_sweep(rq_workers, make_user, settings):
    user = make_user("hd", "Helpdesk")
    working = settings.RQ_QUEUES
    settings.RQ_QUEUES = {name: {**q, "URL": "redis://127.0.0.1:1/0"} for name, q in working.items()}
    job = do_start_job(kind="test_steps", user=user, params={"steps": ["one", "two"]})
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.rq_id == "", "created, though Redis was down at commit"
    settings.RQ_QUEUES = working  # Redis is back; nobody touches the job: the workers' own sweep finds it
    rq_workers(1, JOB_SWEEP_SECONDS=1, JOB_REQUEUE_AFTER_SECONDS=0)
    wait_for(lambda: _finished(job), timeout=60, message="the swept job to run")
    assert job.status == JobStatus.SUCCEEDED, job.summary
    log = list(job.log_lines.order_by("seq").values_list("message", flat=True))
    assert any(line.startswith("Queued again by the sweep") for line in log)


def test_an_idle_workers_sweep_runs_every_job_sweep_seconds(rq_workers, make_user, settings):
    """The sweep is not only a worker's first act: a job stranded while the worker sits idle is found at a later
    JOB_SWEEP_SECONDS turn (RQ's blocking dequeue waits 405 s by default and, left alone, delayed it that long).
    A sweep takes a job stranded for JOB_REQUEUE_AFTER_SECONDS, so the check the worker makes as it goes idle after
    the first job cannot be the one that finds the second."""
    user = make_user("hd", "Helpdesk")
    working = settings.RQ_QUEUES
    down = {name: {**q, "URL": "redis://127.0.0.1:1/0"} for name, q in working.items()}

    def stranded():
        settings.RQ_QUEUES = down
        try:
            job = do_start_job(kind="test_steps", user=user, params={"steps": ["one"]})
        finally:
            settings.RQ_QUEUES = working
        assert Job.objects.get(pk=job.pk).rq_id == "", "stranded: never handed to RQ"
        return job

    first = stranded()
    rq_workers(1, JOB_SWEEP_SECONDS=1, JOB_REQUEUE_AFTER_SECONDS=2)
    wait_for(lambda: _finished(first), timeout=60, message="a sweep to queue the first stranded job")
    second = stranded()  # the worker has run the first and now waits for work
    wait_for(lambda: _finished(second), timeout=60, message="the idle worker's sweep to queue the second")
    assert second.status == JobStatus.SUCCEEDED, second.summary
