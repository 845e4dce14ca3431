"""An Administrator works the Lab page's two forms in the browser: a sync cycle started from its button and
run by a real worker, and fault injection that reaches the lab cloud."""

import re

import pytest

from portal.audit.models import AuditEvent
from portal.lab import config
from portal.lab.cloud.store import CloudStore
from tests.e2e.conftest import login, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def lab_faults(lab):
    """Reads the lab cloud's faults; clears them at the end, so the shared lab cloud never goes on failing."""
    def read():
        store = CloudStore.open(data_dir=config.cloud_dir())
        try:
            return store.settings()
        finally:
            store.close()

    yield read
    store = CloudStore.open(data_dir=config.cloud_dir())
    try:
        store.clear_faults()
    finally:
        store.close()


def test_administrator_runs_a_delta_sync_from_the_lab_page(page, rq_workers, make_user, lab):
    rq_workers(1)
    make_user("labadmin", "Administrator")
    login(page, "labadmin")
    page.goto("/lab/")
    page.get_by_role("button", name="Run a delta sync now").click()
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
    page.wait_for_selector("#log-poller[data-state=stopped]", state="attached", timeout=120_000)
    assert page.locator("#job-status .badge").inner_text() in ("Succeeded", "Succeeded with warnings"), \
        page.locator("#job-header").inner_text()
    assert page.locator("#job-header .summary").inner_text().startswith("Delta sync cycle finished")
    assert page.locator("#log .line", has_text="Start-ADSyncSyncCycle -PolicyType Delta").count() == 1
    page.goto("/lab/")
    assert page.get_by_role("heading", name="Last sync cycles").is_visible()
    assert page.get_by_text("No sync cycle has run yet").count() == 0
    screenshot(page, "e2e-lab-delta-sync")


def test_administrator_sets_faults_from_the_lab_page_and_the_lab_cloud_has_them(page, make_user, lab_faults):
    user = make_user("labadmin", "Administrator")
    login(page, "labadmin")
    page.goto("/lab/")
    page.get_by_label("Answer the next N calls with 429").fill("3")
    page.get_by_label("Retry-After (seconds)").fill("7")
    page.get_by_label("then N calls with 503").fill("2")
    page.get_by_label("Which calls").select_option("graph")
    page.get_by_role("button", name="Apply", exact=True).click()
    page.wait_for_url(re.compile(r".*/lab/$"))
    assert page.get_by_text("Fault injection updated.").is_visible()
    faults = lab_faults()
    assert (faults.throttle_remaining, faults.retry_after, faults.unavailable_remaining, faults.latency_ms,
            faults.fault_scope) == (3, 7, 2, 0, "graph")
    now = page.locator("#faults-now")
    assert now.is_visible()
    assert "Throttle remaining" in now.inner_text() and "LabSettings(" not in now.inner_text(), "fields, not a repr"
    assert AuditEvent.objects.filter(action="lab.faults", actor=user).count() == 1
    screenshot(page, "e2e-lab-faults")
