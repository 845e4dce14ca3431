"""A helpdesk tech starts a connectivity check and watches its log arrive line by line."""

import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.conftest import login, screenshot

pytestmark = pytest.mark.e2e

CHANGED = """([count, progress]) => document.querySelectorAll('#log .line').length !== count
    || Number(document.querySelector('#job-progress')?.getAttribute('value')) !== progress
    || /succeeded/i.test(document.querySelector('#job-header .badge')?.textContent || '')
    || document.querySelector('#log-poller')?.dataset.state === 'stopped'"""


def _finished(page) -> bool:
    return page.locator("#log-poller[data-state=stopped]").count() > 0


def test_connectivity_check_log_streams_into_the_browser(page, rq_workers, make_user, lab_scheduling):
    rq_workers(1, CONNECTIVITY_CHECK_STEP_DELAY=1.5)
    make_user("helpdesk", "Helpdesk")
    login(page, "helpdesk")
    page.get_by_role("button", name="Run connectivity check").click()
    page.wait_for_url("**/jobs/*/")

    lines = page.locator("#log .line")
    seen_counts, seen_progress = [], []
    # A deadline, not a speed claim: two cores under three test workers can be slow.
    deadline = time.monotonic() + 120
    while True:
        count = lines.count()
        if not seen_counts or count != seen_counts[-1]:
            seen_counts.append(count)
        progress = int(page.locator("#job-progress").get_attribute("value"))
        seen_progress.append(progress)
        if page.locator("#job-header .badge", has_text="Succeeded").count():
            break
        # A job that ended otherwise (a dependency down) fails here with its log, not as a wait timeout.
        assert not _finished(page), f"the job ended without success:\n{page.locator('#job-header').inner_text()}" \
                                    f"\n{chr(10).join(lines.all_inner_texts())}"
        left = deadline - time.monotonic()
        stalled = f"the job did not finish within 120 s (lines seen: {seen_counts}):\n" \
                  f"{chr(10).join(lines.all_inner_texts())}"
        assert left > 0, stalled
        # Wake on the page's next change (another line, the progress bar, the badge), not on a timer.
        try:
            page.wait_for_function(CHANGED, arg=[count, progress], timeout=left * 1000)
        except PlaywrightTimeout:
            pytest.fail(stalled)
    if lines.count() != seen_counts[-1]:
        seen_counts.append(lines.count())
    # The badge may have been swapped in after this turn's progress was read: read it once more.
    seen_progress.append(int(page.locator("#job-progress").get_attribute("value")))
    # The lines came in several steps while the page stayed open: streamed, not loaded at the end.
    assert len([c for c in seen_counts if c > 0]) >= 3, seen_counts
    assert seen_counts == sorted(seen_counts)
    assert 0 < min(p for p in seen_progress if p) < 100 and seen_progress[-1] == 100
    page.wait_for_selector("#log-poller[data-state=stopped]", state="attached")
    from portal.jobs.connectivity import DEPENDENCY_CHECKS

    assert page.locator("#job-header .summary").inner_text().startswith(
        f"All {len(DEPENDENCY_CHECKS)} dependencies reachable")
    assert page.locator("#job-header").count() == 1 and page.locator("#job-result").count() == 1
    result = page.locator("#job-result").inner_text()
    assert all(name in result for name, _ in DEPENDENCY_CHECKS), "result appears without a reload"
    texts = lines.all_inner_texts()
    assert any("Database:" in t and "SUCCESS" in t for t in texts)
    assert [int(s) for s in page.locator("#log .line").evaluate_all("els => els.map(e => e.dataset.seq)")] == \
        list(range(1, len(texts) + 1)), "each line exactly once, in order"
    screenshot(page, "e2e-connectivity-check-live-log")

    # A reload shows the whole log again and does not poll a finished job.
    page.reload()
    assert page.locator("#log .line").count() == len(texts)
    assert page.locator("#log-poller").get_attribute("data-state") == "stopped"


