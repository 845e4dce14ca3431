"""The writeback rename from the pages: an Administrator makes the plan and asks for approval, an Approver
signs it, the runbook's first step is refused by the portal's own check until the sync server really is in
staging mode (flipped on the lab page, as the wizard would), then the verification runs from its button.

The lab's sync server starts from a known state (writeback on, Group_<id> names, not staging) with two cloud
groups of the test's own written back (``writeback_lab``, shared with the integration test, which restores the
server afterwards): the page is judged on those groups, whatever other tests did to the shared lab before."""

import re

import pytest

from portal.connectors.registry import ad_layout
from portal.directory import writeback_names as wn
from tests.e2e.conftest import login, screenshot
from tests.support.writeback import writeback_lab  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _wait_for_job(page) -> None:
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
    page.wait_for_selector("#log-poller[data-state=stopped]", state="attached", timeout=180_000)
    assert page.locator("#job-header .badge").inner_text().startswith(("Succeeded", "Succeeded with")), \
        page.locator("#job-header").inner_text()


def _logout(page) -> None:
    page.context.clear_cookies()


def _wizard(page, *, staging: bool, scheduler: bool, writeback: bool, display_name: bool) -> None:
    """The Entra Connect wizard's settings, set on the lab page as an admin sets them on the sync server."""
    page.goto("/lab/")
    page.get_by_label("Staging mode").set_checked(staging)
    page.get_by_label("Scheduler runs cycles (SyncCycleEnabled)").set_checked(scheduler)
    page.get_by_label("Group writeback", exact=True).set_checked(writeback)
    page.get_by_label("Writeback Group Distinguished Name with cloud Display Name").set_checked(display_name)
    page.get_by_role("button", name="Apply the wizard settings").click()
    assert page.get_by_text("wizard settings were applied").is_visible()


def _lab_cycle(page, button: str) -> None:
    page.goto("/lab/")
    page.get_by_role("button", name=button).click()
    _wait_for_job(page)


def _confirm(page, key: str, check: str) -> None:
    """Tick and confirm one runbook step; the portal's own check ``check`` is shown as passed."""
    page.goto("/diagnostics/writeback/")
    page.get_by_role("link", name="Runbook", exact=True).click()
    step = page.locator(f"#step-{key}")
    step.get_by_label("I did this step and checked what it asks").check()
    step.get_by_role("button", name="Check and confirm this step").click()
    badge = page.locator(f"#step-{key} .badge")
    assert badge.count() and badge.inner_text() == "confirmed", page.locator("main").inner_text()[:2000]
    assert page.locator(f"#step-{key} .checks").get_by_text(check).first.is_visible()


