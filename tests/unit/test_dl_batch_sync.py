"""One delta sync per wave of a batch: the lists that moved their group out of the sync scope park (their
worker free) and one sync serves them all; the lists' final syncs ride on the next wave's sync or one
sync at the batch's end. Counted on a sync server stand-in that records each cycle it is asked for."""

from __future__ import annotations

import contextlib
import types
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from migrations_app import batch_run, batch_sync, engine, inplace
from migrations_app import batch_services as bsvc
from migrations_app.choices import BackupKind, BatchListRun, BatchStatus, MigrationMethod, MigrationStatus
from migrations_app.models import BatchSyncRound, Migration, MigrationBackup, MigrationBatch
from portal.audit.models import AuditEvent
from portal.connectors import exchange as exo
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.services import JobActionRefused, do_cancel_job, do_detect_lost_jobs, run_job_inline
from tests.unit.test_dl_batches import make_dl, preflighted

pytestmark = pytest.mark.django_db(transaction=True)  # jobs run inline close the connection between them


class CountingSync:
    def __init__(self) -> None:
        self.cycles = 0
        self.order: list[str] = []

    def start_sync_cycle(self, *, policy: str) -> None:
        assert policy == "Delta"
        self.cycles += 1
        self.order.append(f"sync {self.cycles}")

    def wait_until_idle(self, **kwargs) -> bool:  # a list's own final sync waits for its cycle
        return True


class MovesOnly(engine.MigrationProcess):
    """The recreate steps that involve the sync, the others done by nothing (no directory here)."""

    steps = ("move_to_non_sync", "sync_after_move", "disable_original", "final_sync")
    point_of_no_return = "disable_original"

    def step_move_to_non_sync(self) -> None:
        self.c.sync.order.append(f"move {self.m.mail}")

    def step_disable_original(self) -> None:
        pass


@pytest.fixture
def sync(monkeypatch):
    counting = CountingSync()

    @contextlib.contextmanager
    def connectors():
        yield engine.Connectors(directory=None, exchange=None, onprem=None, sync=counting, graph=None, layout=None)

    @contextlib.contextmanager
    def entra_connect():
        yield counting

    monkeypatch.setattr(engine, "open_connectors", connectors)
    monkeypatch.setattr("portal.connectors.registry.entra_connect", entra_connect)
    monkeypatch.setattr(inplace, "process_for", lambda migration: MovesOnly)
    return counting


def approved_batch(role_users, parents: dict[str, list[str]], *, mails: list[str]):
    hd = role_users["Helpdesk"]
    rows = {m: make_dl(m) for m in mails}
    for parent, kids in parents.items():
        rows[parent].child_lists = [rows[k].dn for k in kids]
        rows[parent].save()
    batch = bsvc.do_create_batch(name="waves", options={"keep_original": True}, user=hd)
    bsvc.do_add_to_batch(batch=batch, values=[(0, m) for m in mails], user=hd)
    preflighted(batch, hd)
    bsvc.do_submit_batch(batch=batch, user=hd)
    return bsvc.do_approve_batch(batch=batch, user=role_users["Approver"], signed_hash=batch.plan_hash)


def test_one_delta_sync_serves_each_wave_and_one_publishes_the_last(role_users, sync, no_enqueue, settings):
    """Four lists, one of them containing another: two waves. One list at a time (one worker, the
    command line's inline run): the first wave's three lists all move before its one sync; the second
    wave's sync also publishes the first wave's routing contacts; one more at the end. 3 syncs, not 8."""
    settings.DL_BATCH_POLL_SECONDS = 0
    mails = ["a@contoso.com", "b@contoso.com", "c@contoso.com", "top@contoso.com"]
    batch = approved_batch(role_users, {"top@contoso.com": ["a@contoso.com"]}, mails=mails)
    batch = batch_run.do_schedule_batch(batch=batch, user=role_users["Helpdesk"], enqueue=False, inline=True)
    job = run_job_inline(batch.job)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED, job.summary
    assert sync.cycles == 3, sync.order
    # Every move of a wave precedes the sync that serves it; the parent moves only after it.
    assert sync.order[:4] == ["move a@contoso.com", "move b@contoso.com", "move c@contoso.com", "sync 1"]
    assert sync.order[4:] == ["move top@contoso.com", "sync 2", "sync 3"]
    rounds = list(BatchSyncRound.objects.filter(batch=batch).order_by("number"))
    assert [(len(r.waiting), len(r.deferred), r.status) for r in rounds] == [
        (3, 0, "started"), (1, 3, "started"), (0, 1, "started")]
    items = list(batch.lists.select_related("migration__job"))
    assert all(i.run_state == BatchListRun.MIGRATED and i.migration.status == MigrationStatus.MIGRATED
               for i in items)
    # Each list parked once and ran again as a new attempt (the fencing's claim), never twice at once.
    assert {i.migration.job.attempts for i in items} == {2}
    log = " ".join(job.log_lines.values_list("message", flat=True))
    assert "Delta sync 1 started " in log and "for 3 list(s) moved out of the sync scope" in log


