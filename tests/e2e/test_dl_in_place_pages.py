"""A helpdesk tech chooses 'in place' on the preflight form, reads the recommendation and the in-place checks and
plan, converts the list and watches its migration page report it cloud-managed (same object, no longer synced);
an administrator then asks what a take-back would overwrite and reads the attribute changed in the cloud."""

import re

import pytest

from portal.connectors.registry import exchange_online
from tests.conftest import wait_for
from tests.e2e.conftest import login, screenshot
from tests.integration.dl_lab import fresh_list

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_helpdesk_chooses_in_place_and_converts_a_list_from_the_pages(page, rq_workers, make_user, lab_tenant, lab):
    rq_workers(1, DL_DELETION_POLL_SECONDS="0.5", DL_DELETION_TIMEOUT_SECONDS="120")
    make_user("helpdesk", "Helpdesk")
    make_user("admin", "Administrator")
    mail, _ = fresh_list(lab, prefix="soae2e", members=3)
    login(page, "helpdesk")

    page.goto(f"/dl/preflight/?mail={mail}")
    assert page.get_by_label("Recreate as a cloud list").is_checked()
    page.get_by_label("In place: hand its source of authority to the cloud").check()
    page.get_by_role("button", name="Run preflight").click()
    page.wait_for_url(re.compile(r".*/dl/preflight/\d+/$"))
    page.wait_for_selector("#preflight-live[data-state=finished]", timeout=90_000)
    assert "Ready" in page.locator(".job-title .badge").inner_text()
    recommendation = page.locator("#method-recommendation").inner_text()
    assert "in place recommended" in recommendation and "2.5.76.0" in recommendation
    checks = page.locator("#preflight-live").inner_text()
    assert "Sync client honours the conversion" in checks and "Mail-enabled support" in checks
    assert "Hand the source of authority to the cloud" in page.locator("#plan").inner_text()
    screenshot(page, "e2e-dl-in-place-preflight")

    page.get_by_role("button", name="Migrate 1 list").click()
    page.wait_for_url(re.compile(r".*/dl/migrations/\d+/$"))
    page.wait_for_function(
        "() => /Migrated/.test(document.querySelector('#migration-status')?.innerText || '')", timeout=180_000)
    page.wait_for_selector("#migration-live[data-state=settled]", timeout=10_000)
    assert page.locator("#migration-method").inner_text() == "In place"
    report = page.locator("#in-place-report").inner_text()
    assert "isCloudManaged true" in report and "not directory-synced" in report
    screenshot(page, "e2e-dl-in-place-migration")

    # someone changes the list in Exchange Online; the administrator asks what a take-back would overwrite
    with exchange_online() as exchange:
        twin = exchange.get_distribution_group(mail)
        exchange.set_distribution_group(twin.guid or mail, changes={"DisplayName": f"Cloud renamed {mail}"})
    migration_url = page.url
    page.context.clear_cookies()
    login(page, "admin")
    page.goto(migration_url)
    page.get_by_role("button", name="Show what the take-back overwrites").click()
    def preview_shown() -> bool:  # the read-only job runs on a worker; the page shows its result once done
        if page.locator("#take-back-preview").count():
            return True
        page.reload()
        return False

    wait_for(preview_shown, timeout=90, interval=1, message="the take-back preview on the migration page")
    table = page.locator("#take-back-preview").inner_text()
    assert "displayName / DisplayName" in table and f"Cloud renamed {mail}" in table
    assert "changed in the cloud since the conversion" in table and "AD's value will overwrite it" in table
    assert "mailNickname / Alias" not in table
    assert "Take back 1 list" in page.locator("#aftercare").inner_text()
    screenshot(page, "e2e-dl-in-place-take-back-preview")