def test_auditor_reads_a_log_filtered_to_warnings_and_is_refused_actions(page, make_user, no_enqueue):
    from portal.jobs.services import do_start_job, run_job_inline

    job = run_job_inline(do_start_job(kind="test_steps", user=make_user("hd", "Helpdesk"),
                                      params={"warn_at": ["two"]}))
    make_user("auditor", "Auditor")
    login(page, "auditor")
    nav = page.get_by_role("navigation", name="Areas")
    assert nav.get_by_role("link", name="Audit").is_visible()
    assert page.get_by_role("button", name="Run connectivity check").count() == 0

    page.goto(f"/jobs/{job.pk}/")
    assert page.locator("#job-header .badge").inner_text() == "Succeeded with warnings"
    visible = page.locator("#log .line:visible")
    assert visible.count() == job.log_lines.count()
    page.get_by_label("Only warnings and errors").check()
    assert visible.all_inner_texts() == [t for t in visible.all_inner_texts() if "WARNING" in t]
    assert visible.count() == 1 and "two needs a look" in visible.inner_text()
    assert page.get_by_role("button", name="Cancel job").count() == 0

    page.goto("/diagnostics/address-repair/")  # an Auditor reads findings; starting a scan is not offered
    assert page.get_by_role("button", name="Scan").count() == 0
    assert "An Administrator starts scans; Auditors read them." in page.content()
    page.goto("/jobs/4242/")
    assert "There is nothing at this address" in page.content()


def test_long_log_opens_at_its_end_and_pages_back_keeping_the_reader_in_place(page, make_user, no_enqueue):
    from django.utils import timezone

    from portal.jobs.models import JobLogLine
    from portal.jobs.selectors import LOG_PAGE
    from portal.jobs.services import do_start_job, run_job_inline

    job = run_job_inline(do_start_job(kind="test_steps", user=make_user("hd", "Helpdesk"), params={}))
    first = job.log_lines.count()
    JobLogLine.objects.bulk_create(JobLogLine(job=job, seq=first + n, time=timezone.now(), level="info",
                                              message=f"bulk line {n}") for n in range(1, 1201))
    total = first + 1200
    login(page, "hd")
    page.goto(f"/jobs/{job.pk}/")
    lines = page.locator("#log .line")
    assert lines.count() == LOG_PAGE and lines.last.get_attribute("data-seq") == str(total)
    log = page.locator("#log")
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") < 24, "opens at the newest line"

    log.evaluate("el => { el.scrollTop = 0; }")
    oldest_shown = lines.first.get_attribute("data-seq")
    page.get_by_role("button", name="Show earlier lines").click()
    # Functions, not expression strings: the Content-Security-Policy refuses the eval an expression needs.
    page.wait_for_function(f"() => document.querySelectorAll('#log .line').length === {2 * LOG_PAGE}")
    # The line the reader was at is still in view: the new lines went above it.
    anchor = page.locator(f'#log .line[data-seq="{oldest_shown}"]')
    assert anchor.evaluate("(el) => { const box = el.parentElement.getBoundingClientRect();"
                           " const top = el.getBoundingClientRect().top;"
                           " return top >= box.top - 2 && top < box.bottom; }")
    page.get_by_role("button", name="Show earlier lines").click()
    page.wait_for_function(f"() => document.querySelectorAll('#log .line').length === {total}")
    seqs = [int(s) for s in lines.evaluate_all("els => els.map(e => e.dataset.seq)")]
    assert seqs == list(range(1, total + 1)), "every line once, in order"
    assert page.get_by_role("button", name="Show earlier lines").count() == 0


def test_a_running_check_is_cancelled_from_its_page(page, rq_workers, make_user):
    """A person ticks 'Yes, stop this job', and the log polls at least once (re-rendering the job's header)
    before they press Cancel job: the job still stops."""
    from portal.audit.models import AuditEvent
    from portal.jobs.choices import JobStatus
    from portal.jobs.models import Job

    rq_workers(1, CONNECTIVITY_CHECK_STEP_DELAY=3)
    make_user("helpdesk", "Helpdesk")
    login(page, "helpdesk")
    page.get_by_role("button", name="Run connectivity check").click()
    page.wait_for_url("**/jobs/*/")
    page.wait_for_selector("#job-status .badge:has-text('Running')", timeout=30_000)
    page.get_by_label("Yes, stop this job").check()
    with page.expect_response(lambda response: "/log/?after=" in response.url, timeout=10_000):
        pass
    page.get_by_role("button", name="Cancel job").click()
    page.wait_for_selector("#log-poller[data-state=stopped]", state="attached", timeout=60_000)
    assert page.locator("#job-status .badge").inner_text() == "Cancelled"
    job = Job.objects.get(kind="connectivity_check")
    assert job.status == JobStatus.CANCELLED
    assert AuditEvent.objects.filter(action="job.cancel", target=f"job:{job.pk}", actor__username="helpdesk").exists()
    screenshot(page, "e2e-job-cancelled")