def _park(role_users, sync):
    batch = approved_batch(role_users, {}, mails=["a@contoso.com", "b@contoso.com"])
    batch = batch_run.do_schedule_batch(batch=batch, user=role_users["Helpdesk"], enqueue=False)
    batch_run.do_advance_batch(batch=batch, enqueue=False)
    first = batch.lists.get(mail="a@contoso.com").migration.job
    return batch, run_job_inline(first)


def test_a_parked_list_waits_for_the_others_of_its_wave_then_the_gather_time(role_users, sync, no_enqueue,
                                                                              settings, client):
    batch, parked = _park(role_users, sync)
    assert parked.status == JobStatus.WAITING and parked.finished_at is None and parked.is_active
    assert "Waits for the batch's delta sync 1" in parked.summary
    client.force_login(role_users["Helpdesk"])
    page = client.get(f"/jobs/{parked.pk}/").content.decode()
    assert 'id="job-waiting"' in page and "Past its point of no return" not in page
    with pytest.raises(JobActionRefused, match="parked half-way"):
        do_cancel_job(job=parked, user=role_users["Helpdesk"])
    start = lambda why: sync.start_sync_cycle(policy="Delta")  # noqa: E731
    # b's job is queued, not moved yet: the sync would come too early for it.
    assert batch_sync.do_release_due_round(batch=batch, start_sync=start, enqueue=False) is None
    later = timezone.now() + timedelta(seconds=settings.DL_BATCH_SYNC_GATHER_SECONDS + 1)
    started = batch_sync.do_release_due_round(batch=batch, start_sync=start, enqueue=False, now=later)
    assert started.number == 1 and sync.cycles == 1 and "waited" in started.note
    parked.refresh_from_db()
    assert parked.status == JobStatus.QUEUED and not parked.cancellable, "queued half-way: never 'not started'"
    assert run_job_inline(parked).status == JobStatus.SUCCEEDED
    assert "resumes after checkpoint 'move_to_non_sync'" in " ".join(parked.log_lines.values_list("message",
                                                                                                flat=True))
    # b moves after sync 1 started: it gets a sync of its own (2), never a cycle that predates its move.
    second = run_job_inline(batch.lists.get(mail="b@contoso.com").migration.job)
    assert second.status == JobStatus.WAITING and "delta sync 2" in second.summary


def test_a_sync_that_cannot_start_rolls_the_waiting_lists_back(role_users, sync, no_enqueue, monkeypatch):
    rollbacks = []
    monkeypatch.setattr(MovesOnly, "roll_back", lambda self, **kw: rollbacks.append(kw["reason"]) or self.save(
        status=MigrationStatus.ROLLED_BACK))
    batch, parked = _park(role_users, sync)
    batch.lists.filter(mail="b@contoso.com").update(run_state=BatchListRun.FAILED)

    def refused(why):
        raise engine.MigrationError("could not start a delta sync after 3 attempts")

    started = batch_sync.do_release_due_round(batch=batch, start_sync=refused, enqueue=False)
    assert started.status == BatchSyncRound.Status.FAILED
    job = run_job_inline(Job.objects.get(pk=parked.pk))
    assert job.status == JobStatus.FAILED and rollbacks and "could not be started" in rollbacks[0]


class _WaveExchange:
    """Exchange Online as the wave's search of cloud dependencies sees it: one owner names every twin."""

    def __init__(self, order: list[str], *, fail: bool = False) -> None:
        self.order, self.fail = order, fail

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def find_dependents_of_many(self, *, attributes, dns, cloud_only):
        self.order.append(f"search {len(dns)}")
        if self.fail:
            raise exo.Unreachable("Get-DistributionGroup: cannot reach https://outlook.office365.com")
        owner = exo.Recipient.from_dict({"Name": "owner", "Guid": "g1", "PrimarySmtpAddress": "owner@contoso.com",
                                         "RecipientTypeDetails": "UserMailbox", "IsDirSynced": False})
        return {dn: ({"ManagedBy": [owner]}, {"ModeratedBy": "this tenant cannot filter on it"}) for dn in dns}


