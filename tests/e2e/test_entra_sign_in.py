"""The whole "Sign in with Microsoft" in chromium against the lab cloud: the portal's button, the lab's
sign-in page (pick a lab user, type its lab password), the code exchange and id-token validation
behind it, roles from the user's app role; a user without one sees what to ask for; sign-out offers
the Microsoft sign-out."""

import re

import pytest

from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def lab_page(browser, live_server):
    # The lab cloud answers over HTTPS with a certificate from the lab's own CA, which chromium does not know.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url,
                                  ignore_https_errors=True)
    page = context.new_page()
    yield page
    context.close()


def _sign_in_with_microsoft(page, account):
    page.goto("/login/")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    page.wait_for_url(re.compile(r"https://127\.0\.0\.1:\d+/.*/oauth2/v2\.0/authorize"))
    page.get_by_label("Lab user").select_option(account["user_id"])
    page.get_by_label("Password").fill(account["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: url.startswith("http://") and "/login/" not in url)


def test_helpdesk_signs_in_with_microsoft_and_out_again(lab_page, lab_tenant, db):
    from portal.lab import config

    accounts = config.sign_in_accounts()
    page = lab_page
    _sign_in_with_microsoft(page, accounts["Helpdesk"])
    assert page.get_by_text("You hold the role Helpdesk").is_visible()
    areas = page.get_by_role("navigation", name="Areas")
    assert areas.get_by_role("link", name="DL migration").is_visible()
    screenshot(page, "e2e-entra-sign-in-helpdesk")
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_role("heading", name="You are signed out of the portal").is_visible()
    page.get_by_role("link", name="Sign out of Microsoft too").click()
    page.wait_for_url(re.compile(r".*/login/$"))
    assert page.get_by_role("link", name="Sign in with Microsoft").is_visible()

    # A lab user holding no app role is signed in and told which role to ask for, nothing else.
    _sign_in_with_microsoft(page, accounts["no role"])
    assert page.get_by_text("holds no role yet").is_visible()
    assert page.get_by_text("DirOps.Helpdesk").is_visible()
    assert page.get_by_role("link", name="DL migration").count() == 0
    assert page.get_by_role("link", name="Jobs").count() == 0
