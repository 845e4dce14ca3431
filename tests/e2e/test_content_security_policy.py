"""In chromium, the pages that use htmx and charts run under the Content-Security-Policy without one violation."""

from datetime import timedelta

import pytest

from tests.e2e.conftest import login, screenshot
from tests.unit.test_mfa_report_pages import T0, make_result

pytestmark = pytest.mark.e2e


def test_htmx_pages_raise_no_policy_violation(page, make_user, no_enqueue):
    from diagnostics_app.mfa.services import do_store_snapshot

    do_store_snapshot(make_result(when=T0 - timedelta(days=7)))
    do_store_snapshot(make_result())
    make_user("admin1", "Administrator")
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    login(page, "admin1")
    response = page.goto("/diagnostics/mfa/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("Classification", exact=True).select_option("not_usable")  # an htmx swap
    page.wait_for_url("**classification=not_usable**")
    page.wait_for_function("() => document.querySelector('#table-container .count').innerText.startsWith('1 user')")
    # The swatches beside the classification table keep their colours without style attributes.
    assert page.locator("svg.swatch rect").first.get_attribute("fill").startswith("#")
    assert page.evaluate("getComputedStyle(document.querySelector('svg.swatch')).width") != "auto"
    screenshot(page, "csp-mfa-report")

    # A job nobody runs keeps its page polling for new log lines: htmx swaps them in under the policy.
    from portal.jobs.services import do_start_job

    job = do_start_job(kind="test_steps", user=make_user("hd1", "Helpdesk"))
    with page.expect_response(lambda r: f"/jobs/{job.pk}/log/" in r.url) as polled:
        page.goto(f"/jobs/{job.pk}/")
    assert polled.value.ok and "no-store" in polled.value.headers["cache-control"]
    assert page.locator("#log-poller").get_attribute("data-state") == "polling"
    page.goto("/jobs/")
    assert [p for p in problems if "Content Security Policy" in p or "Refused" in p] == []
    assert problems == []
