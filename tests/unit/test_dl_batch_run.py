"""Running a batch: the scheduler's decisions (a parent waits for its children, a failed child blocks its
parents, the window's end, pause and cancel between lists) and the turn that applies them, starting one
ordinary migration job per list, never twice; the page's Schedule button and the CSV report."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import openpyxl
import pytest
from django.db import connection
from django.utils import timezone

from migrations_app import batch_run, jobs
from migrations_app import batch_services as bsvc
from migrations_app.batch_run import decide
from migrations_app.choices import BatchListRun, BatchStatus, MigrationStatus
from migrations_app.models import Migration
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.runner import execute_job
from portal.jobs.services import run_job_inline
from tests.conftest import wait_for
from tests.support.forms import form_fields
from tests.unit.test_dl_batches import make_dl, preflighted

pytestmark = pytest.mark.django_db
NOW = timezone.now()
P, R, M, W, F = (BatchListRun.PENDING, BatchListRun.RUNNING, BatchListRun.MIGRATED, BatchListRun.WARNINGS,
                 BatchListRun.FAILED)
TREE = {"top": {"mid"}, "mid": {"leaf"}, "leaf": set(), "other": set()}


def run(states, *, window_end=None, paused=False, cancelled=False, children=TREE):
    return decide(states=states, children=children, now=NOW, window_end=window_end, paused=paused,
                  cancelled=cancelled)


def test_a_parent_waits_for_its_children_and_starts_once_they_are_done():
    first = run({"top": P, "mid": P, "leaf": P, "other": P})
    assert first.start == ["leaf", "other"] and not first.finished
    assert run({"top": P, "mid": P, "leaf": R, "other": M}).start == []
    assert run({"top": P, "mid": P, "leaf": W, "other": M}).start == ["mid"]
    done = run({"top": M, "mid": M, "leaf": W, "other": M})
    assert done.finished and done.final == BatchStatus.COMPLETED_WITH_WARNINGS
    assert run({k: M for k in TREE}).final == BatchStatus.COMPLETED


def test_a_failed_child_blocks_its_parents_with_the_reason_and_the_rest_goes_on():
    decision = run({"top": P, "mid": P, "leaf": F, "other": P})
    assert decision.start == ["other"]
    assert decision.settle["mid"] == (BatchListRun.BLOCKED, "Not started: its child list leaf failed.")
    assert decision.settle["top"][0] == BatchListRun.BLOCKED and "mid did not migrate" in decision.settle["top"][1]
    assert not decision.finished
    end = run({"top": BatchListRun.BLOCKED, "mid": BatchListRun.BLOCKED, "leaf": F, "other": M})
    assert end.finished and end.final == BatchStatus.COMPLETED_WITH_ERRORS


def test_no_new_list_starts_after_the_window_end_while_running_ones_finish():
    decision = run({"top": P, "mid": P, "leaf": R, "other": P}, window_end=NOW - timedelta(seconds=1))
    assert decision.start == [] and not decision.finished, "leaf still runs"
    assert {k for k, (s, _) in decision.settle.items()} == {"top", "mid", "other"}
    assert all(s == BatchListRun.NOT_STARTED and "window ended" in why for s, why in decision.settle.values())
    later = run({"top": BatchListRun.NOT_STARTED, "mid": BatchListRun.NOT_STARTED, "leaf": M,
                 "other": BatchListRun.NOT_STARTED})
    assert later.finished and later.final == BatchStatus.COMPLETED_WITH_ERRORS
    assert run({"leaf": P}, window_end=NOW + timedelta(minutes=1), children={"leaf": set()}).start == ["leaf"]


def test_pause_starts_nothing_and_cancel_starts_nothing_more():
    paused = run({"top": P, "mid": P, "leaf": M, "other": P}, paused=True)
    assert paused.start == [] and not paused.settle and not paused.finished
    cancelled = run({"top": P, "mid": P, "leaf": R, "other": P}, cancelled=True)
    assert cancelled.start == [] and not cancelled.finished
    assert all(s == BatchListRun.NOT_STARTED for s, _ in cancelled.settle.values())
    over = run({"top": BatchListRun.NOT_STARTED, "mid": BatchListRun.NOT_STARTED, "leaf": M, "other": M},
               cancelled=True)
    assert over.finished and over.final == BatchStatus.CANCELLED


# -- the turn that applies them --------------------------------------------------------------------
@pytest.fixture
def nested(role_users):
    """An approved batch of a parent and its nested child."""
    hd = role_users["Helpdesk"]
    child, parent = make_dl("child@contoso.com"), make_dl("parent@contoso.com")
    parent.child_lists = [child.dn]
    parent.save()
    batch = bsvc.do_create_batch(name="nested", options={"keep_original": True}, user=hd)
    bsvc.do_add_to_batch(batch=batch, values=[(0, child.mail), (0, parent.mail)], user=hd)
    preflighted(batch, hd)
    bsvc.do_submit_batch(batch=batch, user=hd)
    return bsvc.do_approve_batch(batch=batch, user=role_users["Approver"], signed_hash=batch.plan_hash)


def finish(batch, mail, status=MigrationStatus.MIGRATED):
    item = batch.lists.get(mail=mail)
    Migration.objects.filter(pk=item.migration_id).update(status=status)


def test_a_run_starts_the_child_then_its_parent_each_once_as_a_signed_migration(nested, role_users):
    batch = batch_run.do_schedule_batch(batch=nested, user=role_users["Helpdesk"], enqueue=False)
    assert batch.status == BatchStatus.RUNNING and batch.job.kind == batch_run.KIND_BATCH_RUN
    first = batch_run.do_advance_batch(batch=batch, enqueue=False)
    assert first.start == ["child@contoso.com"]
    child = batch.lists.get(mail="child@contoso.com").migration
    assert child.approved_by == role_users["Approver"] and child.requested_by == role_users["Helpdesk"]
    assert child.plan_hash == batch.lists.get(mail="child@contoso.com").plan_hash
    assert child.job.kind == "dl_migrate" and child.status == MigrationStatus.QUEUED
    assert batch_run.do_advance_batch(batch=batch, enqueue=False).start == [], "nothing runs twice"
    assert Job.objects.filter(kind="dl_migrate").count() == 1
    finish(batch, "child@contoso.com")
    assert batch_run.do_advance_batch(batch=batch, enqueue=False).start == ["parent@contoso.com"]
    finish(batch, "parent@contoso.com", MigrationStatus.MIGRATED_WITH_WARNINGS)
    end = batch_run.do_advance_batch(batch=batch, enqueue=False)
    batch.refresh_from_db()
    assert end.finished and batch.status == BatchStatus.COMPLETED_WITH_WARNINGS and batch.finished_at
    assert dict(batch.lists.values_list("mail", "run_state")) == {"child@contoso.com": BatchListRun.MIGRATED,
                                                                  "parent@contoso.com": BatchListRun.WARNINGS}


def test_a_rolled_back_child_blocks_its_parent_and_the_batch_ends_with_errors(nested, role_users):
    batch = batch_run.do_schedule_batch(batch=nested, user=role_users["Helpdesk"], enqueue=False)
    batch_run.do_advance_batch(batch=batch, enqueue=False)
    finish(batch, "child@contoso.com", MigrationStatus.ROLLED_BACK)
    batch_run.do_advance_batch(batch=batch, enqueue=False)
    batch.refresh_from_db()
    parent = batch.lists.get(mail="parent@contoso.com")
    assert parent.run_state == BatchListRun.BLOCKED and "child@contoso.com failed" in parent.run_note
    assert parent.migration is None and batch.status == BatchStatus.COMPLETED_WITH_ERRORS


def test_pause_then_cancel_between_lists(nested, role_users):
    hd = role_users["Helpdesk"]
    batch = batch_run.do_schedule_batch(batch=nested, user=hd, enqueue=False)
    batch_run.do_pause_batch(batch=batch, user=hd, paused=True)
    assert batch_run.do_advance_batch(batch=batch, enqueue=False).start == []
    batch_run.do_pause_batch(batch=batch, user=hd, paused=False)
    assert batch_run.do_advance_batch(batch=batch, enqueue=False).start == ["child@contoso.com"]
    bsvc.do_cancel_batch(batch=batch, user=hd)
    turn = batch_run.do_advance_batch(batch=batch, enqueue=False)
    assert not turn.finished, "the running child finishes first"
    assert batch.lists.get(mail="parent@contoso.com").run_state == BatchListRun.NOT_STARTED
    finish(batch, "child@contoso.com")
    assert batch_run.do_advance_batch(batch=batch, enqueue=False).finished
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED


def test_a_batch_scheduled_for_its_window_is_started_by_the_sweep(nested, role_users):
    from migrations_app.models import MigrationBatch

    start = timezone.now() + timedelta(hours=1)
    MigrationBatch.objects.filter(pk=nested.pk).update(window_start=start)
    nested.refresh_from_db()
    nested.plan_hash = bsvc.batch_plan_hash(nested)  # the window is part of what was signed
    MigrationBatch.objects.filter(pk=nested.pk).update(plan_hash=nested.plan_hash)
    batch = batch_run.do_schedule_batch(batch=nested, user=role_users["Helpdesk"], now_=False, enqueue=False)
    assert batch.status == BatchStatus.SCHEDULED and batch.job is None
    assert batch_run.do_start_due_batches(now=timezone.now()) == []
    assert batch_run.do_start_due_batches(now=start) == [batch.pk]
    batch.refresh_from_db()
    assert batch.status == BatchStatus.RUNNING and batch.job is not None
    assert batch_run.do_start_due_batches(now=start) == [], "started once"


def test_the_page_schedules_now_and_reports_each_list_as_csv(client, nested, role_users, monkeypatch):
    monkeypatch.setattr("portal.jobs.services._enqueue_on_commit", lambda pk, queue: None)
    client.force_login(role_users["Helpdesk"])
    page = client.get(f"/dl/batches/{nested.pk}/").content.decode()
    fields = form_fields(page, f"/dl/batches/{nested.pk}/schedule/")
    assert fields["when"] == "now"
    client.post(f"/dl/batches/{nested.pk}/schedule/", fields)
    nested.refresh_from_db()
    assert nested.status == BatchStatus.RUNNING
    page = client.get(f"/dl/batches/{nested.pk}/").content.decode()
    assert 'id="batch-live" hx-get=' in page and 'id="batch-pause-button"' in page
    batch_run.do_advance_batch(batch=nested, enqueue=False)
    nested.lists.filter(mail="child@contoso.com").update(run_note="=HYPERLINK(\"x\")")
    csv = client.get(f"/dl/batches/{nested.pk}/report.csv")
    assert csv["Content-Type"].startswith("text/csv")
    lines = csv.content.decode().splitlines()
    assert lines[0] == "list,wave,result,note,duration_seconds,members,addresses,warnings,errors,migration,job,job_url"
    assert lines[1].startswith("child@contoso.com,") and ',Running,"\'=HYPERLINK' in lines[1]
    assert lines[2].startswith("parent@contoso.com,") and ",Waiting,," in lines[2]
    # The same rows as a workbook, and on a printable page for the change record.
    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/dl/batches/{nested.pk}/report.xlsx").content))
    rows = list(book["Lists"].iter_rows(values_only=True))
    assert rows[0][:9] == ("list", "wave", "result", "note", "duration_seconds", "members", "addresses", "warnings",
                           "errors")
    assert rows[1][0] == "child@contoso.com" and rows[1][2] == "Running" and rows[1][3] == "'=HYPERLINK(\"x\")"
    assert rows[2][0] == "parent@contoso.com" and rows[2][5] == 4, "its preflight's member count until it runs"
    facts = dict(book["Summary"].iter_rows(values_only=True))
    assert facts["Approved by"] == "approver" and facts["Signed plan hash"] == nested.plan_hash
    assert facts["Lists running"] == 1 and facts["Lists waiting"] == 1
    printable = client.get(f"/dl/batches/{nested.pk}/summary/").content.decode()
    assert "@media print" not in printable and 'class="print-page"' in printable
    assert nested.plan_hash in printable and printable.count("@contoso.com</td>") == 2


@pytest.mark.django_db(transaction=True)  # the run job runs in a thread of its own, as on a worker
def test_the_run_job_waits_while_paused_and_a_cancel_starts_no_further_list(nested, role_users, settings,
                                                                            monkeypatch):
    settings.DL_BATCH_POLL_SECONDS = 0.05
    settings.DL_BATCH_TAKE_OVER_SECONDS = 3600  # here the test is the other worker
    monkeypatch.setattr("portal.jobs.services._enqueue", lambda pk, queue: None)

    def migrate(self):  # a migration job's outcome without a directory
        Migration.objects.filter(pk=self.job.params["migration_id"]).update(status=MigrationStatus.MIGRATED)
        return {}

    monkeypatch.setattr(jobs.MigrateDistributionListJob, "run", migrate)
    hd = role_users["Helpdesk"]
    batch = batch_run.do_schedule_batch(batch=nested, user=hd)
    outcome = {}

    def worker():
        try:
            outcome["status"] = execute_job(batch.job_id)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    child = wait_for(lambda: batch.lists.get(mail="child@contoso.com").migration, timeout=20,
                     message="the run job to start the child")
    batch_run.do_pause_batch(batch=batch, user=hd, paused=True)
    run_job_inline(child.job)  # another worker migrates the child meanwhile
    wait_for(lambda: batch.lists.get(mail="child@contoso.com").run_state == BatchListRun.MIGRATED, timeout=20,
             message="the run job to see the child migrated")
    parent = batch.lists.get(mail="parent@contoso.com")
    assert parent.run_state == BatchListRun.PENDING and parent.migration is None, "paused: nothing starts"
    bsvc.do_cancel_batch(batch=batch, user=hd)
    thread.join(timeout=20)
    assert not thread.is_alive()
    batch.refresh_from_db()
    parent = batch.lists.get(mail="parent@contoso.com")
    assert batch.status == BatchStatus.CANCELLED and outcome["status"] == JobStatus.WARNINGS
    assert parent.run_state == BatchListRun.NOT_STARTED and "cancelled" in parent.run_note and not parent.migration
    assert Migration.objects.count() == 1


def test_the_window_end_is_honoured_by_the_run_the_running_list_finishing(nested, role_users):
    from migrations_app.models import MigrationBatch

    end = timezone.now() + timedelta(hours=1)
    batch = batch_run.do_schedule_batch(batch=nested, user=role_users["Helpdesk"], enqueue=False)
    MigrationBatch.objects.filter(pk=batch.pk).update(window_end=end)
    first = batch_run.do_advance_batch(batch=batch, enqueue=False, now=end - timedelta(minutes=1))
    assert first.start == ["child@contoso.com"]
    # The window ends while the child runs: it goes on; its parent, whose turn comes after, does not start.
    assert not batch_run.do_advance_batch(batch=batch, enqueue=False, now=end).finished, "the child still runs"
    finish(batch, "child@contoso.com")
    last = batch_run.do_advance_batch(batch=batch, enqueue=False, now=end + timedelta(minutes=5))
    batch.refresh_from_db()
    parent = batch.lists.get(mail="parent@contoso.com")
    assert last.finished and last.start == [] and batch.status == BatchStatus.COMPLETED_WITH_ERRORS
    assert parent.run_state == BatchListRun.NOT_STARTED and parent.migration is None
    assert "the window ended at" in parent.run_note
    assert batch.lists.get(mail="child@contoso.com").run_state == BatchListRun.MIGRATED
    assert Migration.objects.count() == 1


def test_a_run_job_cancelled_before_a_worker_took_it_cancels_the_batch_instead_of_leaving_it_running(nested,
                                                                                                    role_users):
    from portal.jobs.services import do_cancel_job

    batch = batch_run.do_schedule_batch(batch=nested, user=role_users["Helpdesk"], enqueue=False)
    job = do_cancel_job(job=batch.job, user=role_users["Helpdesk"])
    batch.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and batch.status == BatchStatus.CANCELLED
    from portal.audit.models import AuditEvent

    event = AuditEvent.objects.get(action="dl.batch.cancelled", target=f"dl-batch:{batch.pk}")
    assert event.after["note"] == f"its run job #{job.pk} was cancelled before it started" and batch.finished_at
    assert set(batch.lists.values_list("run_state", flat=True)) == {BatchListRun.NOT_STARTED}
    assert not Migration.objects.exists()


@pytest.mark.django_db(transaction=True)  # the job runs inline, as on a worker (its own connection handling)
def test_a_run_job_lost_before_its_first_turn_and_cancelled_while_queued_again_cancels_the_batch(nested, role_users):
    from portal.jobs.services import do_cancel_job

    batch = batch_run.do_schedule_batch(batch=nested, user=role_users["Helpdesk"], enqueue=False)
    Job.objects.filter(pk=batch.job_id).update(attempts=1)  # its worker died before its first line
    job = do_cancel_job(job=Job.objects.get(pk=batch.job_id), user=role_users["Helpdesk"])
    assert job.status == JobStatus.QUEUED and "its next run cancels the batch" in job.log_lines.last().message
    job = run_job_inline(job)
    batch.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and batch.status == BatchStatus.CANCELLED
    assert set(batch.lists.values_list("run_state", flat=True)) == {BatchListRun.NOT_STARTED}
