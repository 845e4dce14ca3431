"""Hardened jobs: cancel never strands anything, one runner per job, nothing waits for ever.

Each test here failed on the engine before the hardening (issue 10): a log line raised the cancel,
the heartbeat died on a database error, Resume started a second runner beside a live one, and a job
created while Redis was down stayed queued for ever.
"""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import OperationalError, connection
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.jobs import runner as runner_module
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.runner import JobSuperseded, _Heartbeat, execute_job
from portal.jobs.services import (
    JobActionRefused,
    do_cancel_job,
    do_resume_job,
    do_sweep_jobs,
    run_job_inline,
)
from tests.conftest import wait_for
from tests.support.job_helpers import messages, start
from tests.support.jobs import GatedJob

pytestmark = pytest.mark.django_db(transaction=True)




def run_in_thread(job_pk: int, outcome: dict) -> threading.Thread:
    """execute_job in a thread of its own, as a second process would run it; the thread closes its
    connection (PostgreSQL cannot drop the test database while a session stays open)."""
    def target():
        try:
            outcome["status"] = execute_job(job_pk)
        finally:
            connection.close()
    thread = threading.Thread(target=target)
    thread.start()
    return thread




@pytest.fixture
def admin(make_user):
    return make_user("adm", "Administrator")


# -- cancel -------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_cancel_does_not_abort_the_rollback_and_the_final_state_is_saved(helpdesk, no_enqueue):
    job = run_job_inline(start("test_undoing", helpdesk, steps=["one", "two", "three", "four"], cancel_at="two"))
    assert job.status == JobStatus.CANCELLED and job.finished_at is not None
    log = messages(job)
    # Every undo line is written although the cancel was pending while they were logged.
    assert log.index("Undone: two") < log.index("Undone: one")
    assert "doing three" not in log
    assert log[-1] == "Cancelled at the user's request; the steps before this line are complete."


@pytest.mark.postgres
def test_cancel_does_not_cut_short_the_failure_handler(helpdesk, no_enqueue):
    job = run_job_inline(start("test_steps", helpdesk, cancel_at="two", fail_at="two"))
    assert job.status == JobStatus.FAILED and job.finished_at is not None
    assert "RuntimeError: boom in two" in job.summary
    assert any(m.startswith("Failed: RuntimeError: boom in two") for m in messages(job))


def test_past_the_point_of_no_return_cancel_is_refused_audited_and_the_button_gone(helpdesk, client, no_enqueue):
    job = start("test_steps", helpdesk)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1, cancellable=False,
                                         not_cancellable_reason="the original list is being disabled")
    client.force_login(helpdesk)
    page = client.get(job.get_absolute_url()).content.decode()
    assert "Cancel job" not in page and "point of no return" in page
    # A forged POST: refused, audited, nothing changed.
    response = client.post(f"/jobs/{job.pk}/cancel/", {"confirm": "on"}, follow=True)
    assert "past its point of no return" in response.content.decode()
    job.refresh_from_db()
    assert not job.cancel_requested and job.status == JobStatus.RUNNING
    refusal = AuditEvent.objects.get(action="job.cancel.refused")
    assert refusal.actor == helpdesk and "point of no return" in refusal.detail["reason"]


def test_cancel_needs_the_permission_in_the_service_not_only_the_view(make_user, helpdesk, no_enqueue):
    job = start("test_steps", helpdesk)
    auditor = make_user("aud", "Auditor")
    with pytest.raises(PermissionDenied, match="Cancelling a job needs the Helpdesk or Administrator role"):
        do_cancel_job(job=job, user=auditor)
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and AuditEvent.objects.filter(action="job.cancel.refused").exists()


# -- one runner per job ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_heartbeat_survives_database_errors(helpdesk, settings, monkeypatch, no_enqueue):
    settings.JOB_HEARTBEAT_SECONDS = 0.05
    job = start("test_steps", helpdesk)
    old = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1, heartbeat_at=old)
    failures = {"left": 3}
    real_beat = _Heartbeat.beat

    def flaky_beat(self):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("database is locked")
        real_beat(self)

    monkeypatch.setattr(_Heartbeat, "beat", flaky_beat)
    beat = _Heartbeat(job.pk, 1, threading.Event())
    beat.start()
    try:
        wait_for(lambda: Job.objects.get(pk=job.pk).heartbeat_at > old, timeout=10, message="a beat after errors")
        assert beat.is_alive() and failures["left"] == 0
    finally:
        beat.stopped.set()
        beat.join(10)
    assert not beat.is_alive(), "the heartbeat thread did not stop"


@pytest.mark.postgres
def test_a_superseded_runner_writes_nothing_and_stops(helpdesk, no_enqueue):
    job = start("test_gated", helpdesk)
    GatedJob.GATES[job.pk] = gate = threading.Event()
    GatedJob.STARTED[job.pk] = started = threading.Event()
    outcome = {}
    thread = run_in_thread(job.pk, outcome)
    assert started.wait(10)
    # Another runner claims the job (a resume taken by a second worker): attempt 2 owns it now.
    Job.objects.filter(pk=job.pk).update(attempts=2, status=JobStatus.RUNNING, summary="attempt 2 runs")
    gate.set()
    thread.join(10)
    assert outcome["status"] == "superseded"
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.summary == "attempt 2 runs" and job.attempts == 2
    assert "after the gate" not in messages(job) and not job.checkpoints.exists()


