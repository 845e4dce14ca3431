"""Four eyes as people click it: a helpdesk tech requests migrations from passed preflights and withdraws
one; an Approver finds the rest in the navigation's queue, reads the plan and checks, rejects one with a
reason (the browser insists on it) and approves another only after ticking the confirmation."""

import re

import pytest

from migrations_app.choices import MigrationStatus
from migrations_app.models import Migration, MigrationSettings
from portal.audit.models import AuditEvent
from tests.e2e.conftest import login, screenshot
from tests.unit.test_dl_pages import passed_preflight

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _request(page, preflight) -> Migration:
    page.goto(f"/dl/preflight/{preflight.pk}/")
    page.get_by_role("button", name="Request approval for 1 list").click()
    page.wait_for_url(re.compile(r".*/dl/migrations/\d+/$"))
    assert "waits for an Approver" in page.content()
    return Migration.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))


def test_requests_are_withdrawn_rejected_with_a_reason_and_approved_with_confirmation(page, make_user):
    MigrationSettings.objects.update_or_create(pk=1, defaults={"require_approval_for_single": True})
    tech = make_user("tech", "Helpdesk")
    approver = make_user("approver", "Approver")
    flights = [passed_preflight(tech, f"{name}@contoso.com") for name in ("finance", "sales", "legal")]

    login(page, "tech")
    finance, sales, legal = (_request(page, f) for f in flights)
    page.goto(f"/dl/migrations/{legal.pk}/")
    page.get_by_role("button", name="Withdraw my request").click()
    page.wait_for_selector("text=is withdrawn")
    legal.refresh_from_db()
    assert legal.status == MigrationStatus.CANCELLED

    page.context.clear_cookies()
    login(page, "approver")
    nav = page.locator("#nav-approvals")
    assert nav.inner_text() == "Pending approvals 2"
    nav.click()
    page.wait_for_url("**/dl/approvals/")
    screenshot(page, "e2e-approvals-queue")
    page.locator("#approvals-table").get_by_role("link", name=f"#{sales.pk}").click()
    page.wait_for_url(f"**/dl/migrations/{sales.pk}/")
    assert page.locator("#signed-plan").is_visible() and page.locator("#signed-checks .check").count() == 2
    assert page.get_by_role("link", name="Open the preflight it was requested on").is_visible()

    reject = page.locator("#reject-form")
    reject.get_by_role("button", name="Reject").click()  # no reason: the browser refuses to send it
    sales.refresh_from_db()
    assert sales.status == MigrationStatus.AWAITING_APPROVAL
    reject.get_by_label("Reason (the requester reads it)").fill("Not during the quarter close")
    reject.get_by_role("button", name="Reject").click()
    page.wait_for_selector("text=Rejected by approver")
    assert "Not during the quarter close" in page.locator("#migration-summary").inner_text()
    assert page.get_by_text("Approved by").count() == 0
    screenshot(page, "e2e-approval-rejected")

    page.goto(f"/dl/migrations/{finance.pk}/")
    approve = page.locator("#approve-form")
    approve.get_by_role("button", name="Approve and start migration").click()  # not confirmed: refused
    finance.refresh_from_db()
    assert finance.status == MigrationStatus.AWAITING_APPROVAL
    approve.get_by_label("I have read the plan and every check, and approve exactly this").check()
    approve.get_by_role("button", name="Approve and start migration").click()
    page.wait_for_selector("text=approved and queued")
    finance.refresh_from_db()
    assert finance.status == MigrationStatus.QUEUED and finance.approved_by == approver
    assert finance.job.user == tech
    assert AuditEvent.objects.get(action="job.start.dl_migrate").actor == approver
    assert page.locator("#nav-approvals").inner_text() == "Pending approvals (0)"
    screenshot(page, "e2e-approval-approved")
