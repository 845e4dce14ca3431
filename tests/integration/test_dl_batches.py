"""A batch preflight in the rehearsal lab: a parent and its nested child, both fresh lists. The parent
alone is blocked by its child still on-premises; with the child in the batch it waits for it instead,
and the batch can be submitted on the per-list plan hashes the preflight pinned."""

from __future__ import annotations

import contextlib
import json
import os
import signal

import pytest
from django.utils import timezone

from migrations_app import batch_run
from migrations_app import batch_services as bsvc
from migrations_app.choices import BackupKind, BatchListOutcome, BatchListRun, BatchStatus, MigrationStatus
from migrations_app.models import DistributionList, Migration, MigrationBatch
from portal.audit.models import AuditEvent
from portal.connectors import exchange as exo
from portal.connectors.registry import active_directory, entra_connect, exchange_online
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.services import run_job_inline
from tests.conftest import wait_for
from tests.integration.dl_lab import fresh_list, sync_now

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def inventory_row(mail: str, dn: str, **extra) -> DistributionList:
    with active_directory() as directory:
        guid = directory.read(dn, attributes=["cn"]).guid
    return DistributionList.objects.create(guid=guid, dn=dn, name=mail.split("@")[0], mail=mail, ou=dn.split(",", 1)[1],
                                           inventoried_at=timezone.now(), **extra)


def test_a_batch_preflight_orders_a_parent_after_its_child_in_the_lab(lab_tenant, lab, make_user):
    tech = make_user("tech", "Helpdesk")
    child_mail, child_dn = fresh_list(lab, prefix="batchchild", members=3)
    parent_mail, parent_dn = fresh_list(lab, prefix="batchparent", members=3)
    with active_directory() as directory:
        directory.add_values(parent_dn, "member", [child_dn])
    sync_now()
    inventory_row(parent_mail, parent_dn, child_lists=[child_dn])
    inventory_row(child_mail, child_dn, parent_lists=[parent_dn])

    batch = bsvc.do_create_batch(name="lab batch", options={"keep_original": True}, user=tech)
    bsvc.do_add_to_batch(batch=batch, values=[(0, parent_mail)], user=tech)
    job = run_job_inline(bsvc.do_start_batch_preflight(batch=batch, user=tech, enqueue=False))
    assert job.status == JobStatus.WARNINGS and "1 blocked" in job.summary, job.summary  # findings, not a failure
    parent = batch.lists.get(mail=parent_mail)
    assert parent.outcome == BatchListOutcome.BLOCKED and not parent.plan_hash
    assert job.result["blocked_by"] == {"Child lists migrated first": 1}

    bsvc.do_add_to_batch(batch=batch, values=[(0, child_mail)], user=tech)
    job = run_job_inline(bsvc.do_start_batch_preflight(batch=batch, user=tech, enqueue=False))
    batch.refresh_from_db()
    outcomes = {i.mail: (i.outcome, i.plan_hash) for i in batch.lists.all()}
    assert job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS), json.dumps(job.result)[:2000]
    assert outcomes[parent_mail][0] == BatchListOutcome.WARNINGS, "it waits for its child in the batch"
    assert outcomes[child_mail][0] in (BatchListOutcome.READY, BatchListOutcome.WARNINGS)
    assert all(len(h) == 64 for _, h in outcomes.values())
    assert batch.preflight_summary["members"] == 7 and batch.preflight_summary["blocked"] == 0
    # What is the same for every list (accepted domains, connectors, the non-sync OU) was read once.
    assert batch.preflight_summary["shared_reads"] < 2 * 5
    assert bsvc.do_submit_batch(batch=batch, user=tech).status == BatchStatus.SUBMITTED