def _pending_backup(migration: Migration) -> None:
    MigrationBackup.objects.create(migration=migration, kind=BackupKind.CLOUD_GROUP,
                                   data={"DistinguishedName": f"CN={migration.mail},OU=Cloud,DC=contoso,DC=com"})
    MigrationBackup.objects.create(migration=migration, kind=BackupKind.CLOUD_DEPENDENCIES,
                                   data={"properties": [], "send_as": [], "dependents": engine.DEPENDENTS_PENDING})


@pytest.mark.parametrize("fail", [False, True])
def test_the_waves_cloud_dependencies_are_searched_together_just_before_its_sync(role_users, sync, no_enqueue,
                                                                                monkeypatch, fail):
    """A batch list's twin is searched for cloud dependents with its whole wave, after the moves and before the
    sync that deletes the twins; a search that fails starts no sync and the wave rolls back."""
    rollbacks = []
    monkeypatch.setattr(MovesOnly, "roll_back", lambda self, **kw: rollbacks.append(kw["reason"]) or self.save(
        status=MigrationStatus.ROLLED_BACK))
    batch, parked = _park(role_users, sync)
    batch.lists.filter(mail="b@contoso.com").update(run_state=BatchListRun.FAILED)
    migration = batch.lists.get(mail="a@contoso.com").migration
    _pending_backup(migration)
    order: list[str] = []

    def before(job_ids):
        engine.scan_wave_dependents(job_ids=job_ids, open_exchange=lambda: _WaveExchange(order, fail=fail),
                                    log=lambda level, message: order.append(message))

    started = batch_sync.do_release_due_round(batch=batch, start_sync=lambda why: order.append("sync"),
                                              enqueue=False, before_sync=before)
    job = run_job_inline(Job.objects.get(pk=parked.pk))
    deps = MigrationBackup.objects.get(migration=migration, kind=BackupKind.CLOUD_DEPENDENCIES).data
    if fail:
        assert order == ["search 1"] and started.status == BatchSyncRound.Status.FAILED
        assert job.status == JobStatus.FAILED and "cannot reach" in rollbacks[0]
        assert deps["dependents"] == engine.DEPENDENTS_PENDING
        return
    assert order[0] == "search 1" and "1 of them named by cloud-only recipients" in order[1] and order[2] == "sync"
    assert [(d["property"], d["primary_smtp_address"]) for d in deps["properties"]] == [
        ("ManagedBy", "owner@contoso.com")]
    assert job.status == JobStatus.WARNINGS, job.summary
    log = " ".join(job.log_lines.values_list("message", flat=True))
    assert "Cloud dependencies by ModeratedBy could not be searched" in log
    assert "Cloud dependencies searched with the wave's lists: 1 found" in log


def test_one_read_of_the_waves_twins_after_its_sync_tells_each_list_its_twin_is_gone(role_users, sync, no_enqueue):
    batch, parked = _park(role_users, sync)
    batch.lists.filter(mail="b@contoso.com").update(run_state=BatchListRun.FAILED)
    migration = batch.lists.get(mail="a@contoso.com").migration
    MigrationBackup.objects.create(migration=migration, kind=BackupKind.CLOUD_GROUP,
                                   data={"ExternalDirectoryObjectId": "TWIN-A"})
    gate = batch_sync.BatchSyncGate(batch_id=batch.pk)
    runner = types.SimpleNamespace(job=parked, info=lambda message: None)
    reads: list[list[str]] = []

    def present(ids):
        reads.append(ids)
        return set()

    # Before its round's sync started, nothing is read: the list asks Exchange itself.
    assert not gate.twin_gone(runner=runner, step="sync_after_move", twin_id="twin-a", present=present)
    batch_sync.do_release_due_round(batch=batch, start_sync=lambda why: None, enqueue=False)
    assert gate.twin_gone(runner=runner, step="sync_after_move", twin_id="TWIN-A", present=present)
    assert gate.twin_gone(runner=runner, step="sync_after_move", twin_id="twin-a", present=present)
    assert reads == [["twin-a"]], "one read for the wave, then every list answered from it"
    assert not gate.twin_gone(runner=runner, step="sync_after_move", twin_id="other", present=present)


