"""The job pages: list filters, detail, live-log poll, downloads, cancel, bad input."""

import json

import pytest

from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.runner import append_line
from portal.jobs.services import do_start_job, run_job_inline

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def helpdesk_client(client, role_users):
    client.force_login(role_users["Helpdesk"])
    client.user = role_users["Helpdesk"]
    return client


def test_start_connectivity_check_from_the_browser_queues_it(helpdesk_client, no_enqueue):
    response = helpdesk_client.post("/jobs/connectivity-check/")
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert no_enqueue == [job.pk], "queued once the transaction committed"
    page = helpdesk_client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Queued" in page and "Waiting for a worker" in page and 'hx-trigger="load delay:' in page


def test_poll_returns_only_new_lines_and_stops_when_the_job_ends(helpdesk_client, no_enqueue):
    job = do_start_job(kind="test_steps", user=helpdesk_client.user, params={})
    for n in range(3):
        append_line(job.pk, level="info", message=f"early {n}")
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    body = helpdesk_client.get(f"/jobs/{job.pk}/log/", {"after": 2}, HTTP_HX_REQUEST="true").content.decode()
    assert "early 2" in body and "early 1" not in body
    assert f"/jobs/{job.pk}/log/?after=3" in body, "the next poll resumes after the last line seen"
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, summary="All done.")
    body = helpdesk_client.get(f"/jobs/{job.pk}/log/", {"after": 3}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-state="stopped"' in body and "hx-trigger" not in body
    assert "All done." in body and "Succeeded" in body


def test_reload_renders_every_line_then_polls_after_the_last(helpdesk_client, no_enqueue):
    job = do_start_job(kind="test_steps", user=helpdesk_client.user, params={})
    for n in range(5):
        append_line(job.pk, level="warning" if n == 2 else "info", message=f"line {n} <script>x</script>")
    page = helpdesk_client.get(f"/jobs/{job.pk}/").content.decode()
    assert page.count('class="line lvl-') == 5
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert f"/jobs/{job.pk}/log/?after=5" in page


def test_bad_after_value_is_treated_as_start(helpdesk_client, no_enqueue):
    job = do_start_job(kind="test_steps", user=helpdesk_client.user, params={})
    append_line(job.pk, level="info", message="first")
    body = helpdesk_client.get(f"/jobs/{job.pk}/log/", {"after": "'; drop"}).content.decode()
    assert "first" in body


def test_unknown_job_is_a_404_page(helpdesk_client):
    response = helpdesk_client.get("/jobs/999999/")
    assert response.status_code == 404
    assert "There is nothing at this address" in response.content.decode()


def test_downloads_as_text_and_json(helpdesk_client, no_enqueue):
    job = run_job_inline(do_start_job(kind="test_steps", user=helpdesk_client.user, params={}))
    text = b"".join(helpdesk_client.get(f"/jobs/{job.pk}/log.txt").streaming_content).decode()
    assert "INFO    doing one" in text and text.count("\n") == job.log_lines.count()
    data = json.loads(b"".join(helpdesk_client.get(f"/jobs/{job.pk}/log.json").streaming_content))
    assert [d["seq"] for d in data] == list(range(1, job.log_lines.count() + 1))
    assert {"time", "level", "message", "data"} <= set(data[0])


def test_cancel_finished_job_says_so_and_changes_nothing(helpdesk_client, no_enqueue):
    job = run_job_inline(do_start_job(kind="test_steps", user=helpdesk_client.user, params={}))
    lines = job.log_lines.count()
    response = helpdesk_client.post(f"/jobs/{job.pk}/cancel/", {"confirm": "on"}, follow=True)
    assert "has already ended (succeeded); there is nothing to cancel." in response.content.decode()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and not job.cancel_requested and job.log_lines.count() == lines


def test_job_list_filters_by_status_and_kind(helpdesk_client, no_enqueue):
    ok = run_job_inline(do_start_job(kind="test_steps", user=helpdesk_client.user, params={}))
    bad = run_job_inline(do_start_job(kind="test_steps", user=helpdesk_client.user, params={"fail_at": "one"}))
    page = helpdesk_client.get("/jobs/", {"status": "failed"}).content.decode()
    assert f'href="/jobs/{bad.pk}/"' in page and f'href="/jobs/{ok.pk}/"' not in page
    page = helpdesk_client.get("/jobs/", {"kind": "connectivity_check"}).content.decode()
    assert "No jobs match" in page


def test_worker_lost_page_shows_last_checkpoint_and_resume(client, role_users, no_enqueue):
    from datetime import timedelta

    from django.utils import timezone

    job = run_job_inline(do_start_job(kind="test_steps", user=role_users["Helpdesk"], params={"fail_at": "three"}))
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1))
    client.force_login(role_users["Administrator"])
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Worker lost" in page and "Its last completed step was <strong>two</strong>" in page
    assert "Resume from last checkpoint" in page
    client.post(f"/jobs/{job.pk}/resume/")
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and no_enqueue[-1] == job.pk


