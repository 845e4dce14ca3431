"""The job engine: outcomes, cancel, checkpoints and resume, log order, worker loss, redaction."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from portal.jobs.choices import JobStatus
from portal.jobs.models import Job, JobLogLine
from portal.jobs.runner import append_line, execute_job
from portal.jobs.services import (
    JobActionRefused,
    do_cancel_job,
    do_detect_lost_jobs,
    do_resume_job,
    run_job_inline,
)
from tests.conftest import wait_for
from tests.support.job_helpers import messages, start

pytestmark = pytest.mark.django_db(transaction=True)






@pytest.mark.postgres
def test_success_logs_in_order_with_progress_and_result(helpdesk, no_enqueue):
    job = run_job_inline(start("test_steps", helpdesk))
    assert job.status == JobStatus.SUCCEEDED
    assert job.progress_percent == 100 and (job.progress_done, job.progress_total) == (3, 3)
    assert job.result == {"steps": ["one", "two", "three"]}
    assert job.summary == "Did 3 steps."
    assert [m for m in messages(job) if m.startswith("doing")] == ["doing one", "doing two", "doing three"]
    assert list(job.checkpoints.values_list("name", flat=True)) == ["one", "two", "three"]
    assert job.started_at and job.finished_at and job.worker


def test_warnings_make_succeeded_with_warnings(helpdesk, no_enqueue):
    job = run_job_inline(start("test_steps", helpdesk, warn_at=["two"]))
    assert job.status == JobStatus.WARNINGS
    assert job.warning_count == 1
    assert "1 warning" in job.summary


def test_unexpected_exception_fails_with_traceback_in_log(helpdesk, no_enqueue):
    job = run_job_inline(start("test_steps", helpdesk, fail_at="two"))
    assert job.status == JobStatus.FAILED
    assert "boom in two" in job.error and "boom in two" in job.summary
    err = job.log_lines.get(level="error")
    assert "Traceback" in err.data["traceback"] and "RuntimeError" in err.data["traceback"]
    assert list(job.checkpoints.values_list("name", flat=True)) == ["one"]


def test_expected_failure_has_no_traceback(helpdesk, no_enqueue):
    job = run_job_inline(start("test_steps", helpdesk, expected_failure_at="two"))
    assert job.status == JobStatus.FAILED
    assert job.summary == "Failed: two could not be done"
    assert job.log_lines.get(level="error").data is None


def test_cancel_while_running_stops_at_next_point(helpdesk, no_enqueue):
    job = start("test_sleepy", helpdesk, lines=200, interval=0.02)
    runner = threading.Thread(target=execute_job, args=(job.pk,))
    runner.start()
    wait_for(lambda: job.log_lines.filter(message="line 5").exists(), interval=0.01, message="the job to be under way")
    do_cancel_job(job=job, user=helpdesk)
    runner.join(timeout=20)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.log_lines.count() < 100
    assert any("Cancel requested by hd" in m for m in messages(job))
    assert messages(job)[-1].startswith("Cancelled at the user's request")


def test_cancel_queued_job_means_it_never_runs(helpdesk, no_enqueue):
    job = start("test_steps", helpdesk)
    do_cancel_job(job=job, user=helpdesk)
    assert execute_job(job.pk) == JobStatus.CANCELLED
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.started_at is None
    assert not any(m.startswith("doing") for m in messages(job))


def test_cancelling_a_finished_job_is_refused_and_changes_nothing(helpdesk, no_enqueue):
    job = run_job_inline(start("test_steps", helpdesk))
    before = (job.status, job.log_lines.count(), job.cancel_requested)
    with pytest.raises(JobActionRefused, match="already ended"):
        do_cancel_job(job=job, user=helpdesk)
    job.refresh_from_db()
    assert (job.status, job.log_lines.count(), job.cancel_requested) == before


def test_helpdesk_cannot_cancel_someone_elses_job(make_user, no_enqueue):
    owner, other = make_user("owner", "Helpdesk"), make_user("other", "Helpdesk")
    job = start("test_steps", owner)
    with pytest.raises(JobActionRefused, match="Only the person"):
        do_cancel_job(job=job, user=other)
    admin = make_user("boss", "Administrator")
    assert do_cancel_job(job=job, user=admin).status == JobStatus.CANCELLED


@pytest.mark.postgres
def test_concurrent_writers_get_unique_ordered_seqs(helpdesk, no_enqueue):
    job = start("test_chatty", helpdesk, threads=6, lines=40)
    # The portal writes lines into the same job while its runner's threads do (cancel, worker lost).
    stop = threading.Event()

    def portal_lines():
        n = 0
        try:
            while not stop.is_set() and n < 30:
                append_line(job.pk, level="info", message=f"portal {n}")
                n += 1
        finally:
            connection.close()  # its own session: PostgreSQL would not drop the test database under it

    side = threading.Thread(target=portal_lines)
    side.start()
    run_job_inline(job)
    stop.set()
    side.join(10)
    assert not side.is_alive()
    seqs = list(job.log_lines.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    for t in range(6):
        mine = [m for m in messages(job) if m.startswith(f"t{t} ")]
        assert mine == [f"t{t} n{n}" for n in range(40)], "each writer's lines keep their order"


@pytest.mark.postgres
def test_a_writer_that_loses_the_race_many_times_in_a_row_still_writes(helpdesk, no_enqueue, monkeypatch):
    """Another writer takes the seq this one read, 40 times running (on PostgreSQL a loser and the winner
    wake together, so this happened in CI): the line is stored after them, not dropped with an error."""
    from portal.jobs import runner

    job = start("test_steps", helpdesk)
    read_last = runner._last_seq
    stolen = []

    def read_then_lose(job_pk):
        last = read_last(job_pk)
        if len(stolen) < 40:
            JobLogLine.objects.create(job_id=job_pk, seq=last + 1, time=timezone.now(), level="info",
                                      message=f"other {len(stolen)}")
            stolen.append(last + 1)
        return last

    monkeypatch.setattr(runner, "_last_seq", read_then_lose)
    seq = append_line(job.pk, level="info", message="mine")
    assert len(stolen) == 40 and seq == stolen[-1] + 1
    assert messages(job)[-1] == "mine"


@pytest.mark.postgres
def test_resume_after_worker_loss_skips_completed_steps(helpdesk, make_user, no_enqueue):
    job = run_job_inline(start("test_steps", helpdesk, fail_at="three"))
    assert list(job.checkpoints.values_list("name", flat=True)) == ["one", "two"]
    # As if the worker had died during step three (not a failure the job reported).
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1))
    [lost] = do_detect_lost_jobs()
    assert lost.pk == job.pk and lost.status == JobStatus.WORKER_LOST
    assert "last checkpoint was 'two'" in messages(lost)[-1]

    admin = make_user("admin1", "Administrator")
    Job.objects.filter(pk=job.pk).update(params={"steps": ["one", "two", "three"]})
    do_resume_job(job=job, user=admin)
    assert no_enqueue[-1] == job.pk
    job = run_job_inline(job)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2
    log = messages(job)
    assert "Run 2 resumes after checkpoint 'two'." in log
    assert "Step 'one' already done in an earlier run; skipping it." in log
    assert log.count("doing one") == 1 and log.count("doing three") == 1


def test_a_resumed_job_cancelled_while_queued_again_says_what_ran_and_stops_at_its_next_safe_point(
        helpdesk, make_user, client, no_enqueue):
    """An Administrator resumed a job whose worker died after two of its steps; before a worker takes it, its
    owner cancels it. It is no "cancelled before it started": the page and the log say it ran before and where
    it stopped; the next run stops at its first safe point (the engine's rollback's place) and says so."""
    from portal.audit.models import AuditEvent

    job = run_job_inline(start("test_undoing", helpdesk, steps=["one", "two", "three"], cancel_at="never"))
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1))
    job.checkpoints.filter(name="three").delete()  # as if it died during step three
    do_detect_lost_jobs()
    do_resume_job(job=job, user=make_user("admin1", "Administrator"))
    client.force_login(helpdesk)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'id="job-queued-again"' in page and "Waiting for a worker to pick it up" not in page
    assert "after its last completed step, <strong>two</strong>" in page

    job = do_cancel_job(job=Job.objects.get(pk=job.pk), user=helpdesk)
    assert job.status == JobStatus.QUEUED and job.cancel_requested, "its earlier run's work is not left as it is"
    assert "before it started" not in " ".join(messages(job)) + job.summary
    assert ("while it waits to resume: it ran before (1 run(s), its last completed step is 'two'); its next run "
            "stops at its first safe point") in messages(job)[-1]
    event = AuditEvent.objects.get(action="job.cancel", target=f"job:{job.pk}")
    assert event.detail == {"queued_again": True, "runs": 1, "last_checkpoint": "two"}
    assert "then stops there, undoing what it must" in client.get(f"/jobs/{job.pk}/").content.decode()

    job = run_job_inline(job)
    log = messages(job)
    second = log[log.index("Run 2 resumes after checkpoint 'two'."):]
    assert job.status == JobStatus.CANCELLED and job.attempts == 2
    assert "Step 'two' already done in an earlier run; skipping it." in second and "doing three" not in second


@pytest.mark.postgres
def test_worker_lost_detection_leaves_live_jobs_alone(helpdesk, no_enqueue):
    alive = start("test_steps", helpdesk)
    dead = start("test_steps", helpdesk)
    now = timezone.now()
    Job.objects.filter(pk=alive.pk).update(status=JobStatus.RUNNING, heartbeat_at=now)
    Job.objects.filter(pk=dead.pk).update(status=JobStatus.RUNNING, heartbeat_at=now - timedelta(minutes=5),
                                          worker="host:123")
    assert [j.pk for j in do_detect_lost_jobs()] == [dead.pk]
    alive.refresh_from_db()
    dead.refresh_from_db()
    assert alive.status == JobStatus.RUNNING
    assert dead.status == JobStatus.WORKER_LOST and dead.finished_at
    assert "no heartbeat from host:123" in messages(dead)[-1] and "reached no checkpoint" in messages(dead)[-1]


def test_resume_refused_unless_worker_lost(helpdesk, make_user, no_enqueue):
    job = run_job_inline(start("test_steps", helpdesk))
    with pytest.raises(JobActionRefused, match="Only a job whose worker or queue entry was lost can be resumed"):
        do_resume_job(job=job, user=make_user("a2", "Administrator"))


def test_secrets_never_reach_the_log(helpdesk, no_enqueue):
    from portal.jobs.redaction import register_secret
    from portal.jobs.runner import JobRunner

    register_secret("S3cr3t-value-from-env")
    job = start("test_steps", helpdesk)
    # A runner exists only for a claimed job (its attempt fences its writes).
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1)
    job.refresh_from_db()
    runner = JobRunner(job)
    runner.info("bind with password=hunter2 as admin")
    runner.info('body {"client_secret": "abc123"} Authorization: Bearer eyJhbGciOi.x.y')
    runner.info("value S3cr3t-value-from-env leaked?", data={"password": "p", "nested": {"token": "t"}})
    stored = " ".join(messages(job)) + str(list(job.log_lines.values_list("data", flat=True)))
    for secret in ("hunter2", "abc123", "eyJhbGciOi", "S3cr3t-value-from-env", "'p'", "'t'"):
        assert secret not in stored
    assert JobLogLine.objects.filter(job=job, message__contains="********").count() == 3


def test_unknown_job_kind_fails_clearly(helpdesk, no_enqueue):
    job = Job.objects.create(kind="no_such_kind", name="?", user=helpdesk)
    assert execute_job(job.pk) == JobStatus.FAILED
    job.refresh_from_db()
    assert "Unknown job kind 'no_such_kind'" in job.summary
