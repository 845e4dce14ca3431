"""An Administrator takes the MFA snapshot from the page's button, against the lab cloud, and reads the
report it produced: the journey that shipped broken while its tests set the snapshot up directly."""

import re

import pytest

from tests.e2e.conftest import login, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_administrator_takes_the_first_snapshot_from_the_button(page, rq_workers, make_user, lab_tenant):
    rq_workers(1)
    make_user("admin", "Administrator")
    login(page, "admin")
    page.goto("/diagnostics/mfa/")
    page.get_by_role("button", name="Take the first snapshot").click()
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
    page.wait_for_selector("#log-poller[data-state=stopped]", state="attached", timeout=180_000)
    assert page.locator("#job-header .badge").inner_text().startswith("Succeeded"), \
        page.locator("#job-header").inner_text()
    page.goto("/diagnostics/mfa/")
    assert page.locator(".mfa-tiles").is_visible()
    assert page.get_by_role("img", name="Users by MFA classification").is_visible()
    screenshot(page, "e2e-mfa-snapshot-from-the-button")
    # The advanced section is there for who needs it, and the readiness page opens with a result.
    page.get_by_text("Advanced").click()
    assert page.get_by_label("Audit days to read").input_value() == "30"
    page.get_by_role("link", name="Roll-out readiness").click()
    assert page.get_by_text("would be interrupted at their next sign-in").is_visible()
    assert page.locator(".field-error").count() == 0

    # The next snapshot reads the audit only since the first and says where the rest of its evidence came from;
    # ticking "Read the whole audit window again" reads all of it.
    for tick, from_journal in ((False, True), (True, False)):
        page.goto("/diagnostics/mfa/")
        if tick:
            page.get_by_text("Advanced").click()
            page.get_by_label("Read the whole audit window again").check()
        page.get_by_role("button", name="Take a new snapshot").click()
        page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
        page.wait_for_selector("#log-poller[data-state=stopped]", state="attached", timeout=180_000)
        assert page.locator("#job-header .badge").inner_text().startswith("Succeeded")
        page.goto("/diagnostics/mfa/")
        assert page.locator("#audit-source").count() == (1 if from_journal else 0)
        if from_journal:
            assert "from earlier snapshots" in page.locator("#audit-source").inner_text()
            screenshot(page, "e2e-mfa-snapshot-from-the-journal")
