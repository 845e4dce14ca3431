"""An Administrator starts an address scan from the page's button, against the seeded lab, then opens a
finding and reads why the mail change of the field notes never reached Exchange Online; the ProxyCalc
explainer, prefilled from that object and typed into as an admin would."""

import re

import pytest
from playwright.sync_api import expect

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
    # The finding's object in the ProxyCalc explainer: its values read from AD and the tenant, then a what-if.
    page.get_by_role("link", name="Explain ProxyCalc for this object").click()
    page.wait_for_url(re.compile(r".*/address-repair/proxycalc/\?dn=.*"))
    result = page.locator("#explain-result")
    assert result.get_by_text("ignored", exact=True).is_visible(), result.inner_text()
    mail = page.get_by_label("mail", exact=True).input_value()
    primary = page.get_by_test_id("primary")
    assert primary.inner_text().lower() != mail.lower()
    proxies = page.get_by_label("proxyAddresses (one a line)")
    proxies.press("Control+End")
    proxies.press_sequentially(f"\nSMTP:{mail}")
    expect(primary).to_have_text(re.compile(re.escape(mail), re.IGNORECASE), timeout=15_000)
    expect(result.get_by_text("ignored", exact=True)).to_have_count(0)


def test_explainer_answers_as_the_admin_types_and_refuses_script(page, make_user):
    make_user("admin", "Administrator")
    login(page, "admin")
    page.goto("/diagnostics/address-repair/")
    page.get_by_role("link", name="ProxyCalc explainer").click()
    page.wait_for_url(re.compile(r".*/address-repair/proxycalc/$"))
    page.get_by_label("userPrincipalName").fill("ann@contoso.com")
    page.get_by_label("Verified domains of the tenant (comma-separated)").fill("contoso.com")
    page.get_by_label("Initial domain (*.onmicrosoft.com)").fill("contoso.onmicrosoft.com")
    page.get_by_role("button", name="Explain").click()
    primary = page.get_by_test_id("primary")
    expect(primary).to_have_text("ann@contoso.com", timeout=15_000)
    result = page.locator("#explain-result")
    assert result.get_by_text("rule 5: neither proxyAddresses nor mail is set").is_visible()
    # Typing, no button: htmx re-renders the answer.
    page.get_by_label("mail", exact=True).fill("ann.lee@contoso.com")
    expect(primary).to_have_text("ann.lee@contoso.com", timeout=15_000)
    expect(result.get_by_text("rule 8: the UPN is a secondary address")).to_be_visible(timeout=15_000)
    page.get_by_label("mail", exact=True).fill("<script>alert(1)</script>")
    expect(result.get_by_role("alert")).to_contain_text("mail holds < or >", timeout=15_000)
    assert primary.count() == 0
    screenshot(page, "e2e-proxycalc-explainer")
