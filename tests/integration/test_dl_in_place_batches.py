"""Nested lists converted in place in the rehearsal lab, bottom-up: Microsoft's conversion is not recursive
("Configure Group Source of Authority", limitations: convert the lowest group first and move up the tree).
A single parent is refused while its child is still managed on-premises and passes once the child is
converted; in a batch whose rule is the recommended method, the nested pair goes in place (child first, the
parent waiting for it) while a third list the requester set to recreate is recreated. Fresh lists per test."""

from __future__ import annotations

import json

import pytest

from migrations_app import batch_run
from migrations_app import batch_services as bsvc
from migrations_app.choices import BatchListOutcome, BatchMethod, BatchStatus, MigrationMethod, MigrationStatus
from migrations_app.models import MigrationBatch
from portal.connectors.registry import active_directory, entra_graph
from portal.jobs.choices import JobStatus
from portal.jobs.services import run_job_inline
from tests.conftest import wait_for
from tests.integration.dl_lab import fresh_list, sync_now
from tests.integration.test_dl_batches import inventory_row
from tests.integration.test_dl_migration import cloud_list, migrate, preflight

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _quick_polls(settings):
    settings.DL_DELETION_POLL_SECONDS = 0.5
    settings.DL_DELETION_TIMEOUT_SECONDS = 120


def nested_pair(lab, prefix: str) -> tuple[str, str, str, str]:
    child_mail, child_dn = fresh_list(lab, prefix=f"{prefix}child", members=2)
    parent_mail, parent_dn = fresh_list(lab, prefix=f"{prefix}parent", members=2)
    with active_directory() as directory:
        directory.add_values(parent_dn, "member", [child_dn])
    sync_now()
    return child_mail, child_dn, parent_mail, parent_dn


def managed(mail: str) -> bool:
    gid = cloud_list(mail).external_directory_object_id
    with entra_graph() as graph:
        return graph.sync_behavior(gid).is_cloud_managed


def test_a_single_parent_waits_until_its_child_is_converted_in_place(lab_tenant, lab, make_user):
    tech = make_user("tech", "Helpdesk")
    child_mail, child_dn, parent_mail, _ = nested_pair(lab, "soasingle")

    refused = preflight(tech, parent_mail, method="in_place")
    assert not refused.result["ok"]
    [children] = [c for c in refused.result["checks"] if c["key"] == "in_place_children"]
    assert children["outcome"] == "failure" and children["objects"] == [child_dn]
    assert not managed(parent_mail), "a refused preflight changes nothing"
    # left on-premises on purpose: a warning, not a refusal
    left = preflight(tech, parent_mail, method="in_place", skip_nested_group_check=True)
    assert {c["key"]: c["outcome"] for c in left.result["checks"]}["in_place_children"] == "warning"

    child, job = migrate(tech, child_mail, method="in_place")
    assert child.status == MigrationStatus.MIGRATED, job.summary
    passed = preflight(tech, parent_mail, method="in_place")
    assert passed.result["ok"], json.dumps(passed.result, indent=1)[:3000]
    assert {c["key"]: c["outcome"] for c in passed.result["checks"]}["in_place_children"] == "pass"


def test_a_batch_converts_a_nested_pair_in_place_bottom_up_and_recreates_the_list_chosen_so(
        lab_tenant, lab, make_user, rq_workers):
    tech, approver = make_user("tech", "Helpdesk"), make_user("approver", "Approver")
    child_mail, child_dn, parent_mail, parent_dn = nested_pair(lab, "soabatch")
    solo_mail, solo_dn = fresh_list(lab, prefix="soabatchsolo", members=2)
    inventory_row(parent_mail, parent_dn, child_lists=[child_dn])
    inventory_row(child_mail, child_dn, parent_lists=[parent_dn])
    inventory_row(solo_mail, solo_dn)
    ids = {mail: cloud_list(mail).external_directory_object_id for mail in (child_mail, parent_mail, solo_mail)}

    batch = bsvc.do_create_batch(name="in place, bottom-up", options={"keep_original": True},
                                 method=BatchMethod.RECOMMENDED, user=tech)
    bsvc.do_add_to_batch(batch=batch, values=[(0, m) for m in (parent_mail, child_mail, solo_mail)], user=tech)
    solo = batch.lists.get(mail=solo_mail)
    bsvc.do_set_list_methods(batch=batch, methods={solo.pk: MigrationMethod.RECREATE}, user=tech)
    job = run_job_inline(bsvc.do_start_batch_preflight(batch=batch, user=tech, enqueue=False))
    assert job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS), json.dumps(job.result)[:3000]
    batch.refresh_from_db()
    items = {i.mail: i for i in batch.lists.all()}
    assert {m: (i.preflight["method"], i.preflight["method_source"]) for m, i in items.items()} == {
        parent_mail: ("in_place", "recommended"), child_mail: ("in_place", "recommended"),
        solo_mail: ("recreate", "chosen")}
    assert items[parent_mail].outcome == BatchListOutcome.WARNINGS, "it waits for its child in the batch"
    assert (items[parent_mail].preflight["wave"], items[child_mail].preflight["wave"]) == (1, 0)
    assert batch.preflight_summary["blocked"] == 0 and batch.preflight_summary["methods"] == {
        "in_place": 2, "recreate": 1}

    bsvc.do_submit_batch(batch=batch, user=tech)
    bsvc.do_approve_batch(batch=batch, user=approver, signed_hash=batch.plan_hash)
    rq_workers(1, DL_BATCH_POLL_SECONDS=1, DL_BATCH_TAKE_OVER_SECONDS=1, DL_DELETION_POLL_SECONDS=0.5)
    batch = batch_run.do_schedule_batch(batch=batch, user=tech)
    wait_for(lambda: MigrationBatch.objects.get(pk=batch.pk).status != BatchStatus.RUNNING,
             timeout=900, interval=2, message="the batch to end")
    batch.refresh_from_db()
    runs = {i.mail: i.migration for i in batch.lists.select_related("migration__job")}
    assert batch.status == BatchStatus.COMPLETED, [(m, r and r.status, r and r.job.summary) for m, r in runs.items()]
    child, parent, recreated = runs[child_mail], runs[parent_mail], runs[solo_mail]
    assert (child.method, parent.method, recreated.method) == ("in_place", "in_place", "recreate")
    assert child.job.finished_at <= parent.job.started_at, "bottom-up: the child was converted first"
    assert managed(child_mail) and managed(parent_mail)
    assert cloud_list(parent_mail).external_directory_object_id == ids[parent_mail], "the same object in place"
    assert cloud_list(solo_mail).external_directory_object_id != ids[solo_mail], "a new cloud list"
    assert not cloud_list(solo_mail).is_dir_synced
