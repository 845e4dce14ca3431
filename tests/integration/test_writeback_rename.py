"""The writeback rename against the lab: plan, four-eyes approval, the runbook carried out on the lab's sync
server (the wizard's settings flipped as the field notes' procedure does, cycles run by Start-ADSyncSyncCycle),
every check made through the Entra Connect connector, then verification: every group renamed, none deleted.
Turning writeback off outside staging mode is detected and the step refused before any group is lost.

The test works on cloud groups it creates, from a known sync server, and puts the lab's sync server and the
seed's written-back groups back (option off, renamed back, wizard cleared) in a finalizer: the fixture
``writeback_lab`` of tests/support/writeback.py, shared with the e2e test of the pages.
"""

from __future__ import annotations

import pytest

from diagnostics_app.models import WritebackPlan
from diagnostics_app.writeback import runbook
from diagnostics_app.writeback import services as svc
from diagnostics_app.writeback.choices import CloudSyncVerdict, RowSection
from portal.connectors.registry import active_directory, ad_layout
from portal.directory import writeback_names as wn
from portal.jobs.choices import JobStatus
from portal.jobs.services import run_job_inline
from tests.support.writeback import cycle as _cycle
from tests.support.writeback import set_wizard as _wizard
from tests.support.writeback import writeback_lab  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _confirm(plan, step: str, user):
    return svc.do_confirm_step(plan=plan, user=user, step=step, checks=runbook.run_checks(plan, step))


def test_plan_runbook_and_verification_in_the_lab(writeback_lab, seeded_lab, make_user):  # noqa: F811
    admin, approver = make_user("wb-admin", "Administrator"), make_user("wb-approver", "Approver")
    store, made = writeback_lab.store, writeback_lab.groups
    ou = ad_layout().writeback_ou

    # The long-named group nested in the first: Cloud Sync would provision it without its members unless it is in
    # scope too, so the first must be prepared; the second, with no member group, is ready.
    store.add_member(group_id=made[0]["id"], member_id=made[1]["id"])
    job = run_job_inline(svc.do_start_plan(user=admin, enqueue=False))
    assert job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS), job.error
    plan = WritebackPlan.objects.get(pk=job.result["plan"])
    planned = {r.object_id: r for r in plan.rows.filter(section=RowSection.PLANNED)}
    for group in made:
        row = planned[group["id"]]
        expected = wn.display_name_cn(object_id=group["id"], display_name=group["displayName"])
        assert row.planned_dn == wn.writeback_dn(ou, expected.cn) and row.current_dn.startswith("CN=Group_")
    assert planned[made[1]["id"]].truncated and "escaped" in planned[made[0]["id"]].flags
    # The seed's written-back groups: those with a cloud twin are planned with their naming cases, the others
    # (a deleted cloud group, the case-collision pair) are listed apart.
    seed = {o.facts["object_id"]: o.facts for o in seeded_lab.scenario("written_back_groups").objects}
    sections = {r.object_id: r for r in plan.rows.filter(object_id__in=seed)}
    for oid, facts in seed.items():
        twinless = facts["case"] in ("no_cloud_twin", "case_collision")
        assert sections[oid].section == (RowSection.NOT_JOINED if twinless else RowSection.PLANNED), facts
    escaping = next(oid for oid, f in seed.items() if f["case"] == "dn_escaping")
    long_name = next(oid for oid, f in seed.items() if f["case"] == "long_display_name")
    assert "escaped" in sections[escaping].flags and sections[long_name].truncated
    nesting, nested = planned[made[0]["id"]], planned[made[1]["id"]]
    assert nesting.cloud_sync == CloudSyncVerdict.PREPARE, nesting.cloud_sync_notes
    assert any(n.startswith("1 member group(s) (Wb14 ") for n in nesting.cloud_sync_notes), nesting.cloud_sync_notes
    assert "1 direct member(s): 0 synchronized user(s), 0 cloud-only user(s), 1 group(s), 0 other" \
        in nesting.cloud_sync_notes
    assert nested.cloud_sync == CloudSyncVerdict.READY, nested.cloud_sync_notes
    assert any(ou in n and "parentDistinguishedName" in n for n in nested.cloud_sync_notes)

    plan = svc.do_request_approval(plan=plan, user=admin)
    plan = svc.do_approve_plan(plan=plan, user=approver, plan_hash=plan.plan_hash)

    # 1. staging mode on, scheduler suspended
    _wizard(store, staging=True, scheduler=False, writeback=True, display_name=False)
    _confirm(plan, "staging_on", admin)

    # A slip: staging mode turned off again while writeback goes off. The portal refuses the step...
    _wizard(store, staging=False, scheduler=False, writeback=False, display_name=False)
    with pytest.raises(svc.WritebackRefused, match="STAGING MODE IS OFF"):
        _confirm(plan, "writeback_off", admin)
    # ...and the lab engine shows why: a staging cycle would hold the deletions, a real one would run them.
    _wizard(store, staging=True, scheduler=False, writeback=False, display_name=False)
    _cycle()
    deletions = [p for p in store.list_pending_exports() if p["Operation"] == "Delete"]
    assert {p["ObjectId"] for p in deletions} >= {g["id"] for g in made}

    # 2. writeback off (in staging mode: nothing deleted)
    _confirm(plan, "writeback_off", admin)
    # 3. writeback on again, same OU, display-name option; the wizard starts the scheduler again
    _wizard(store, staging=True, scheduler=True, writeback=True, display_name=True)
    _confirm(plan, "writeback_on", admin)
    # 4. full import and full synchronisation (still staging: the renames wait as pending exports)
    _cycle("Initial")
    _confirm(plan, "full_sync", admin)
    # 5. pending exports: exactly the planned renames, zero deletions
    checks = _confirm(plan, "review_exports", admin).checks
    assert all(c["ok"] for c in checks), checks
    # 6. staging mode off; 7. delta sync exports the renames
    _wizard(store, staging=False, scheduler=True, writeback=True, display_name=True)
    _confirm(plan, "staging_off", admin)
    _cycle()
    _confirm(plan, "delta_sync", admin)

    for _ in range(2):  # verified, then again after another cycle: it stays so
        job = run_job_inline(svc.do_start_verification(plan=plan, user=admin, enqueue=False))
        assert job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS), job.error
        counts = job.result["counts"]
        assert counts.get("renamed") == len(planned) and not counts.get("missing") and not counts.get("mismatched")
        _cycle()

    # A group deleted by hand afterwards: the verification calls it missing, by name.
    gone = planned[made[0]["id"]]
    with active_directory() as directory:
        directory.delete(gone.planned_dn)
    job = run_job_inline(svc.do_start_verification(plan=plan, user=admin, enqueue=False))
    assert job.result["counts"].get("missing") == 1 and not job.result["ok"]
    assert any("MISSING" in line.message for line in job.log_lines.all())