def test_plan_approve_refused_step_and_verification(page, rq_workers, make_user, writeback_lab):  # noqa: F811
    ou = ad_layout().writeback_ou
    ours = {g["id"]: g for g in writeback_lab.groups}
    rq_workers(1)
    make_user("wbadmin", "Administrator")
    make_user("wbapprover", "Approver")
    login(page, "wbadmin")
    page.goto("/diagnostics/writeback/")
    page.get_by_role("button", name="Make the first plan").click()
    _wait_for_job(page)
    page.goto("/diagnostics/writeback/")
    assert page.locator("#plan-status").inner_text() == "Draft"
    # the test's own groups, found with the page's filter: both renamed by the switch, to the names it predicts
    page.get_by_label("Name or DN contains").fill(writeback_lab.tag)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(rf".*q={writeback_lab.tag}.*"))
    rows = page.locator("#table-container tbody tr")
    rows.first.wait_for()
    assert rows.count() == len(ours), rows.all_inner_texts()
    for oid, group in ours.items():
        row = rows.filter(has_text=oid)
        planned = wn.display_name_cn(object_id=oid, display_name=group["displayName"])
        assert row.locator("td").nth(1).inner_text() == "Renamed by the switch"
        assert row.locator("td").nth(2).inner_text() == wn.writeback_dn(ou, wn.default_cn(oid))
        assert row.locator("td").nth(3).inner_text() == wn.writeback_dn(ou, planned.cn)
    assert "cut after 51 characters" in rows.filter(has_text="Long name").inner_text()
    screenshot(page, "e2e-writeback-plan-own-groups")
    # Cloud Sync readiness: two plain cloud security groups, ready, with the OU to map; every reason cites its source
    page.get_by_role("link", name="Cloud Sync readiness").click()
    readiness = page.locator("table.cloud-sync tbody tr")
    for oid in ours:
        row = readiness.filter(has_text=oid)
        assert row.locator("td").nth(2).inner_text() == "Cloud Sync can take it over"
        assert f"parentDistinguishedName) to {ou}" in row.inner_text()
    assert page.locator("#sources a[href^='https://learn.microsoft.com/entra/']").count() >= 3
    screenshot(page, "e2e-writeback-cloud-sync")
    page.goto("/diagnostics/writeback/")
    page.get_by_role("button", name="Request approval").click()
    assert page.locator("#plan-status").inner_text() == "Awaiting approval"
    assert page.get_by_text("four eyes means someone else approves it").is_visible()

    _logout(page)
    login(page, "wbapprover")
    page.goto("/diagnostics/writeback/")
    page.get_by_label("I have read the plan and every check, and approve exactly this").check()
    page.get_by_role("button", name="Approve this plan").click()
    assert page.locator("#plan-status").inner_text() == "Approved"

    _logout(page)
    login(page, "wbadmin")
    page.goto("/diagnostics/writeback/")
    page.get_by_role("link", name="Runbook", exact=True).click()
    step = page.locator("#step-staging_on")
    step.get_by_label("I did this step and checked what it asks").check()
    step.get_by_role("button", name="Check and confirm this step").click()
    assert page.locator(".msg-error").get_by_text("STAGING MODE IS OFF").is_visible()  # lab: not in staging
    assert page.locator("#step-staging_on .badge").count() == 0
    screenshot(page, "e2e-writeback-step-refused")

    page.goto("/lab/")
    page.get_by_label("Staging mode").check()
    page.get_by_label("Group writeback", exact=True).check()
    page.get_by_label("Scheduler runs cycles (SyncCycleEnabled)").uncheck()
    page.get_by_role("button", name="Apply the wizard settings").click()
    assert page.get_by_text("wizard settings were applied").is_visible()

    _confirm(page, "staging_on", "staging mode is on")

    page.get_by_role("link", name="Back to the plan").click()
    page.get_by_role("button", name="Verify the result").click()
    _wait_for_job(page)
    page.goto("/diagnostics/writeback/")
    # Only staging mode is on, no cycle ran: every group is still where it was, not renamed yet, none missing.
    assert page.locator("#verification h3 .badge").first.inner_text() == "not as planned"
    verified = page.locator("table.verification tbody tr")
    assert verified.get_by_text("missing").count() == 0
    for oid, group in ours.items():
        row = verified.filter(has_text=group["displayName"])
        assert row.count() == 1, verified.all_inner_texts()
        assert row.locator("td").nth(1).inner_text() == "unchanged"
        assert row.locator("td").nth(3).inner_text() == wn.writeback_dn(ou, wn.default_cn(oid))

    # The rest of the runbook, each step set on the lab's sync server and confirmed only after the portal's check.
    _wizard(page, staging=True, scheduler=False, writeback=False, display_name=False)
    _confirm(page, "writeback_off", "group writeback is off")
    _wizard(page, staging=True, scheduler=False, writeback=True, display_name=True)
    _confirm(page, "writeback_on", "with cloud Display Name\" is on")
    _lab_cycle(page, "Run a full (initial) sync")
    _confirm(page, "full_sync", "a full cycle completed")
    _confirm(page, "review_exports", "exactly the plan's")
    _wizard(page, staging=False, scheduler=True, writeback=True, display_name=True)
    _confirm(page, "staging_off", "staging mode is off")
    _lab_cycle(page, "Run a delta sync now")
    _confirm(page, "delta_sync", "a delta cycle completed")
    screenshot(page, "e2e-writeback-runbook-done")

    page.get_by_role("link", name="Back to the plan").click()
    page.get_by_role("button", name="Verify the result").click()
    _wait_for_job(page)
    page.goto("/diagnostics/writeback/")
    assert page.locator("#verification h3 .badge").first.inner_text() == "as planned"
    verified = page.locator("table.verification tbody tr")
    for oid, group in ours.items():
        row = verified.filter(has_text=group["displayName"])
        planned = wn.writeback_dn(ou, wn.display_name_cn(object_id=oid, display_name=group["displayName"]).cn)
        assert row.locator("td").nth(1).inner_text() == "renamed"
        # AD writes the same DN its own way (Samba: \3B for ";", "#" escaped inside the value): compared as DNs
        assert wn.dn_key(row.locator("td").nth(3).inner_text()) == wn.dn_key(planned)
    screenshot(page, "e2e-writeback-verification")
