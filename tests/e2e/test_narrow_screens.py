"""Every page a role can open fits a 390-px phone screen: the navigation collapses and nothing makes
the page scroll sideways (wide tables scroll inside their own box)."""

import pytest

from migrations_app.choices import MigrationStatus
from migrations_app.models import Migration
from portal.jobs.services import do_start_job, run_job_inline
from tests.e2e.conftest import login, screenshot
from tests.unit.test_dl_pages import make_list, passed_preflight
from tests.unit.test_mfa_report_pages import make_result

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROLES = ("Helpdesk", "Administrator", "Approver", "Auditor")


@pytest.fixture
def pages(make_user):
    from diagnostics_app.mfa.services import do_store_snapshot

    users = {role: make_user(role.lower(), role) for role in ROLES}
    make_list("a-list-with-a-rather-long-name-that-goes-on", mail="a-very-long-address-of-a-list@contoso.com")
    preflight = passed_preflight(users["Helpdesk"], "finance@contoso.com")
    migration = Migration.objects.create(mail="finance@contoso.com", requested_by=users["Helpdesk"],
                                         status=MigrationStatus.AWAITING_APPROVAL, preflight=preflight.result)
    job = run_job_inline(do_start_job(kind="test_steps", user=users["Helpdesk"], params={"warn_at": ["two"]}))
    snapshot = do_store_snapshot(make_result())
    return users, ["/", "/dl/", "/dl/migrations/", "/dl/preflight/", f"/dl/preflight/{preflight.pk}/",
                   f"/dl/migrations/{migration.pk}/", "/dl/settings/", "/dl/approvals/", "/jobs/", f"/jobs/{job.pk}/",
                   "/audit/", "/directory/", f"/diagnostics/mfa/?snapshot={snapshot.pk}", "/diagnostics/mfa/readiness/",
                   "/diagnostics/address-repair/", "/diagnostics/writeback/"]


@pytest.mark.parametrize("role", ROLES)
def test_no_page_scrolls_sideways_at_390_px(browser, live_server, pages, role):
    users, urls = pages
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
    page = context.new_page()
    try:
        login(page, users[role].username)
        too_wide = {}
        for url in urls:
            response = page.goto(url)
            if response.status == 403:
                continue
            width = page.evaluate("() => document.documentElement.scrollWidth")
            if width > 390:
                too_wide[url] = width
                screenshot(page, f"narrow-{role.lower()}-{url.strip('/').replace('/', '-') or 'home'}")
        assert not too_wide, too_wide
        page.goto("/")
        toggle = page.get_by_role("button", name="Menu")
        assert toggle.is_visible() and not page.get_by_role("navigation", name="Areas").is_visible()
        toggle.click()
        assert page.get_by_role("navigation", name="Areas").is_visible()
        screenshot(page, f"narrow-{role.lower()}-menu-open")
    finally:
        context.close()