def test_long_log_opens_on_its_newest_page_and_pages_back(helpdesk_client, no_enqueue, django_assert_max_num_queries):
    from django.utils import timezone

    from portal.jobs.models import JobLogLine
    from portal.jobs.selectors import LOG_PAGE

    job = do_start_job(kind="test_steps", user=helpdesk_client.user, params={})
    now = timezone.now()
    JobLogLine.objects.bulk_create(JobLogLine(job=job, seq=n, time=now, level="info", message=f"line {n}")
                                   for n in range(1, 2001))
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)

    def seqs(html):
        return [int(part.split('"')[0]) for part in html.split('data-seq="')[1:]]

    page = helpdesk_client.get(f"/jobs/{job.pk}/").content.decode()
    assert seqs(page) == list(range(2001 - LOG_PAGE, 2001)), "only the newest page, oldest first"
    assert f"/jobs/{job.pk}/log/?after=2000" in page, "live polling carries on after the newest line"
    assert "Show earlier lines" in page and f"/jobs/{job.pk}/log/earlier/?before={2001 - LOG_PAGE}" in page

    before = 2001 - LOG_PAGE
    with django_assert_max_num_queries(8):
        body = helpdesk_client.get(f"/jobs/{job.pk}/log/earlier/", {"before": before},
                                   HTTP_HX_REQUEST="true").content.decode()
    assert seqs(body) == list(range(before - LOG_PAGE, before))
    assert 'id="log-earlier"' in body and 'hx-swap-oob="true"' in body, "the button moves up with the lines"
    assert f"?before={before - LOG_PAGE}" in body
    # The first page: its lines, and the button goes away.
    body = helpdesk_client.get(f"/jobs/{job.pk}/log/earlier/", {"before": LOG_PAGE + 1}).content.decode()
    assert seqs(body) == list(range(1, LOG_PAGE + 1)) and "Show earlier lines" not in body
    # New lines still arrive through the poll, after the last one shown.
    append_line(job.pk, level="info", message="fresh")
    body = helpdesk_client.get(f"/jobs/{job.pk}/log/", {"after": 2000}, HTTP_HX_REQUEST="true").content.decode()
    assert seqs(body) == [2001] and "fresh" in body


def test_earlier_lines_need_a_line_number(helpdesk_client, no_enqueue):
    job = do_start_job(kind="test_steps", user=helpdesk_client.user, params={})
    assert helpdesk_client.get(f"/jobs/{job.pk}/log/earlier/", {"before": "x"}).status_code == 400
    assert helpdesk_client.get(f"/jobs/{job.pk}/log/earlier/").status_code == 400


def test_short_log_has_no_earlier_button(helpdesk_client, no_enqueue):
    job = do_start_job(kind="test_steps", user=helpdesk_client.user, params={})
    append_line(job.pk, level="info", message="only line")
    page = helpdesk_client.get(f"/jobs/{job.pk}/").content.decode()
    assert "only line" in page and "Show earlier lines" not in page


def test_cancel_asks_for_a_confirmation_stating_the_impact(helpdesk_client, no_enqueue):
    from tests.support.forms import form_fields

    job = do_start_job(kind="test_steps", user=helpdesk_client.user, params={})
    page = helpdesk_client.get(f"/jobs/{job.pk}/").content.decode()
    assert "a migration not yet past its point of no return is rolled back" in page
    fields = form_fields(page, f"/jobs/{job.pk}/cancel/")
    body = helpdesk_client.post(f"/jobs/{job.pk}/cancel/", fields, follow=True).content.decode()
    assert "Yes, stop this job" in body and "to cancel it. Nothing was changed." in body
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and not job.cancel_requested
    helpdesk_client.post(f"/jobs/{job.pk}/cancel/", {**fields, "confirm": "on"})
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def _card(page: str, card_id: str) -> str:
    start = page.index(f'id="{card_id}"')
    return page[start:page.index("</section>", start)]


def test_home_is_a_dashboard_per_role(client, role_users, no_enqueue):
    helpdesk, admin = role_users["Helpdesk"], role_users["Administrator"]
    mine = do_start_job(kind="test_steps", user=helpdesk, params={})
    theirs = run_job_inline(do_start_job(kind="test_steps", user=admin, params={"fail_at": "one"}))
    client.force_login(helpdesk)
    page = client.get("/").content.decode()
    running = _card(page, "dash-running")
    assert f"#{mine.pk}" in running and "(yours)" in running
    assert f"#{theirs.pk}" not in page and 'id="dash-approvals"' not in page
    assert 'id="dash-failures"' not in page, "an empty card is left out"
    assert 'DL inventory</dt><dd>never taken: <a href="/dl/">run it</a>' in page
    client.force_login(admin)
    page = client.get("/").content.decode()
    failures = _card(page, "dash-failures")
    assert f"#{theirs.pk}" in failures and "(yours)" not in failures
    assert 'id="dash-approvals"' in page and "MFA snapshot</dt><dd>never taken" in page
    client.force_login(role_users["Approver"])
    page = client.get("/").content.decode()
    assert "Nothing waits for your sign-off." in page


