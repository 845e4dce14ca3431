"""The hardened safety paths as people click them: turning four eyes off takes two Administrators, a
job past its point of no return offers no Cancel, and a job lost from the queue is resumed from the
jobs page by an Administrator."""

import re

import pytest

from migrations_app.models import MigrationSettings
from portal.audit.models import AuditEvent
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.services import do_start_job
from tests.e2e.conftest import login, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_turning_four_eyes_off_takes_a_second_administrator(page, make_user):
    make_user("admin-a", "Administrator")
    make_user("admin-b", "Administrator")
    MigrationSettings.objects.update_or_create(pk=1, defaults={"require_approval_for_single": True})

    login(page, "admin-a")
    page.goto("/dl/settings/")
    page.get_by_label("Single migrations need an Approver's sign-off").uncheck()
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_selector("#four-eyes-off")
    assert "needs a second Administrator" in page.content()
    assert page.get_by_role("button", name="Confirm: turn approvals off").count() == 0
    assert MigrationSettings.current().require_approval_for_single
    screenshot(page, "e2e-four-eyes-off-requested")

    page.context.clear_cookies()
    login(page, "admin-b")
    page.goto("/dl/settings/")
    page.get_by_role("button", name="Confirm: turn approvals off").click()
    page.wait_for_selector("text=Approvals are off for single migrations")
    assert not MigrationSettings.current().require_approval_for_single
    assert AuditEvent.objects.get(action="dl.settings.four_eyes_off").detail == {
        "requested_by": "admin-a", "confirmed_by": "admin-b"}
    screenshot(page, "e2e-four-eyes-off-confirmed")


def test_no_cancel_past_the_point_of_no_return_and_a_lost_job_is_resumed_from_the_jobs_page(page, make_user):
    helpdesk = make_user("tech", "Helpdesk")
    make_user("admin", "Administrator")
    running = do_start_job(kind="test_steps", user=helpdesk, enqueue=False)
    Job.objects.filter(pk=running.pk).update(status=JobStatus.RUNNING, attempts=1, cancellable=False,
                                             not_cancellable_reason="the original list is being disabled")
    lost = do_start_job(kind="test_steps", user=helpdesk, enqueue=False)
    Job.objects.filter(pk=lost.pk).update(status=JobStatus.QUEUE_LOST, rq_id="vanished")

    login(page, "tech")
    page.goto(f"/jobs/{running.pk}/")
    assert "point of no return" in page.locator("#job-header").inner_text()
    assert page.get_by_role("button", name="Cancel job").count() == 0
    screenshot(page, "e2e-job-past-point-of-no-return")

    page.goto("about:blank")  # the running job's page polls on: signed out, it would navigate to /login/ itself
    page.context.clear_cookies()
    login(page, "admin")
    page.goto("/jobs/")
    page.locator("#stranded-jobs").get_by_role("link", name=re.compile(f"#{lost.pk} ")).click()
    page.wait_for_url(re.compile(rf".*/jobs/{lost.pk}/$"))
    page.get_by_role("button", name="Resume from last checkpoint").click()
    page.wait_for_selector("text=is queued again")
    lost.refresh_from_db()
    assert lost.status == JobStatus.QUEUED
    assert AuditEvent.objects.filter(action="job.resume", target=f"job:{lost.pk}").exists()
    screenshot(page, "e2e-job-resumed")
