"""An Administrator starts an address scan from the page's button, against the seeded lab, then opens a
finding and reads why the mail change of the field notes never reached Exchange Online."""

import re

import pytest

from tests.e2e.conftest import login, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_administrator_scans_and_opens_a_finding(page, rq_workers, make_user, lab_tenant):
    rq_workers(1)
    make_user("admin", "Administrator")
    login(page, "admin")
    page.goto("/diagnostics/address-repair/")
    page.get_by_role("button", name="Scan").click()
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
    page.wait_for_selector("#log-poller[data-state=stopped]", state="attached", timeout=300_000)
    assert page.locator("#job-header .badge").inner_text().startswith("Succeeded"), \
        page.locator("#job-header").inner_text()
    page.goto("/diagnostics/address-repair/")
    assert page.get_by_role("img", name="Findings by severity").is_visible()
    page.get_by_role("link", name="proxyAddresses holds only X500").first.click()
    page.wait_for_url(re.compile(r".*rule=x500_only.*"))
    page.locator("#table-container tbody tr a").first.click()
    page.wait_for_url(re.compile(r".*/address-repair/findings/\d+/$"))
    assert page.get_by_text("will not reach Exchange Online").first.is_visible()
    assert page.get_by_text("Change that fixes it").is_visible()
    screenshot(page, "e2e-address-finding")
