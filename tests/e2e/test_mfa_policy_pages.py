"""An Administrator takes an MFA snapshot from the button, opens Conditional access, drills into a policy and
one of its users, then asks the readiness of the report-only policy and of a hypothetical one from the form;
then splits the roll-out readiness into waves and requests a security group per wave, which an Approver
finds in the navigation's Pending approvals queue and approves (the job writes the groups in the lab; the test
deletes them afterwards)."""

import re

import pytest

from tests.e2e.conftest import login, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_policy_view_drill_down_and_readiness_form(page, rq_workers, make_user, lab_tenant, request):
    rq_workers(1)
    make_user("admin", "Administrator")
    make_user("approver", "Approver")
    login(page, "admin")
    page.goto("/diagnostics/mfa/")
    page.get_by_role("button", name=re.compile(r"Take (the first|a new) snapshot")).click()
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
    page.wait_for_selector("#log-poller[data-state=stopped]", state="attached", timeout=180_000)
    assert page.locator("#job-header .badge").inner_text().startswith("Succeeded"), \
        page.locator("#job-header").inner_text()
    page.goto("/diagnostics/mfa/")
    page.get_by_role("link", name="Conditional access").click()
    policies = page.locator("#policy-list")
    assert "Report-only" in policies.inner_text() and "Disabled" in policies.inner_text()
    assert page.locator("#policy-outcomes").get_by_text("Covered, will be interrupted").is_visible()
    screenshot(page, "e2e-mfa-conditional-access")

    page.get_by_role("link", name="Admins: phishing-resistant MFA").click()
    assert "holds role" not in page.locator("#policy-targets").inner_text()  # targets list the roles themselves
    assert "role Global Administrator" in page.locator("#policy-targets").inner_text()
    assert "Phishing-resistant MFA" in page.locator("#policy-demand").inner_text()
    page.get_by_label("Show").select_option("interrupted")
    page.get_by_role("button", name="Filter").click()
    users = page.locator("#policy-users tbody tr")
    assert users.count() >= 1 and "Will be interrupted" in users.first.inner_text()
    users.first.get_by_role("link").click()
    drill = page.locator("#user-policies")
    assert "Admins: phishing-resistant MFA" in drill.inner_text() and "Cannot answer" in drill.inner_text()

    drill.get_by_role("link", name=re.compile(r"All policies of snapshot")).click()
    page.get_by_role("link", name="All users: require MFA").click()
    page.get_by_role("link", name="Readiness if enforced, with sign-in evidence").click()
    assert "would be interrupted once it is enforced" in page.locator("#policy-readiness-result").inner_text()
    assert "agrees" in page.locator("#policy-evidence").inner_text()
    screenshot(page, "e2e-mfa-policy-readiness")

    page.get_by_label("Policy", exact=True).select_option("hypothetical")
    page.get_by_label("Hypothetical policy: demand").select_option(
        label="Authentication strength: Phishing-resistant MFA")
    page.get_by_role("button", name="Show who would be interrupted").click()
    result = page.locator("#policy-readiness-result")
    assert "Hypothetical policy on the whole tenant" in result.inner_text()
    assert "Phishing-resistant MFA" in result.inner_text()
    assert page.locator(".field-error").count() == 0

    # Waves as groups: split the readiness into waves of at most 15 users, request the groups.
    page.goto("/diagnostics/mfa/")
    page.get_by_role("link", name="Roll-out readiness").click()
    page.get_by_label("Most users in one wave").fill("15")
    page.get_by_role("button", name="Show readiness").click()
    split = page.locator("#wave-split tbody tr")
    assert split.count() >= 2 and "MFA wave 01 - " in split.first.inner_text()
    sizes = [int(split.nth(i).locator("td").nth(2).inner_text()) for i in range(split.count())]
    assert max(sizes) <= 15
    waves = split.count()
    page.get_by_role("button", name="Request these wave groups").click()
    page.wait_for_url(re.compile(r".*/diagnostics/mfa/waves/\d+/$"))
    request_url = page.url
    assert "the requester cannot approve" in page.locator("main").inner_text()
    assert page.get_by_role("button", name="Approve and write the groups").count() == 0
    screenshot(page, "e2e-mfa-wave-groups-requested")

    from diagnostics_app.models import MfaWaveGroups

    def delete_groups():
        from portal.connectors.registry import entra_graph

        req = MfaWaveGroups.objects.order_by("-id").first()
        with entra_graph() as graph:
            for wave in ((req.report or {}).get("waves") or {}).values() if req else ():
                graph.delete_group(wave["group_id"])

    request.addfinalizer(delete_groups)
    page.context.clear_cookies()
    login(page, "approver")
    # the Approver finds it where every sign-off waits: the navigation's count, then the queue
    nav = page.locator("#nav-approvals")
    assert re.fullmatch(r"Pending approvals [1-9]\d*", nav.inner_text()), nav.inner_text()
    nav.click()
    page.wait_for_url("**/dl/approvals/")
    wave_id = request_url.rstrip("/").rsplit("/", 1)[1]
    screenshot(page, "e2e-approvals-queue-wave-groups")
    page.locator("#wave-approvals-table").get_by_role("link", name=f"Wave groups #{wave_id}").click()
    page.wait_for_url(request_url)
    screenshot(page, "e2e-mfa-wave-groups-from-queue")
    page.get_by_label("I have read the plan and every check, and approve exactly this").check()
    page.get_by_role("button", name="Approve and write the groups").click()
    page.wait_for_selector("text=the job writing the groups is queued")
    page.get_by_role("link", name=re.compile(r"job #\d+")).click()
    page.wait_for_selector("#log-poller[data-state=stopped]", state="attached", timeout=120_000)
    assert page.locator("#job-header .badge").inner_text().startswith("Succeeded"), \
        page.locator("#job-header").inner_text()
    page.goto(request_url)
    written = page.locator("#wave-groups tbody tr")
    assert written.count() == waves
    assert all("created" in written.nth(i).inner_text() for i in range(written.count()))
    assert "Groups written" in page.locator("h1").inner_text()
    screenshot(page, "e2e-mfa-wave-groups-written")