@pytest.mark.postgres
def test_writes_are_fenced_by_attempt(helpdesk, no_enqueue):
    job = start("test_steps", helpdesk)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1)
    job.refresh_from_db()
    runner = runner_module.JobRunner(job)
    runner.info("mine")
    Job.objects.filter(pk=job.pk).update(attempts=2)
    for write in (lambda: runner.info("stale"), lambda: runner.progress(1, 2),
                  lambda: runner.checkpoint("x"), lambda: runner.check_cancel(force=True)):
        with pytest.raises(JobSuperseded):
            write()
    assert messages(job) == ["mine"] and not job.checkpoints.exists()


@pytest.mark.postgres
def test_resume_is_refused_while_the_runner_is_alive_and_needs_the_permission(helpdesk, admin, no_enqueue):
    job = start("test_gated", helpdesk)
    GatedJob.GATES[job.pk] = gate = threading.Event()
    GatedJob.STARTED[job.pk] = started = threading.Event()
    thread = run_in_thread(job.pk, {})
    try:
        assert started.wait(10)
        # The detection saw a late heartbeat and declared the worker lost: the runner still lives.
        Job.objects.filter(pk=job.pk).update(status=JobStatus.WORKER_LOST)
        with pytest.raises(JobActionRefused, match="may still be running"):
            do_resume_job(job=Job.objects.get(pk=job.pk), user=admin)
        with pytest.raises(PermissionDenied, match="Resuming a job needs the Administrator role"):
            do_resume_job(job=Job.objects.get(pk=job.pk), user=helpdesk)
    finally:
        gate.set()
        thread.join(10)
    job.refresh_from_db()
    # The live runner finished its own attempt: one run, its result kept.
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 1 and job.result == {"ran": True}
    assert AuditEvent.objects.filter(action="job.resume.refused").count() == 2


# -- nothing waits for ever ----------------------------------------------------------------------


@pytest.mark.postgres
def test_a_job_created_while_redis_is_down_is_queued_again_by_the_sweep(helpdesk, monkeypatch):
    def redis_down(pk, queue):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6391. Connection refused.")

    monkeypatch.setattr("portal.jobs.services._enqueue", redis_down)
    job = start("test_steps", helpdesk)  # the request does not fail after its commit
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.rq_id == ""
    assert "queued again automatically" in messages(job)[-1]
    queued = []
    monkeypatch.setattr("portal.jobs.services._enqueue", lambda pk, queue: queued.append(pk))
    assert do_sweep_jobs()["requeued"] == []  # too young: its on-commit enqueue may still be on its way
    swept = do_sweep_jobs(now=timezone.now() + timedelta(minutes=5))
    assert swept["requeued"] == [job.pk] and queued == [job.pk]
    assert AuditEvent.objects.filter(action="job.requeue", target=f"job:{job.pk}").exists()


def test_a_job_whose_queue_entry_vanished_is_offered_to_an_administrator(helpdesk, admin, monkeypatch,
                                                                        no_enqueue):
    job = start("test_steps", helpdesk)
    Job.objects.filter(pk=job.pk).update(rq_id="gone-from-redis")
    monkeypatch.setattr("portal.jobs.services.queue_entry_exists", lambda job: False)
    swept = do_sweep_jobs(now=timezone.now() + timedelta(minutes=5))
    assert swept["queue_lost"] == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUE_LOST and "vanished" in job.summary
    do_resume_job(job=job, user=admin)
    job = run_job_inline(Job.objects.get(pk=job.pk))
    assert job.status == JobStatus.SUCCEEDED


def test_queue_unknown_is_not_a_loss(helpdesk, monkeypatch, no_enqueue):
    job = start("test_steps", helpdesk)
    Job.objects.filter(pk=job.pk).update(rq_id="somewhere")
    monkeypatch.setattr("portal.jobs.services.queue_entry_exists", lambda job: None)  # Redis cannot be asked
    assert do_sweep_jobs(now=timezone.now() + timedelta(minutes=5))["queue_lost"] == []
    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED


def test_the_jobs_page_shows_lost_and_unqueued_jobs(client, helpdesk, admin, monkeypatch):
    monkeypatch.setattr("portal.jobs.services._enqueue", lambda pk, queue: (_ for _ in ()).throw(
        ConnectionError("Redis down")))
    unqueued = start("test_steps", helpdesk)
    lost = start("test_steps", helpdesk)
    Job.objects.filter(pk=lost.pk).update(status=JobStatus.QUEUE_LOST, rq_id="x")
    client.force_login(admin)
    page = client.get("/jobs/").content.decode()
    assert f"#{lost.pk} Test steps" in page and "waits for you to resume it" in page
    assert f"#{unqueued.pk} Test steps" in page and "queue it again automatically" in page