def test_a_batch_runs_a_child_then_its_parent_on_one_real_worker(lab_tenant, lab, make_user, rq_workers):
    """Scheduled now: the batch's run job starts the child's migration job; the parent, whose plan the
    child's migration leaves as signed, starts once the child is migrated; the batch ends Completed.
    One worker: the run job holds it, so it runs the lists no other worker takes itself."""
    tech, approver = make_user("tech", "Helpdesk"), make_user("approver", "Approver")
    child_mail, child_dn = fresh_list(lab, prefix="runchild", members=2)
    parent_mail, parent_dn = fresh_list(lab, prefix="runparent", members=2)
    with active_directory() as directory:
        directory.add_values(parent_dn, "member", [child_dn])
    sync_now()
    inventory_row(parent_mail, parent_dn, child_lists=[child_dn])
    inventory_row(child_mail, child_dn, parent_lists=[parent_dn])
    batch = bsvc.do_create_batch(name="run on workers", options={"keep_original": True}, user=tech)
    bsvc.do_add_to_batch(batch=batch, values=[(0, parent_mail), (0, child_mail)], user=tech)
    run_job_inline(bsvc.do_start_batch_preflight(batch=batch, user=tech, enqueue=False))
    batch.refresh_from_db()
    bsvc.do_submit_batch(batch=batch, user=tech)
    bsvc.do_approve_batch(batch=batch, user=approver, signed_hash=batch.plan_hash)

    rq_workers(1, DL_BATCH_POLL_SECONDS=1, DL_BATCH_TAKE_OVER_SECONDS=1)
    batch = batch_run.do_schedule_batch(batch=batch, user=tech)
    assert batch.status == BatchStatus.RUNNING
    wait_for(lambda: MigrationBatch.objects.get(pk=batch.pk).status not in (BatchStatus.RUNNING,),
             timeout=900, interval=2, message="the batch to end")
    batch.refresh_from_db()
    items = {i.mail: i for i in batch.lists.select_related("migration__job")}
    assert batch.status == BatchStatus.COMPLETED, [(i.mail, i.run_state, i.run_note) for i in items.values()]
    child, parent = items[child_mail].migration, items[parent_mail].migration
    assert {child.status, parent.status} == {MigrationStatus.MIGRATED}
    assert all(i.run_state == BatchListRun.MIGRATED for i in items.values())
    assert child.job.finished_at <= parent.job.started_at, "the parent started once its child was migrated"
    assert parent.plan_hash == items[parent_mail].plan_hash and parent.approved_by == approver
    # The run job ends the batch, then returns: its own status is written a moment after the batch's.
    wait_for(lambda: not Job.objects.get(pk=batch.job_id).is_active, timeout=60, message="the run job to end")
    batch.job.refresh_from_db()
    assert batch.job.status == JobStatus.SUCCEEDED
    assert "runs on this batch's worker" in " ".join(batch.job.log_lines.values_list("message", flat=True))
    assert JobStatus.SUCCEEDED == child.job.status == parent.job.status
    with exchange_online() as exchange:
        members = {(r.primary_smtp_address or "").lower()
                   for r in exchange.iter_distribution_group_members(parent.cloud_group_id)}
    assert child_mail.lower() in members