class _Directory:
    """The on-premises group of each list: moved out of the sync scope by the move, back by a rollback."""

    def __init__(self, sync: CountingSync) -> None:
        self.sync = sync

    def read_by_guid(self, guid, *, attributes):
        return types.SimpleNamespace(dn=f"CN={guid.hex[:8]},OU=NonSync,DC=contoso,DC=com")

    def move(self, dn: str, parent: str) -> None:
        self.sync.order.append(f"back {dn.split(',')[0]}")


class _Exchange:
    def get_distribution_group(self, identity):  # nothing made in the cloud yet: nothing to remove
        raise exo.ObjectNotFound(f"{identity} not found")


class FailsAfterTheSync(MovesOnly):
    """MovesOnly with the backup a rollback reads, and a step after the wave's sync that fails for one list."""

    steps = ("backup", "move_to_non_sync", "sync_after_move", "wait_for_cloud_deletion", "disable_original",
             "final_sync")

    def step_backup(self) -> None:
        self.save(group_guid=uuid.uuid4())
        for kind, data in ((BackupKind.ONPREM_GROUP, {"dn": "CN=x,OU=Lists,DC=contoso,DC=com", "attributes": {},
                                                      "ou": "OU=Lists,DC=contoso,DC=com"}),
                           (BackupKind.CLOUD_GROUP, {"tenant_domain": "contoso.onmicrosoft.com",
                                                     "ExternalDirectoryObjectId": f"id-{self.m.mail}"})):
            MigrationBackup.objects.create(migration=self.m, kind=kind, data=data)

    def step_wait_for_cloud_deletion(self) -> None:
        if self.m.mail.startswith("c@"):
            raise engine.MigrationError("the cloud twin still exists (test)")


@pytest.fixture
def c_fails(sync, monkeypatch, settings):
    """Lists run FailsAfterTheSync against stand-ins a rollback can use."""
    settings.DL_BATCH_POLL_SECONDS = 0

    @contextlib.contextmanager
    def connectors():
        yield engine.Connectors(directory=_Directory(sync), exchange=_Exchange(), onprem=None, sync=sync, graph=None,
                                layout=None)

    monkeypatch.setattr(engine, "open_connectors", connectors)
    monkeypatch.setattr(inplace, "process_for", lambda migration: FailsAfterTheSync)
    return sync


def test_a_list_rolled_back_after_its_waves_sync_rides_on_the_next_shared_sync(role_users, c_fails, no_enqueue):
    """Three lists in one wave, one fails after the wave's sync and rolls back (its group moved back in the
    sync scope): its twin comes back with the sync that publishes the others, not with a sync of its own."""
    sync = c_fails
    batch = approved_batch(role_users, {}, mails=["a@contoso.com", "b@contoso.com", "c@contoso.com"])
    batch = batch_run.do_schedule_batch(batch=batch, user=role_users["Helpdesk"], enqueue=False, inline=True)
    job = run_job_inline(batch.job)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED_WITH_ERRORS, job.summary
    states = dict(batch.lists.values_list("mail", "migration__status"))
    assert states == {"a@contoso.com": MigrationStatus.MIGRATED, "b@contoso.com": MigrationStatus.MIGRATED,
                      "c@contoso.com": MigrationStatus.ROLLED_BACK}
    assert sync.cycles == 2, sync.order
    assert sync.order.index("sync 2") > sync.order.index(next(o for o in sync.order if o.startswith("back "))), \
        "the shared sync that brings the twin back comes after the group moved back"
    rounds = list(BatchSyncRound.objects.filter(batch=batch).order_by("number"))
    c = batch.lists.get(mail="c@contoso.com").migration
    assert [len(r.waiting) for r in rounds] == [3, 0] and c.pk in rounds[1].deferred
    assert "the batch's delta sync 2 was asked to run so the cloud twin returns" in c.job.summary


class _Graph:
    """Entra ID after the batch's last sync: is each group synced from AD again?"""

    def __init__(self, synced: bool, sync: CountingSync) -> None:
        self.synced, self.sync, self.asked = synced, sync, []

    def get_group(self, group_id):
        self.asked.append(group_id)
        self.sync.order.append(f"check {group_id}")
        return types.SimpleNamespace(on_premises_sync_enabled=self.synced)


