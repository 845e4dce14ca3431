"""A helpdesk tech preflights a lab list from the form, reads the report and plan, migrates it and watches
the migration page reach Migrated; then inventories and opens the list page."""

import re

import pytest

from tests.e2e.conftest import login, screenshot
from tests.integration.dl_lab import fresh_list

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_helpdesk_preflights_and_migrates_a_list_from_the_pages(page, rq_workers, make_user, lab_tenant, lab):
    rq_workers(1)
    make_user("helpdesk", "Helpdesk")
    mail, _ = fresh_list(lab, prefix="dle2e", members=5)
    login(page, "helpdesk")

    page.goto(f"/dl/preflight/?mail={mail}")
    assert page.get_by_label("Primary SMTP address of the list").input_value() == mail
    assert page.get_by_label("Hybrid mail flow").is_checked()
    screenshot(page, "e2e-dl-preflight-form")
    page.get_by_role("button", name="Run preflight").click()
    page.wait_for_url(re.compile(r".*/dl/preflight/\d+/$"))
    page.wait_for_selector("#preflight-live[data-state=finished]", timeout=60_000)
    assert "Ready" in page.locator(".job-title .badge").inner_text()
    assert page.locator("#plan").is_visible()
    plan = page.locator("#plan").inner_text()
    assert "with 5 member(s)" in plan and "Hybrid mail flow" in plan
    screenshot(page, "e2e-dl-preflight-report")

    page.get_by_role("button", name="Migrate 1 list").click()
    page.wait_for_url(re.compile(r".*/dl/migrations/\d+/$"))
    page.wait_for_function(
        "() => /Migrated/.test(document.querySelector('#migration-status')?.innerText || '')", timeout=180_000)
    page.wait_for_selector("#migration-live[data-state=settled]", timeout=10_000)
    status = page.locator("#migration-status").inner_text()
    assert status.startswith("Migrated"), status
    assert page.locator("#report").is_visible() and page.locator("#comparison").is_visible()
    assert page.locator("#backups a", has_text="On-premises group").count() == 1
    screenshot(page, "e2e-dl-migration-page")

    # The inventory now knows the list as migrated, and its page shows the history.
    page.goto("/dl/")
    page.get_by_role("button", name="Run the inventory").first.click()
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
    page.wait_for_selector("#log-poller[data-state=stopped]", state="attached", timeout=120_000)
    page.goto("/dl/")
    screenshot(page, "e2e-dl-inventory")
    page.get_by_label("Search name, mail or alias").press_sequentially(mail.split("@")[0])
    page.wait_for_function("() => document.querySelectorAll('#dl-table tbody tr').length === 1", timeout=10_000)
    assert mail.split("@")[0] in page.url, "the filtered view is in the URL (hx-push-url)"
    row = page.locator("#dl-table tbody tr")
    assert "Migrated" in row.inner_text()
    row.get_by_role("link").first.click()
    page.wait_for_selector("#history")
    assert "Migrated" in page.locator("#history").inner_text()
    screenshot(page, "e2e-dl-list-page")