def test_a_wave_shares_one_delta_sync_on_two_real_workers(lab_tenant, lab, make_user, rq_workers):
    """Two lists and a third containing one of them: two waves. The sync server's run history shows three
    delta cycles for the batch (one per wave, one at the end publishing the last routing contact), where
    one per move and one per list's end made six; each list's job parked once, its worker free meanwhile."""
    tech, approver = make_user("tech", "Helpdesk"), make_user("approver", "Approver")
    (a_mail, a_dn), (b_mail, b_dn) = fresh_list(lab, prefix="wavea", members=2), fresh_list(lab, prefix="waveb",
                                                                                            members=2)
    top_mail, top_dn = fresh_list(lab, prefix="wavetop", members=2)
    with active_directory() as directory:
        directory.add_values(top_dn, "member", [a_dn])
    sync_now()
    inventory_row(top_mail, top_dn, child_lists=[a_dn])
    inventory_row(a_mail, a_dn, parent_lists=[top_dn])
    inventory_row(b_mail, b_dn)
    batch = bsvc.do_create_batch(name="one sync per wave", options={"keep_original": True}, user=tech)
    bsvc.do_add_to_batch(batch=batch, values=[(0, top_mail), (0, a_mail), (0, b_mail)], user=tech)
    run_job_inline(bsvc.do_start_batch_preflight(batch=batch, user=tech, enqueue=False))
    batch.refresh_from_db()
    bsvc.do_submit_batch(batch=batch, user=tech)
    bsvc.do_approve_batch(batch=batch, user=approver, signed_hash=batch.plan_hash)
    with entra_connect() as sync:
        assert sync.wait_until_idle(timeout=120, poll=0.5)
        before = max(r.run_history_id for r in sync.run_history(count=1))

    rq_workers(2, DL_BATCH_POLL_SECONDS=1, DL_BATCH_TAKE_OVER_SECONDS=30)
    batch = batch_run.do_schedule_batch(batch=batch, user=tech)
    wait_for(lambda: MigrationBatch.objects.get(pk=batch.pk).status != BatchStatus.RUNNING,
             timeout=900, interval=2, message="the batch to end")
    batch.refresh_from_db()
    items = {i.mail: i for i in batch.lists.select_related("migration__job")}
    assert batch.status == BatchStatus.COMPLETED, [(i.mail, i.run_state, i.run_note) for i in items.values()]
    with entra_connect() as sync:
        assert sync.wait_until_idle(timeout=120, poll=0.5)
        runs = [r for r in sync.run_history(count=50) if r.run_history_id > before]
    assert len(runs) == 3, [(r.run_history_id, r.start, r.result) for r in runs]
    assert all(r.run_profile_name == "Delta Synchronization" for r in runs)
    assert [len(r.waiting) for r in batch.sync_rounds.order_by("number")] == [2, 1, 0]
    assert {i.migration.job.attempts for i in items.values()} == {2}, "each list parked once, ran on once"
    assert items[a_mail].migration.job.finished_at <= items[top_mail].migration.job.started_at


def two_list_batch(lab, make_user, *, prefix: str, name: str):
    """Two fresh lists in a batch preflighted, submitted and approved: (requester, [(mail, dn)], batch)."""
    tech, approver = make_user("tech", "Helpdesk"), make_user("approver", "Approver")
    lists = [fresh_list(lab, prefix=f"{prefix}{n}", members=2) for n in range(2)]
    for mail, dn in lists:
        inventory_row(mail, dn)
    batch = bsvc.do_create_batch(name=name, options={"keep_original": True}, user=tech)
    bsvc.do_add_to_batch(batch=batch, values=[(0, mail) for mail, _ in lists], user=tech)
    run_job_inline(bsvc.do_start_batch_preflight(batch=batch, user=tech, enqueue=False))
    batch.refresh_from_db()
    bsvc.do_submit_batch(batch=batch, user=tech)
    return tech, lists, bsvc.do_approve_batch(batch=batch, user=approver, signed_hash=batch.plan_hash)