@pytest.mark.parametrize("synced", [True, False])
def test_an_in_place_list_taken_back_in_a_batch_is_checked_after_the_batchs_last_sync(
        role_users, c_fails, no_enqueue, monkeypatch, synced):
    """A list converted in place and taken back in a batch does not wait for its cycle: its take-back rides on
    the batch's next sync. The batch's run job checks it once that sync is done, as a list migrated on its own
    checks after its own cycle, and says what it found in the list's run note and its log."""
    sync = c_fails
    graph = _Graph(synced, sync)

    @contextlib.contextmanager
    def entra_graph():
        yield graph

    monkeypatch.setattr("portal.connectors.registry.entra_graph", entra_graph)
    monkeypatch.setattr(batch_run, "planned_method", lambda batch, item: MigrationMethod.IN_PLACE)
    batch = approved_batch(role_users, {}, mails=["a@contoso.com", "c@contoso.com"])
    batch = batch_run.do_schedule_batch(batch=batch, user=role_users["Helpdesk"], enqueue=False, inline=True)
    job = run_job_inline(batch.job)
    batch.refresh_from_db()
    assert dict(batch.lists.values_list("mail", "migration__status")) == {
        "a@contoso.com": MigrationStatus.MIGRATED, "c@contoso.com": MigrationStatus.ROLLED_BACK}
    assert graph.asked == ["id-c@contoso.com"], "only the list taken back, not the migrated one"
    assert sync.order[-1] == "check id-c@contoso.com" and sync.order[-2] == "sync 2", sync.order
    note = batch.lists.get(mail="c@contoso.com").run_note
    found = inplace.VERIFIED_SYNCED if synced else inplace.NOT_SYNCED_AGAIN
    assert note.endswith(f"{batch_sync.TAKE_BACK_NOTE} {found}"), note
    line = job.log_lines.get(message=f"c@contoso.com: {found}.")
    assert line.level == ("success" if synced else "error")
    # A run job queued again after a loss checks again: the note says it once.
    taken_back = batch.lists.get(mail="c@contoso.com").migration_id
    batch_sync.do_record_take_back_checks(batch=batch, outcomes={taken_back: found})
    assert batch.lists.get(mail="c@contoso.com").run_note == note


@pytest.mark.parametrize(("left", "cycles"), [(BatchSyncRound.Status.OPEN, 2), (BatchSyncRound.Status.STARTING, 2),
                                              (BatchSyncRound.Status.STARTED, 1)])
def test_a_lost_run_job_is_queued_again_and_releases_the_lists_it_left_waiting(role_users, sync, no_enqueue,
                                                                             settings, client, left, cycles):
    """The batch's own run job dies (its worker SIGKILLed) while the wave waits for its sync: before it began
    to start it, half-way (the round marked, no sync), or after the sync but before queueing the lists again.
    The workers' sweep queues it again; its next run finishes what the lost one began: one sync for the wave
    (none when it had started), the lists released, each run once more, none twice; the page says so."""
    settings.DL_BATCH_POLL_SECONDS = 0
    batch = approved_batch(role_users, {}, mails=["a@contoso.com", "b@contoso.com"])
    batch = batch_run.do_schedule_batch(batch=batch, user=role_users["Helpdesk"], enqueue=False, inline=True)
    batch_run.do_advance_batch(batch=batch, enqueue=False)
    parked = [run_job_inline(i.migration.job) for i in batch.lists.select_related("migration__job")]
    assert {j.status for j in parked} == {JobStatus.WAITING}
    BatchSyncRound.objects.filter(batch=batch).update(status=left)
    # The run job was running on a machine that is gone: no heartbeat, no process.
    Job.objects.filter(pk=batch.job_id).update(status=JobStatus.RUNNING, attempts=1, worker="gone-host:4242",
                                               heartbeat_at=timezone.now() - timedelta(minutes=5),
                                               started_at=timezone.now())
    assert [j.pk for j in do_detect_lost_jobs()] == [batch.job_id]
    client.force_login(role_users["Helpdesk"])
    page = client.get(f"/dl/batches/{batch.pk}/").content.decode()
    assert 'id="batch-run-lost"' in page and "queues it again shortly" in page

    assert batch_run.do_recover_lost_batch_runs() == [batch.pk]
    assert batch_run.do_recover_lost_batch_runs() == [], "queued once"
    run = run_job_inline(Job.objects.get(pk=batch.job_id))
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED, run.summary
    log = " ".join(run.log_lines.values_list("message", flat=True))
    assert run.status == JobStatus.WARNINGS and "Queued again after its worker was lost" in log  # its loss: a warning
    assert sync.cycles == cycles, sync.order
    jobs_ = [Job.objects.get(pk=j.pk) for j in parked]
    assert [j.attempts for j in jobs_] == [2, 2] and {j.status for j in jobs_} == {JobStatus.SUCCEEDED}
    assert Job.objects.filter(kind="dl_migrate").count() == 2
    page = client.get(f"/dl/batches/{batch.pk}/").content.decode()
    assert "lost its worker 1 time(s) and was queued again 1 time(s)" in page


