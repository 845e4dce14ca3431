"""A batch as people click it: a helpdesk tech creates a batch, adds a lab list from the inventory's
filter ("add all matching"), runs the batch preflight on a real worker, reads the method recommended for the
list and chooses the other one in the list table, runs the preflight again and submits; an Approver finds it
in the queue beside single lists, reads what is signed and approves it with a note; the tech is notified,
schedules it to start now, and watches it run to Completed on the page (the batch's run job on one worker,
the list's migration job on the other)."""

import io
import re

import openpyxl
import pytest

from migrations_app.choices import BatchStatus
from migrations_app.models import MigrationBatch
from tests.conftest import wait_for
from tests.e2e.conftest import login, screenshot
from tests.integration.dl_lab import fresh_list
from tests.integration.test_dl_batches import inventory_row

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_helpdesk_builds_and_submits_a_batch_and_an_approver_signs_it(page, rq_workers, make_user, lab_tenant, lab):
    rq_workers(1)
    make_user("tech", "Helpdesk")
    approver = make_user("approver", "Approver")
    mail, dn = fresh_list(lab, prefix="batche2e", members=4)
    inventory_row(mail, dn)
    alias = mail.split("@")[0]

    login(page, "tech")
    page.goto("/dl/batches/")
    page.get_by_role("link", name="New batch").click()
    page.get_by_label("Batch name").fill("E2E batch")
    page.get_by_role("button", name="Create batch").click()
    page.wait_for_url(re.compile(r".*/dl/batches/\d+/$"))
    batch = MigrationBatch.objects.get(name="E2E batch")

    page.get_by_role("link", name="Add from the inventory").click()
    page.get_by_label("Search name, mail or alias").fill(alias)
    page.wait_for_selector("#add-all-matching:has-text('Add all 1 matching list')")
    page.locator("#add-all-matching").click()
    page.wait_for_url(f"**/dl/batches/{batch.pk}/")
    assert "1 list(s) added" in page.content() and page.locator("#batch-list-table").inner_text().count(mail) == 1

    page.get_by_role("button", name="Run the batch preflight").click()
    wait_for(lambda: MigrationBatch.objects.get(pk=batch.pk).preflight_summary, timeout=120,
             message="the batch preflight's result")
    page.reload()
    # The batch's rule by default: the recommended method for each list, shown with its reasons; the tech
    # chooses to recreate this one instead, which needs the preflight again.
    method = page.locator("#batch-list-table .batch-method")
    assert "In place (recommended)" in " ".join(method.inner_text().split())
    method.get_by_label(f"Method of {mail}").select_option("recreate")
    page.get_by_role("button", name="Save the methods").click()
    page.wait_for_selector("text=The method of 1 list(s) changed")
    page.get_by_role("button", name="Run the batch preflight").click()
    wait_for(lambda: MigrationBatch.objects.get(pk=batch.pk).preflight_summary, timeout=120,
             message="the second batch preflight's result")
    page.reload()
    assert "Recreate (chosen; in place recommended)" in " ".join(method.inner_text().split())
    assert "1 ready" in page.locator("#preflight-summary").inner_text()
    assert page.locator("#batch-members").inner_text() == "4"
    page.get_by_role("button", name="Submit for approval").click()
    page.wait_for_selector("#batch-status:has-text('Submitted')")
    screenshot(page, "e2e-batch-submitted")

    page.context.clear_cookies()
    login(page, "approver")
    assert page.locator("#nav-approvals").inner_text() == "Pending approvals 1"
    page.locator("#nav-approvals").click()
    page.locator("#batch-approvals-table").get_by_role("link", name="E2E batch").click()
    page.wait_for_url(f"**/dl/batches/{batch.pk}/")
    approve = page.locator("#batch-approve-form")
    approve.get_by_role("button", name="Approve the batch").click()  # not confirmed: the browser refuses
    assert MigrationBatch.objects.get(pk=batch.pk).status == BatchStatus.SUBMITTED
    approve.get_by_label("Note").fill("Saturday window")
    approve.get_by_label("I have read the plan and every check, and approve exactly this").check()
    approve.get_by_role("button", name="Approve the batch").click()
    page.wait_for_selector("#batch-status:has-text('Approved')")
    batch.refresh_from_db()
    assert batch.approved_by == approver and batch.decision_note == "Saturday window"
    screenshot(page, "e2e-batch-approved")

    page.context.clear_cookies()
    login(page, "tech")
    assert page.locator("#nav-notifications").inner_text() == "Notifications 1"
    page.locator("#nav-notifications").click()
    assert "was approved by approver" in page.locator("#notification-list").inner_text()
    page.get_by_role("link", name=re.compile("E2E batch")).click()
    # The run job takes a worker; its lists run beside it, or on it once DL_BATCH_TAKE_OVER_SECONDS passed.
    rq_workers(1, DL_BATCH_POLL_SECONDS=1, DL_BATCH_TAKE_OVER_SECONDS=1)
    schedule = page.locator("#batch-schedule-form")
    assert schedule.get_by_label("Start now").is_checked()
    schedule.get_by_role("button", name="Schedule the batch").click()
    page.wait_for_selector("#batch-status:has-text('Running')")
    assert page.locator("#batch-live").get_attribute("data-state") == "running"
    page.wait_for_selector("#batch-status:has-text('Completed')", timeout=600_000)  # the page polls by itself
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert "Migrated" in page.locator("#batch-list-table").inner_text()
    screenshot(page, "e2e-batch-completed")
    with page.expect_download() as download:
        page.locator("#batch-report-csv").click()
    report = download.value.path().read_text(encoding="utf-8").splitlines()
    assert report[1].startswith(f"{mail},") and ",Migrated," in report[1]
    with page.expect_download() as download:
        page.locator("#batch-report-xlsx").click()
    assert download.value.suggested_filename == f"batch-{batch.pk}-report.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(download.value.path().read_bytes()))  # the saved file has no suffix
    [row] = list(book["Lists"].iter_rows(min_row=2, values_only=True))
    assert row[0] == mail and row[2] == "Migrated" and row[5] == 4, row  # members found in the cloud list
    assert dict(book["Summary"].iter_rows(values_only=True))["Delta syncs started"] == 2  # the wave's, the end's
    with page.expect_popup() as popup:
        page.locator("#batch-summary-print").click()
    printable = popup.value
    printable.wait_for_selector("#batch-print-lists")
    assert mail in printable.locator("#batch-print-lists").inner_text()
    assert batch.plan_hash in printable.locator("#batch-print-facts").inner_text()
    screenshot(printable, "e2e-batch-printable-summary")
