"""An auditor opens the MFA registration report, filters it to the unusable registrations and opens one."""

from datetime import timedelta

import pytest

from tests.e2e.conftest import login, screenshot
from tests.unit.test_mfa_report_pages import T0, make_result

pytestmark = pytest.mark.e2e


def test_auditor_reads_the_mfa_report(page, make_user):
    from diagnostics_app.mfa.services import do_store_snapshot

    do_store_snapshot(make_result(when=T0 - timedelta(days=14), extra_unusable=4))
    do_store_snapshot(make_result(when=T0 - timedelta(days=7), extra_unusable=2))
    snapshot = do_store_snapshot(make_result())
    make_user("auditor", "Auditor")
    login(page, "auditor")
    page.goto("/diagnostics/mfa/")
    assert page.get_by_role("heading", name="MFA registration").is_visible()
    assert page.locator(".mfa-tiles").inner_text().count("%") >= 4
    assert page.get_by_role("img", name="Users by MFA classification").is_visible()
    assert page.locator("svg.trend polyline").count() == 2
    assert page.get_by_role("button", name="Take a new snapshot").count() == 0  # auditors read only
    path = screenshot(page, "mfa-report")

    page.get_by_label("Classification", exact=True).select_option("not_usable")
    page.wait_for_url("**classification=not_usable**")
    page.wait_for_function("() => document.querySelector('#table-container .count').innerText.startsWith('1 user')")
    page.get_by_role("link", name="bob@contoso.com").click()
    page.wait_for_url(f"**/diagnostics/mfa/users/{snapshot.rows.get(upn='bob@contoso.com').pk}/")
    assert page.get_by_role("heading", name="Evidence timeline").is_visible()
    assert "Azure MFA StrongAuthenticationService" in page.locator(".timeline").inner_text()
    screenshot(page, "mfa-user")
    assert path.endswith("mfa-report.png")