def test_a_worker_sigkilled_mid_batch_its_list_resumes_and_none_is_lost_or_run_twice(lab_tenant, lab, make_user,
                                                                                   rq_workers, settings):
    """Two lists on real workers that stop dead after a list's backup; the worker running that list is
    SIGKILLed (with its work horse). The batch's run job notices the lost worker, queues the list again,
    and a fresh worker resumes it after its backup: both lists migrated once, one migration each, one
    cloud list each, no temporary list left behind, the batch Completed."""
    tech, lists, batch = two_list_batch(lab, make_user, prefix="kill", name="killed worker")
    fast = {"DL_BATCH_POLL_SECONDS": 1, "DL_BATCH_TAKE_OVER_SECONDS": 3600, "JOB_WORKER_LOST_AFTER_SECONDS": 3}
    pausing = rq_workers(2, TEST_PAUSE_AFTER_CHECKPOINT="backup", **fast)
    batch = batch_run.do_schedule_batch(batch=batch, user=tech)

    def stopped_after_backup():
        return Job.objects.filter(kind="dl_migrate", checkpoints__name="backup").first()

    job = wait_for(stopped_after_backup, timeout=300, interval=0.5, message="a list to stop after its backup")
    horse = int(job.worker.rsplit(":", 1)[1])
    [victim] = [p for p in pausing if p.pid == os.getsid(horse)]  # RQ forks the horse in its own group
    os.killpg(victim.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(horse, signal.SIGKILL)
    victim.wait(timeout=10)
    # The other pausing worker holds the batch's run job, which writes no checkpoint: it never stops.
    rq_workers(1, **fast)  # the machine came back, without the stop
    wait_for(lambda: MigrationBatch.objects.get(pk=batch.pk).status != BatchStatus.RUNNING,
             timeout=900, interval=2, message="the batch to end")
    batch.refresh_from_db()
    items = list(batch.lists.select_related("migration__job"))
    assert batch.status == BatchStatus.COMPLETED, [(i.mail, i.run_state, i.run_note) for i in items]
    job.refresh_from_db()
    log = " ".join(job.log_lines.values_list("message", flat=True))
    assert "Worker lost" in log and "Queued again after its worker was lost" in log
    assert "Step 'backup' already done in an earlier run; skipping it." in log
    assert AuditEvent.objects.filter(action="job.resume", target=f"job:{job.pk}", actor__isnull=True).count() == 1
    for mail, _ in lists:
        assert Migration.objects.filter(mail=mail).count() == 1, "no list started twice"
        assert Migration.objects.get(mail=mail).status == MigrationStatus.MIGRATED
    with exchange_online() as exchange:
        for item in items:
            found = exchange.get_distribution_group(item.mail)
            assert not found.is_dir_synced and found.external_directory_object_id == item.migration.cloud_group_id
            tenant = item.migration.backups.get(kind=BackupKind.CLOUD_GROUP).data["tenant_domain"]
            with pytest.raises(exo.ObjectNotFound):
                exchange.get_distribution_group(f"migtemp-{item.migration.group_guid.hex[:12]}@{tenant}")


def test_the_batch_run_job_sigkilled_as_it_starts_a_waves_sync_is_queued_again_and_the_wave_goes_on(
        lab_tenant, lab, make_user, rq_workers, client):
    """The worker running the batch's own job is SIGKILLed as that job starts the wave's shared sync, both
    lists parked waiting for it. A fresh worker's sweep notices the lost run job and queues it again; its next
    run starts the sync the lost one had begun, releases the lists, and the batch completes: each list migrated
    once, the batch's page saying what happened."""
    tech, lists, batch = two_list_batch(lab, make_user, prefix="runkill", name="killed run job")
    fast = {"DL_BATCH_POLL_SECONDS": 1, "DL_BATCH_TAKE_OVER_SECONDS": 1, "JOB_WORKER_LOST_AFTER_SECONDS": 3}
    [pausing] = rq_workers(1, TEST_PAUSE_AT_SHARED_SYNC="1", **fast)
    batch = batch_run.do_schedule_batch(batch=batch, user=tech)
    wait_for(lambda: batch.sync_rounds.filter(status="starting").exists(), timeout=300, interval=0.5,
             message="the run job to begin the wave's sync")
    os.killpg(pausing.pid, signal.SIGKILL)
    pausing.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(Job.objects.get(pk=batch.job_id).worker.rsplit(":", 1)[1]), signal.SIGKILL)
    rq_workers(1, JOB_SWEEP_SECONDS=1, **fast)  # the machine came back, its sweep every second
    wait_for(lambda: MigrationBatch.objects.get(pk=batch.pk).status != BatchStatus.RUNNING,
             timeout=600, interval=2, message="the batch to end")
    batch.refresh_from_db()
    items = list(batch.lists.select_related("migration__job"))
    assert batch.status == BatchStatus.COMPLETED, [(i.mail, i.run_state, i.run_note) for i in items]
    run = batch.job
    log = " ".join(run.log_lines.values_list("message", flat=True))
    assert run.attempts == 2 and "Worker lost" in log and "Queued again after its worker was lost" in log
    assert "a lost run of the batch's job had begun to start it" in log
    for mail, _ in lists:
        assert Migration.objects.filter(mail=mail).count() == 1, "no list started twice"
    assert {i.migration.status for i in items} == {MigrationStatus.MIGRATED}
    assert {i.migration.job.attempts for i in items} == {2}, "each parked once, ran on once"
    client.force_login(tech)
    page = client.get(f"/dl/batches/{batch.pk}/").content.decode()
    assert "The run job lost its worker 1 time(s) and was queued again 1 time(s)" in page
