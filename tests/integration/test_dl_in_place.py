"""The in-place method end to end in the rehearsal lab: the source of authority of a seeded-style list handed
to the cloud (same object, no longer synced, manageable in Exchange Online), an AD change that no longer
flows, on-premises senders routed through a contact, an old sync client's revert detected and rolled back,
and the take-back restoring the original state. Lists are created per test (unique aliases)."""

from __future__ import annotations

import json

import pytest

from migrations_app import inplace
from migrations_app import services as svc
from migrations_app.choices import MigrationMethod, MigrationStatus
from portal.connectors.registry import active_directory, entra_graph, exchange_online
from portal.jobs.services import run_job_inline
from tests.integration.test_dl_migration import (
    _kill_worker_when,
    _resume_on_a_fresh_worker,
    cloud_list,
    log_of,
    migrate,
    new_list,
    preflight,
    sync_now,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tech(make_user):
    return make_user("tech", "Helpdesk")


@pytest.fixture
def admin(make_user):
    return make_user("admin", "Administrator")


@pytest.fixture
def manifest(lab_tenant, lab):
    return lab


@pytest.fixture(autouse=True)
def _quick_polls(settings):
    settings.DL_DELETION_POLL_SECONDS = 0.5
    settings.DL_DELETION_TIMEOUT_SECONDS = 120


def cloud_state(group_id: str) -> dict:
    with entra_graph() as graph:
        group = graph.get_group(group_id, select=["id", "description", "onPremisesSyncEnabled"])
        managed = graph.sync_behavior(group_id).is_cloud_managed
    with exchange_online() as exchange:
        twin = exchange.get_distribution_group(group_id)
    return {"managed": managed, "synced": group.on_premises_sync_enabled, "description": group.description,
            "exo_synced": twin.is_dir_synced}


def test_in_place_conversion_keeps_the_object_stops_ad_and_takes_back(manifest, tech, admin) -> None:
    mail, dn = new_list(manifest, members=4)
    before = cloud_list(mail)
    gid = before.external_directory_object_id
    with active_directory() as directory:
        members_before = sorted(directory.read(dn, attributes=["member"]).get("member"))

    pre = preflight(tech, mail, method="in_place")
    assert pre.result["ok"], json.dumps(pre.result, indent=1)[:3000]
    assert pre.result["recommendation"]["method"] == "in_place"
    checks = {c["key"]: c["outcome"] for c in pre.result["checks"]}
    assert checks["sync_client"] == checks["soa_permission"] == checks["not_cloud_managed"] == "pass"
    assert checks["mail_enabled_support"] == "warning" and "non_sync_ou" not in checks

    migration, job = migrate(tech, mail, method="in_place")
    assert migration.method == MigrationMethod.IN_PLACE
    assert migration.status in (MigrationStatus.MIGRATED, MigrationStatus.MIGRATED_WITH_WARNINGS), job.summary
    state = cloud_state(gid)
    assert state == {**state, "managed": True, "synced": None, "exo_synced": False}
    assert migration.report["audit_event"] == inplace.AUDIT_CONVERT
    assert cloud_list(mail).external_directory_object_id == gid, "the same object, not a new list"
    with active_directory() as directory:
        onprem = directory.read(dn, attributes=["member", "extensionAttribute1", "description"])
    assert onprem.get("member") == [migration.contact_dn]  # on-premises senders reach the cloud list once
    assert onprem.first("extensionAttribute1") == inplace.CONVERTED_STAMP

    # an AD change made later does not reach the cloud; the cloud list is manageable in Exchange Online
    with active_directory() as directory:
        directory.modify(dn, replace={"description": "changed on-premises after the conversion"})
    sync_now()
    assert cloud_state(gid)["description"] != "changed on-premises after the conversion"
    with exchange_online() as exchange:
        display_before = exchange.get_distribution_group(gid).display_name
        exchange.set_distribution_group(gid, changes={"DisplayName": f"Cloud managed {mail}",
                                                      "HiddenFromAddressListsEnabled": True})
        assert exchange.get_distribution_group(gid).display_name == f"Cloud managed {mail}"

    # the page's preview reads (changes nothing) what the take-back would overwrite
    preview = run_job_inline(svc.do_start_take_back_preview(migration=migration, user=admin, enqueue=False))
    assert preview.status == "warnings", preview.summary
    rows = {row["attribute"]: row for row in preview.result["preview"]["attributes"]}
    assert set(rows) == {"displayName / DisplayName", "msExchHideFromAddressLists / HiddenFromAddressListsEnabled"}
    assert rows["displayName / DisplayName"] == {
        "attribute": "displayName / DisplayName", "at_conversion": display_before, "cloud_now": f"Cloud managed {mail}",
        "ad_value": display_before, "changed_in_cloud": True, "overwritten": True}
    assert cloud_state(gid)["managed"] is True, "the preview changed nothing"

    # take back: false, the on-premises membership restored, the next cycle re-applies AD's values
    take = run_job_inline(svc.do_start_restore(migration=migration, user=admin, enqueue=False))
    assert take.status in ("succeeded", "warnings"), take.summary
    # the preview, before anything is handed back, names each attribute the cloud changed and AD overwrites
    log = log_of(take)
    assert (f"displayName / DisplayName: changed in the cloud since the conversion ({display_before} -> Cloud "
            f"managed {mail}); AD's value will overwrite it (Cloud managed {mail} -> {display_before})") in log
    assert ("msExchHideFromAddressLists / HiddenFromAddressListsEnabled: changed in the cloud since the conversion "
            "(False -> True); AD's value will overwrite it (True -> False)") in log
    assert log.index("displayName / DisplayName") < log.index("Done: handed the source of authority back")
    overwritten = {row["attribute"] for row in take.result["overwritten"]["attributes"]}
    assert overwritten == {"displayName / DisplayName", "msExchHideFromAddressLists / HiddenFromAddressListsEnabled"}
    assert f"audit event '{inplace.AUDIT_UNDO}' found" in log_of(take), "Microsoft's record of the undo"
    migration.refresh_from_db()
    assert migration.status == MigrationStatus.RESTORED
    after = cloud_state(gid)
    assert after["managed"] is False and after["synced"] is True and after["exo_synced"] is True
    with active_directory() as directory:
        assert sorted(directory.read(dn, attributes=["member"]).get("member")) == members_before
        assert not directory.exists(migration.contact_dn)
    assert cloud_list(mail).display_name != f"Cloud managed {mail}", "AD's values were applied again"


def test_an_old_sync_client_reverting_the_conversion_is_detected_and_rolled_back(manifest, tech, monkeypatch):
    """Connect Sync older than 2.5.76.0 does not know the flag: its next cycle takes the list back. The preflight
    passed on a current client; the client is 'downgraded' right after the PATCH, so the verify step sees the
    revert, and the rollback restores the on-premises copy."""
    from portal.lab import config
    from portal.lab.cloud.store import CloudStore

    mail, dn = new_list(manifest, members=3)
    gid = cloud_list(mail).external_directory_object_id
    with active_directory() as directory:
        before = directory.read(dn, attributes=["member", "description"])
    store = CloudStore.open(data_dir=config.cloud_dir())
    current = store.connect_version()
    real_convert = inplace.InPlaceProcess.step_convert

    def convert_then_downgrade(self):
        real_convert(self)
        store.set_connect_version(version="2.4.131.0")

    monkeypatch.setattr(inplace.InPlaceProcess, "step_convert", convert_then_downgrade)
    try:
        migration, job = migrate(tech, mail, method="in_place")
    finally:
        store.set_connect_version(version=current)
        store.close()
    migration.refresh_from_db()
    assert migration.status == MigrationStatus.ROLLED_BACK, job.summary
    assert "reverted the conversion" in job.summary and "older than 2.5.76.0" in job.summary
    state = cloud_state(gid)
    assert state["managed"] is False and state["synced"] is True and state["exo_synced"] is True
    with active_directory() as directory:
        after = directory.read(dn, attributes=["member", "description"])
    assert sorted(after.get("member")) == sorted(before.get("member"))
    assert after.get("description") == before.get("description")


@pytest.mark.parametrize("step", inplace.IN_PLACE_STEPS)  # every checkpoint, as the recreate method's test
def test_real_worker_sigkilled_after_an_in_place_checkpoint_then_resumed(manifest, tech, admin, rq_workers, settings,
                                                                         step):
    """A worker killed after a checkpoint (before the cycle, after it, past the point of no return): the resumed
    run skips what was done and ends with the list cloud-managed, exactly as an uninterrupted one."""
    mail, dn = new_list(manifest, members=3, offset=240)
    gid = cloud_list(mail).external_directory_object_id
    [proc] = rq_workers(1, TEST_PAUSE_AFTER_CHECKPOINT=step, DL_DELETION_POLL_SECONDS="0.5")
    assert preflight(tech, mail, method="in_place").result["ok"]
    migration = svc.do_request_migration(mail=mail, user=tech, options={"method": "in_place"})
    job = migration.job
    _kill_worker_when(rq_workers, proc, job, lambda: job.checkpoints.filter(name=step).exists(), settings)
    job = _resume_on_a_fresh_worker(rq_workers, job, admin)
    assert job.status in ("succeeded", "warnings"), log_of(job)
    assert f"Step '{step}' already done in an earlier run; skipping it." in log_of(job)
    migration.refresh_from_db()
    assert migration.status in (MigrationStatus.MIGRATED, MigrationStatus.MIGRATED_WITH_WARNINGS)
    assert cloud_state(gid) == {**cloud_state(gid), "managed": True, "synced": None, "exo_synced": False}
    with active_directory() as directory:
        assert directory.read(dn, attributes=["member"]).get("member") == [migration.contact_dn]
