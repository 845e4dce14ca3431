"""The Lab page: the lab's state, fault switches, and a sync cycle started through Entra Connect."""

import pytest

from portal.audit.models import AuditEvent
from portal.jobs.choices import JobStatus
from portal.jobs.services import do_start_job, run_job_inline
from portal.lab import config
from portal.lab.cloud.store import CloudStore

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin_client(client, make_user):
    user = make_user("labadmin", "Administrator")
    client.force_login(user)
    client.user = user
    return client


def test_sync_cycle_runs_through_the_entra_connect_connector(lab, admin_client):
    job = run_job_inline(do_start_job(kind="lab_sync_cycle", user=admin_client.user, params={"policy": "Delta"},
                                      enqueue=False))
    assert job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS), job.summary
    assert job.summary.startswith("Delta sync cycle finished")
    log = list(job.log_lines.values_list("message", flat=True))
    assert [line for line in log if line.startswith("Start-ADSyncSyncCycle")] == [
        "Start-ADSyncSyncCycle -PolicyType Delta: started."]
    page = admin_client.get("/lab/").content.decode()
    assert "Rehearsal lab" in page and "Last sync cycles" in page and "No sync cycle has run yet" not in page


def test_fault_switches_reach_the_lab_cloud_and_are_audited(lab, admin_client):
    response = admin_client.post("/lab/", {"throttle": 3, "retry_after": 1, "unavailable": 0, "latency_ms": 0,
                                           "scope": "graph"})
    assert response.status_code == 302
    store = CloudStore.open(data_dir=config.cloud_dir())
    try:
        faults = store.settings()
    finally:
        store.clear_faults()  # the shared lab cloud must not go on throttling the next tests
        store.close()
    assert (faults.throttle_remaining, faults.retry_after, faults.unavailable_remaining, faults.latency_ms,
            faults.fault_scope) == (3, 1, 0, 0, "graph")
    assert AuditEvent.objects.filter(action="lab.faults", actor=admin_client.user).exists()


def test_bad_fault_values_change_nothing(lab, admin_client):
    response = admin_client.post("/lab/", {"throttle": -5, "retry_after": 1, "unavailable": 0, "latency_ms": 0,
                                           "scope": "all"})
    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 0" in response.content.decode()
    assert not AuditEvent.objects.filter(action="lab.faults").exists()


def test_no_lab_page_outside_lab_mode(admin_client, settings):
    settings.LAB_MODE = False
    assert admin_client.get("/lab/").status_code == 404