def test_home_cards_with_nothing_to_show_give_a_next_step_or_are_left_out(client, role_users, no_enqueue):
    client.force_login(role_users["Helpdesk"])
    page = client.get("/").content.decode()
    assert 'id="dash-running"' not in page and 'id="dash-failures"' not in page
    quiet = _card(page, "dash-quiet")
    assert "Nothing runs, and nothing failed in the last 7 days." in quiet
    assert 'Start with <a href="/dl/">the DL inventory</a>' in quiet
    # An inventory taken (the home page reads only that it succeeded, and when).
    from django.utils import timezone

    Job.objects.create(kind="dl_inventory", name="DL inventory", user=role_users["Administrator"],
                       status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    page = client.get("/").content.decode()
    assert '<a href="/dl/preflight/">Preflight a list</a> before you migrate it' in _card(page, "dash-quiet")

    # An Approver starts no job: no jobs card at all; what they cannot start is said, not linked.
    client.force_login(role_users["Approver"])
    page = client.get("/").content.decode()
    assert 'id="dash-quiet"' not in page and 'id="dash-running"' not in page
    client.force_login(role_users["Auditor"])
    page = client.get("/").content.decode()
    assert 'Earlier jobs are in <a href="/jobs/">the job list</a>' in _card(page, "dash-quiet")
    assert "MFA snapshot</dt><dd>never taken (an Administrator takes it)" in page
    # Each area tile says what the area is for.
    assert "Switch group writeback to cloud display names" in page


def test_a_finished_jobs_last_poll_clears_the_flash_that_announced_it(helpdesk_client, no_enqueue):
    job = run_job_inline(do_start_job(kind="test_steps", user=helpdesk_client.user, params={}))
    poll = helpdesk_client.get(f"/jobs/{job.pk}/log/", {"after": 0}).content.decode()
    assert '<ul class="messages" id="messages" role="status" hx-swap-oob="true"></ul>' in poll
    running = do_start_job(kind="test_steps", user=helpdesk_client.user, params={})
    poll = helpdesk_client.get(f"/jobs/{running.pk}/log/", {"after": 0}).content.decode()
    assert 'id="messages"' not in poll


def test_the_live_log_poll_skips_what_it_does_not_show(helpdesk_client, no_enqueue, monkeypatch):
    """Every reader of a running job polls every second: the poll (a fragment) does not work out the navigation
    (roles, approval and notification counts), the last checkpoint (shown only for a lost worker) or the job twice;
    the page around it still shows the navigation."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.accounts import context_processors

    job = do_start_job(kind="test_steps", user=helpdesk_client.user, params={})
    append_line(job.pk, level="info", message="first")
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    computed = []
    original = context_processors._navigation
    monkeypatch.setattr(context_processors, "_navigation", lambda request: computed.append(1) or original(request))
    with CaptureQueriesContext(connection) as queries:
        body = helpdesk_client.get(f"/jobs/{job.pk}/log/", {"after": 0}, HTTP_HX_REQUEST="true").content.decode()
    assert "first" in body and f"/jobs/{job.pk}/log/?after=1" in body
    tables = [q["sql"].split(" FROM ", 1)[1].split()[0] for q in queries.captured_queries if " FROM " in q["sql"]]
    assert computed == [] and tables.count('"jobs_job"') == 1, tables  # the job (its heartbeat is not stale)
    assert not {'"jobs_jobcheckpoint"', '"auth_group"', '"migrations_app_notification"'} & set(tables), tables
    page = helpdesk_client.get(f"/jobs/{job.pk}/").content.decode()
    assert computed == [1] and 'id="nav-notifications"' in page


def test_a_poll_of_a_job_with_a_fresh_heartbeat_does_not_look_for_lost_jobs(helpdesk_client, no_enqueue,
                                                                            django_assert_max_num_queries):
    """Every reader polls every second: only a job whose heartbeat stopped can be found lost there; a job whose
    heartbeat stopped is still shown lost by its poll."""
    from datetime import timedelta

    from django.utils import timezone

    job = do_start_job(kind="test_steps", user=helpdesk_client.user, params={})
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now())
    helpdesk_client.get(f"/jobs/{job.pk}/log/?after=0")
    # session, user, permissions (one statement with the roles), the job, its lines after `after`, who started it
    with django_assert_max_num_queries(6):
        assert 'data-state="polling"' in helpdesk_client.get(f"/jobs/{job.pk}/log/?after=0").content.decode()
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1), worker="gone-host:1")
    body = helpdesk_client.get(f"/jobs/{job.pk}/log/?after=0").content.decode()
    job.refresh_from_db()
    assert job.status == JobStatus.WORKER_LOST and "Worker lost" in body