def test_a_run_job_lost_too_often_rolls_back_its_waiting_lists_and_says_so(role_users, sync, no_enqueue, settings,
                                                                           client):
    settings.DL_BATCH_RESUME_LOST = 0
    batch = approved_batch(role_users, {}, mails=["a@contoso.com", "b@contoso.com"])
    batch = batch_run.do_schedule_batch(batch=batch, user=role_users["Helpdesk"], enqueue=False, inline=True)
    batch_run.do_advance_batch(batch=batch, enqueue=False)
    parked = [run_job_inline(i.migration.job) for i in batch.lists.select_related("migration__job")]
    Job.objects.filter(pk=batch.job_id).update(status=JobStatus.RUNNING, attempts=1, worker="gone-host:4242",
                                               heartbeat_at=timezone.now() - timedelta(minutes=5))
    do_detect_lost_jobs()
    assert batch_run.do_recover_lost_batch_runs() == [batch.pk]
    assert Job.objects.get(pk=batch.job_id).status == JobStatus.WORKER_LOST, "left for an Administrator"
    assert BatchSyncRound.objects.get(batch=batch).status == BatchSyncRound.Status.FAILED
    ended = [run_job_inline(Job.objects.get(pk=j.pk)) for j in parked]
    assert {j.status for j in ended} == {JobStatus.FAILED} and sync.cycles == 0
    assert all("could not be started" in j.summary for j in ended), [j.summary for j in ended]
    assert AuditEvent.objects.filter(action="dl.batch.run_lost", target=f"dl-batch:{batch.pk}").count() == 1
    client.force_login(role_users["Helpdesk"])
    page = client.get(f"/dl/batches/{batch.pk}/").content.decode()
    assert "not queued again automatically" in page and "An Administrator resumes the run job" in page


def test_after_the_window_end_no_list_starts_and_the_waiting_wave_finishes_or_rolls_back(role_users, c_fails,
                                                                                        no_enqueue):
    """The window ends while the first wave waits for its sync: that wave is not abandoned half-way (its sync
    starts, one list finishes, the other rolls back as it would have), and its parent, whose turn comes after
    the end, does not start. The batch ends with errors, saying why the parent did not run."""
    batch = approved_batch(role_users, {"top@contoso.com": ["a@contoso.com"]},
                           mails=["a@contoso.com", "c@contoso.com", "top@contoso.com"])
    batch = batch_run.do_schedule_batch(batch=batch, user=role_users["Helpdesk"], enqueue=False, inline=True)
    assert batch_run.do_advance_batch(batch=batch, enqueue=False).start == ["a@contoso.com", "c@contoso.com"]
    parked = [run_job_inline(i.migration.job) for i in batch.lists.exclude(migration=None).select_related(
        "migration__job")]
    assert {j.status for j in parked} == {JobStatus.WAITING}
    MigrationBatch.objects.filter(pk=batch.pk).update(window_end=timezone.now() - timedelta(seconds=1))
    job = run_job_inline(batch.job)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED_WITH_ERRORS, job.summary
    items = {i.mail: i for i in batch.lists.select_related("migration")}
    assert items["a@contoso.com"].migration.status == MigrationStatus.MIGRATED
    assert items["c@contoso.com"].migration.status == MigrationStatus.ROLLED_BACK
    top = items["top@contoso.com"]
    assert top.run_state == BatchListRun.NOT_STARTED and top.migration is None and "window ended" in top.run_note
    assert Migration.objects.count() == 2 and c_fails.cycles == 2, c_fails.order
