"""DL migration end to end in the rehearsal lab: preflight, migration, rollback, resume, aftercare.

Every migration here runs the real job code inline (the same path a worker takes) against the lab's
Samba AD, its Exchange Online / Exchange on-premises / Entra Connect endpoints and its sync engine.
Lists created by a test carry a unique alias so the tests do not depend on each other's order.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from migrations_app import engine
from migrations_app import services as svc
from migrations_app.choices import BackupKind, ListState, MigrationStatus
from migrations_app.models import DistributionList, Migration, MigrationSettings
from portal.audit.models import AuditEvent
from portal.connectors import ad as adc
from portal.connectors import exchange as exo
from portal.connectors.ad import recipients
from portal.connectors.registry import active_directory, entra_connect, exchange_online
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.services import (
    JobActionRefused,
    do_cancel_job,
    do_detect_lost_jobs,
    do_resume_job,
    run_job_inline,
)
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
_counter = itertools.count(1)


# ----------------------------------------------------------------------------------------------
# helpers


def preflight(user, mail, **options):
    job = svc.do_start_preflight(mail=mail, options=options, user=user, enqueue=False)
    return run_job_inline(job)


def migrate(user, mail, **options):
    pre = preflight(user, mail, **options)
    assert pre.result.get("ok"), json.dumps(pre.result, indent=1)[:3000]
    migration = svc.do_request_migration(mail=mail, options=options, user=user, enqueue=False)
    job = run_job_inline(migration.job)
    migration.refresh_from_db()
    return migration, job


def log_of(job) -> str:
    return "\n".join(f"[{level}] {msg}" for level, msg in job.log_lines.order_by("seq").values_list("level", "message"))


def cloud_list(mail):
    with exchange_online() as exchange:
        try:
            return exchange.get_distribution_group(mail)
        except exo.ObjectNotFound:
            return None


def cloud_member_addresses(ident) -> set[str]:
    with exchange_online() as exchange:
        return {(r.primary_smtp_address or "").lower() for r in exchange.iter_distribution_group_members(ident)}


def sync_now():
    with entra_connect() as sync:
        sync.wait_until_idle(timeout=120, poll=0.2)
        sync.start_sync_cycle(policy="Delta")
        assert sync.wait_until_idle(timeout=120, poll=0.2)


_REMOTE_USERS: list[tuple[str, str]] = []


def _remote_mailboxes(manifest) -> list[tuple[str, str]]:
    """(dn, mail) of the lab's well-formed remote mailboxes (none of the seeded bad cases), in a stable order."""
    if not _REMOTE_USERS:
        bad = {o.dn.lower() for key, scenario in manifest.scenarios.items()
               if key.startswith(("idfix", "certificate", "upn", "mail_only")) for o in scenario.objects}
        flt = adc.all_of(adc.object_class("user"), adc.eq("msExchRecipientTypeDetails", 2147483648),
                         adc.present("mail"), adc.present("mailNickname"))
        with active_directory() as directory:
            found = [(o.dn, o.first("mail"))
                     for o in directory.search(filter=flt, attributes=["mail", "proxyAddresses"])
                     if o.first("mail").endswith("@contoso.com") and ".." not in o.first("mail")
                     and o.dn.lower() not in bad
                     and all(p.count("@") == 1 for p in o.get("proxyAddresses") if p.lower().startswith("smtp:"))]
        _REMOTE_USERS.extend(sorted(found))
    return _REMOTE_USERS


def _pick(manifest, count, offset):
    users = _remote_mailboxes(manifest)
    return [users[(offset + i) % len(users)] for i in range(count)]


def remote_users(manifest, count, offset=0):
    return [dn for dn, _ in _pick(manifest, count, offset)]


def new_list(manifest, *, members=6, offset=0, **attributes) -> tuple[str, str]:
    """A fresh synced distribution list in the Groups OU; returns (mail, dn)."""
    alias = f"dlmig-{next(_counter)}-{uuid.uuid4().hex[:6]}"
    mail = f"{alias}@contoso.com"
    with active_directory() as directory:
        dn = directory.create_group(
            parent=manifest.ous["groups"], name=f"Migration Test {alias}", mail=mail, alias=alias,
            sam_account_name=alias,
            attributes={"proxyAddresses": [f"SMTP:{mail}", f"smtp:{alias}@contoso.mail.onmicrosoft.com",
                                           f"smtp:{alias}@fabrikam.com"],
                        "msExchRecipientTypeDetails": 256, "msExchRecipientDisplayType": 1,
                        "legacyExchangeDN": f"/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/"
                                            f"cn=Recipients/cn={alias}", **attributes})
        directory.add_values(dn, "member", remote_users(manifest, members, offset))
    sync_now()
    assert cloud_list(mail) is not None and cloud_list(mail).is_dir_synced
    return mail, dn


def snapshot_onprem(dn):
    with active_directory() as directory:
        obj = directory.read(dn, attributes=["cn", "mail", "proxyAddresses", "mailNickname", "member",
                                             "extensionAttribute1"])
        return {"dn": obj.dn, "guid": obj.guid, "mail": obj.get("mail"),
                "proxies": sorted(obj.get("proxyAddresses")), "members": sorted(obj.get("member"))}


def assert_original_state(before, mail):
    """The rollback promise: the group is back where it was with everything it had, the twin returns,
    and no cloud-only list (temporary or renamed) is left behind."""
    now = snapshot_onprem(before["dn"])
    assert now == before
    sync_now()
    twin = cloud_list(mail)
    assert twin is not None and twin.is_dir_synced, "the cloud twin did not come back"
    with exchange_online() as exchange:
        leftovers = [g for g in exchange.iter_distribution_groups(filter=exo.opath_like("Alias", prefix="migtemp-"))]
    assert not leftovers, f"orphan temporary lists: {[g.primary_smtp_address for g in leftovers]}"


def assert_migrated(migration, mail, members):
    migration.refresh_from_db()
    assert migration.status in (MigrationStatus.MIGRATED, MigrationStatus.MIGRATED_WITH_WARNINGS)
    result = cloud_list(mail)
    assert result is not None and result.is_dir_synced is False
    assert cloud_member_addresses(result.guid) >= {m.lower() for m in members}
    with active_directory() as directory:
        original = directory.read_by_guid(migration.group_guid)
        assert original.first("extensionAttribute1") == "MigratedByScript"
        assert not original.get("mail")
        assert not adc.parse_dn(original.dn).is_within("OU=NotSynced,OU=Contoso,DC=lab,DC=example")
        assert recipients.find_contact_by_address(directory, f"{mail.split('@')[0]}-MigratedByScript@contoso.com")
    with exchange_online() as exchange:
        leftovers = list(exchange.iter_distribution_groups(filter=exo.opath_like("Alias", prefix="migtemp-")))
    assert not leftovers


def member_mails(manifest, count, offset=0):
    return [mail for _, mail in _pick(manifest, count, offset)]


@pytest.fixture
def tech(make_user):
    return make_user("tech", "Helpdesk")


@pytest.fixture
def admin(make_user):
    return make_user("admin", "Administrator")


@pytest.fixture
def manifest(lab_tenant, lab):
    return lab


# ----------------------------------------------------------------------------------------------
# preflight


def test_preflight_passes_for_a_plain_list(lab_tenant, tech):
    job = preflight(tech, "sales-team@contoso.com")
    assert job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS), job.summary
    checks = {c["key"]: c["outcome"] for c in job.result["checks"]}
    assert checks["found_once"] == "pass"
    assert checks["synced"] == "pass"
    assert checks["non_sync_ou"] == "pass", "asked of the sync server's OU filtering"
    assert job.result["routing_domain"].endswith(".mail.onmicrosoft.com"), "the plan names the real routing domain"


@pytest.mark.parametrize(("mail", "options", "key", "words"), [
    ("nobody-here@contoso.com", {}, "found_once", "No object"),
    ("helpdesk@contoso.com", {}, "found_once", "2 objects"),
    ("eva.young@contoso.com", {}, "mail_enabled_group", "user"),
    ("board-of-directors@contoso.com", {}, "not_protected", "denies Everyone Delete"),
    ("all-staff-emea@contoso.com", {}, "nested_groups", "child group"),
    ("legacy-helpdesk@contoso.com", {}, "accepted_domains", "legacy.local"),
    ("facilities-requests@contoso.com", {}, "group_managers", "security-enabled"),
    ("finance-department@contoso.com", {}, "recipients_resolve", "no cloud recipient"),
    ("gpvm-steering-emea@contoso.com", {"name_prefix": "MIG-"}, "name_length", "68 characters"),
    ("sales-team@contoso.com", {"non_sync_ou": "OU=Missing,OU=Contoso,DC=lab,DC=example"}, "non_sync_ou",
     "does not exist"),
    ("sales-team@contoso.com", {"non_sync_ou": "OU=Groups,OU=Synced,OU=Contoso,DC=lab,DC=example"}, "non_sync_ou",
     "synchronises this OU"),
    ("sales-team@contoso.com", {"routing_domain": "routing.contoso.net"}, "routing_domain",
     "routing.contoso.net is not an accepted domain"),
])
def test_each_preflight_failure_kind_blocks_and_queues_nothing(lab_tenant, tech, mail, options, key, words):
    job = preflight(tech, mail, **options)
    assert job.status == JobStatus.FAILED
    failed = {c["key"]: c for c in job.result["checks"] if c["outcome"] == "failure"}
    assert key in failed, json.dumps(job.result, indent=1)[:2000]
    assert words in failed[key]["detail"]
    assert failed[key]["remedy"]
    with pytest.raises(svc.MigrationRefused, match="did not pass"):
        svc.do_request_migration(mail=mail, options=options, user=tech, enqueue=False)
    assert not Migration.objects.exists()


def test_outbound_connector_routing_everything_on_premises_blocks_unless_overridden(lab_tenant, tech):
    from portal.lab import config
    from portal.lab.cloud.store import CloudStore

    store = CloudStore.open(data_dir=config.cloud_dir())
    store.add_outbound_connector(name="Centralized (test)", properties={"RecipientDomains": ["*"]})
    try:
        job = preflight(tech, "sales-team@contoso.com")
        assert {c["key"]: c["outcome"] for c in job.result["checks"]}["outbound_connector"] == "failure"
        job = preflight(tech, "sales-team@contoso.com", allow_centralized_mail_flow=True)
        assert {c["key"]: c["outcome"] for c in job.result["checks"]}["outbound_connector"] == "warning"
        assert job.result["ok"]
    finally:
        store.add_outbound_connector(name="Centralized (test)", properties={"Enabled": False})
        store.close()


def test_bad_input_is_refused_before_anything_is_queued(lab_tenant, tech):
    for bad in ("not-an-address", "a@b", "x)(mail=*)@contoso.com", "<script>@contoso.com"):
        with pytest.raises(svc.MigrationRefused, match="not an e-mail address"):
            svc.do_start_preflight(mail=bad, user=tech, enqueue=False)
    with pytest.raises(svc.MigrationRefused, match="group type"):
        svc.do_start_preflight(mail="sales-team@contoso.com", options={"group_type": "Mailbox"}, user=tech,
                               enqueue=False)
    with pytest.raises(svc.MigrationRefused, match="Run a preflight"):
        svc.do_request_migration(mail="sales-team@contoso.com", user=tech, enqueue=False)
    assert not Job.objects.exists() and not Migration.objects.exists()


# ----------------------------------------------------------------------------------------------
# migration


def test_migrate_a_list_with_hybrid_mail_flow_and_the_route_resolves(manifest, tech):
    mail, dn = new_list(manifest, members=8)
    before = cloud_list(mail)
    migration, job = migrate(tech, mail, hybrid_mail_flow=True)
    assert job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS), log_of(job)
    assert_migrated(migration, mail, member_mails(manifest, 8))
    after = cloud_list(mail)
    assert after.name == before.name
    assert {a.lower() for a in before.email_addresses} <= {a.lower() for a in after.email_addresses}
    assert any(a.lower() == f"x500:{before.legacy_exchange_dn.lower()}" for a in after.email_addresses)
    assert migration.backups.filter(kind=BackupKind.ONPREM_GROUP).exists()
    assert migration.report["members"]["missing"] == []
    # The route: mail for the list on-premises → dynamic list → contact → the contact's target → cloud list.
    with active_directory() as directory:
        ddl = recipients.find_dynamic_list_by_address(directory, mail)
        assert ddl is not None and ddl.dn == migration.dynamic_list_dn
        expanded = list(directory.dynamic_members(ddl.dn, attributes=["mail", "targetAddress"]))
        assert [o.dn for o in expanded] == [migration.contact_dn]
        target = str(expanded[0].first("targetAddress")).split(":", 1)[1]
    with exchange_online() as exchange:
        assert exchange.get_recipient(target).guid == after.guid


def test_address_change_of_a_migrated_list_in_both_directories(manifest, tech, make_user):
    admin = make_user("admin", "Administrator")
    mail, dn = new_list(manifest, members=3, offset=10)
    migration, job = migrate(tech, mail, hybrid_mail_flow=True)
    assert migration.is_done, log_of(job)
    new = mail.replace("@contoso.com", "-renamed@contoso.com")
    job = run_job_inline(svc.do_start_update_address(migration=migration, new_address=new, new_alias="",
                                                     user=admin, enqueue=False))
    assert job.status == JobStatus.SUCCEEDED, log_of(job)
    assert cloud_list(new).primary_smtp_address.lower() == new.lower()
    with active_directory() as directory:
        ddl = directory.read(migration.dynamic_list_dn, attributes=["mail", "proxyAddresses"])
        assert ddl.first("mail").lower() == new.lower()
        assert f"SMTP:{new}".lower() in [p.lower() for p in ddl.get("proxyAddresses")]
        assert f"smtp:{mail}".lower() in [p.lower() for p in ddl.get("proxyAddresses")]
    migration.refresh_from_db()
    assert migration.mail == new


def test_address_change_refused_by_exchange_online_leaves_on_premises_alone(manifest, tech, make_user):
    admin = make_user("admin2", "Administrator")
    mail, dn = new_list(manifest, members=2, offset=20)
    migration, _ = migrate(tech, mail, hybrid_mail_flow=True)
    taken = member_mails(manifest, 1, offset=40)[0]  # a user's address: Exchange Online refuses it
    job = run_job_inline(svc.do_start_update_address(migration=migration, new_address=taken, user=admin,
                                                     enqueue=False))
    assert job.status == JobStatus.FAILED
    assert "nothing was changed on-premises" in job.summary
    with active_directory() as directory:
        assert directory.read(migration.dynamic_list_dn, attributes=["mail"]).first("mail").lower() == mail.lower()


def test_skip_nested_group_check_keeps_children_on_premises_and_routes_mail_to_them(manifest, tech):
    mail, dn = new_list(manifest, members=3, offset=30)
    child = "staff-amsterdam@contoso.com"
    with active_directory() as directory:
        child_dn = recipients.find_by_address(directory, child)[0].dn
        directory.add_values(dn, "member", [child_dn])
    sync_now()
    blocked = preflight(tech, mail)
    assert blocked.status == JobStatus.FAILED
    migration, job = migrate(tech, mail, skip_nested_group_check=True, hybrid_mail_flow=True)
    assert migration.is_done, log_of(job)
    members = cloud_member_addresses(migration.cloud_group_id)
    assert child in members, "the child list is added to the cloud list at the end"
    assert cloud_list(child).is_dir_synced, "the child stays a synced, on-premises list"
    with active_directory() as directory:
        assert directory.read(child_dn, attributes=["mail"]).first("mail") == child


def test_a_child_migrated_first_then_its_parent_whose_plan_is_unchanged(manifest, tech):
    """Kept, the migrated child stays in the parent as '!Child' (no address) beside its routing contact:
    both stand for the child's cloud list, so the parent's preflight passes with the plan it had before."""
    child_mail, child_dn = new_list(manifest, members=2, offset=60)
    parent_mail, parent_dn = new_list(manifest, members=3, offset=64)
    with active_directory() as directory:
        directory.add_values(parent_dn, "member", [child_dn])
    sync_now()
    waiting = preflight(tech, parent_mail)
    assert waiting.status == JobStatus.FAILED and "child" in waiting.summary.lower(), waiting.summary
    planned = waiting.result["plan_hash"]

    child, job = migrate(tech, child_mail, keep_original=True)
    assert child.is_done, log_of(job)
    with active_directory() as directory:
        assert child_dn.lower() not in {m.lower() for m in directory.read(parent_dn, attributes=["member"])
                                        .get("member")}, "the child was renamed '!…'"
    sync_now()
    parent, job = migrate(tech, parent_mail, keep_original=True)
    assert parent.is_done, log_of(job)
    assert parent.plan_hash == planned, "the parent's plan did not change with its child's migration"
    assert_migrated(parent, parent_mail, member_mails(manifest, 3, offset=64))
    members = cloud_member_addresses(parent.cloud_group_id)
    assert child_mail.lower() in members, "the parent's cloud list holds the child's cloud list"
    assert f"{child_mail.split('@')[0]}-migratedbyscript@contoso.com" not in members
    assert parent.report["members"]["missing"] == []


def test_restore_rebuilds_the_list_on_premises_and_it_soft_matches_again(manifest, tech, make_user):
    admin = make_user("admin3", "Administrator")
    mail, dn = new_list(manifest, members=4, offset=50)
    before = snapshot_onprem(dn)
    row = DistributionList.objects.create(guid=before["guid"], dn=dn, name="x", mail=mail, ou="OU=x",
                                          inventoried_at=timezone.now())
    migration, job = migrate(tech, mail, hybrid_mail_flow=True)
    assert migration.is_done, log_of(job)
    # The inventory row and the report are current at once, the kept original under its real DN.
    row.refresh_from_db()
    assert row.state == ListState.MIGRATED and row.cloud_dir_synced is False
    assert adc.parse_dn(migration.report["original"]["dn"]).rdn_value.startswith("!")
    job = run_job_inline(svc.do_start_restore(migration=migration, user=admin, enqueue=False))
    assert job.status == JobStatus.SUCCEEDED, log_of(job)
    assert snapshot_onprem(dn) == before
    twin = cloud_list(mail)
    assert twin is not None and twin.is_dir_synced
    with active_directory() as directory:
        assert recipients.find_dynamic_list_by_address(directory, mail) is None
        assert not directory.exists(migration.contact_dn)
    migration.refresh_from_db()
    assert migration.status == MigrationStatus.RESTORED
    row.refresh_from_db()
    assert row.state == ListState.SYNCED and migration.distribution_list_id == row.pk


def test_delete_original_option_removes_the_group_and_keeps_its_backup(manifest, tech):
    mail, dn = new_list(manifest, members=3, offset=60, authOrig=remote_users(manifest, 1, offset=70))
    migration, job = migrate(tech, mail, keep_original=False)
    assert migration.is_done, log_of(job)
    with active_directory() as directory:
        with pytest.raises(adc.NotFound):
            directory.read_by_guid(migration.group_guid)
    backup = migration.backups.get(kind=BackupKind.ONPREM_GROUP).data
    assert backup["dn"] == dn and backup["attributes"]["mail"] == [mail]


# ----------------------------------------------------------------------------------------------
# failures, faults and crashes


def test_cloud_deletion_timeout_rolls_back(manifest, tech, settings, monkeypatch):
    mail, dn = new_list(manifest, members=3, offset=80)
    before = snapshot_onprem(dn)
    settings.DL_DELETION_TIMEOUT_SECONDS = 0.5
    # The sync never deletes the twin (e.g. the export deletion threshold was hit).
    monkeypatch.setattr(engine.MigrationProcess, "step_sync_after_move", lambda self: None)
    migration, job = migrate(tech, mail)
    assert job.status == JobStatus.FAILED
    assert migration.status == MigrationStatus.ROLLED_BACK
    text = log_of(job)
    assert "still exists after" in text and "Undone: removed the cloud list" in text
    assert "Undone: moved the group back" in text
    assert_original_state(before, mail)


def test_exchange_throttling_and_graph_unavailability_are_ridden_out(manifest, tech):
    from portal.lab import config
    from portal.lab.cloud.store import CloudStore

    mail, dn = new_list(manifest, members=4, offset=90)
    store = CloudStore.open(data_dir=config.cloud_dir())
    try:
        pre = preflight(tech, mail, remove_twin_via_graph=True)
        assert pre.result["ok"]
        store.set_faults(throttle=2, unavailable=1, retry_after=1, scope="all")
        migration = svc.do_request_migration(mail=mail, options={"remove_twin_via_graph": True}, user=tech,
                                             enqueue=False)
        job = run_job_inline(migration.job)
    finally:
        store.clear_faults()
        store.close()
    assert job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS), log_of(job)
    assert_migrated(migration, mail, member_mails(manifest, 4, offset=90))


def test_active_directory_down_during_the_move_is_retried_then_rolled_back(manifest, tech, monkeypatch):
    mail, dn = new_list(manifest, members=3, offset=100)
    before = snapshot_onprem(dn)
    calls = {"n": 0}
    real_move = adc.ActiveDirectory.move

    def flaky_move(self, dn_, parent):
        calls["n"] += 1
        if "NotSynced" in parent and calls["n"] <= 2:
            raise adc.ServerDown("the lab's domain controller is down (test)")
        return real_move(self, dn_, parent)

    monkeypatch.setattr(adc.ActiveDirectory, "move", flaky_move)
    migration, job = migrate(tech, mail)
    assert migration.is_done, log_of(job)
    assert "Move attempt 1/5" in log_of(job) and "Move attempt 2/5" in log_of(job)

    mail2, dn2 = new_list(manifest, members=3, offset=110)
    before = snapshot_onprem(dn2)

    def down_move(self, dn_, parent):
        if "NotSynced" in parent:
            raise adc.ServerDown("the lab's domain controller is down (test)")
        return real_move(self, dn_, parent)

    monkeypatch.setattr(adc.ActiveDirectory, "move", down_move)
    migration2, job2 = migrate(tech, mail2)
    assert job2.status == JobStatus.FAILED and migration2.status == MigrationStatus.ROLLED_BACK
    assert "after 5 attempts" in log_of(job2)
    assert_original_state(before, mail2)


def test_a_failed_sync_cycle_after_the_move_stops_the_wait_and_rolls_back(manifest, tech):
    """The sync server's cycle fails (here its options file is unreadable; in the demo a lab path was wrong):
    the wait for the cloud twin's deletion stops at its first check with the run's result, instead of
    waiting out DL_DELETION_TIMEOUT_SECONDS in silence, and the migration rolls back."""
    from portal.lab import config
    from portal.lab.sync import OPTIONS_FILE

    mail, dn = new_list(manifest, members=3, offset=190)
    before = snapshot_onprem(dn)
    options = config.cloud_dir() / OPTIONS_FILE
    saved = options.read_bytes() if options.exists() else None
    options.write_text("{ this is not JSON")
    try:
        migration, job = migrate(tech, mail)
    finally:
        if saved is None:
            options.unlink(missing_ok=True)
        else:
            options.write_bytes(saved)
    log = log_of(job)
    assert job.status == JobStatus.FAILED and migration.status == MigrationStatus.ROLLED_BACK, log
    assert "the sync cycle that deletes the cloud twin failed" in log and "stopped-" in log
    assert "still exists after" not in log
    sync_now()
    assert_original_state(before, mail)


ROLLBACK_STEPS = engine.STEPS[:engine.STEPS.index(engine.POINT_OF_NO_RETURN)]
# Preflight only reads, and the backup only writes the portal's own records: a failure there leaves
# nothing to undo (FAILED, "Failed before anything was changed"); from the temporary list on, the
# rollback undoes something (ROLLED_BACK).
NOTHING_CHANGED_YET = ("preflight", "backup")


@pytest.mark.parametrize("step", ROLLBACK_STEPS)
def test_failure_inside_any_step_before_the_point_of_no_return_restores_the_original(manifest, tech, monkeypatch,
                                                                                   step):
    mail, dn = new_list(manifest, members=3, offset=130)
    before = snapshot_onprem(dn)
    real = getattr(engine.MigrationProcess, f"step_{step}")

    def fail_after_work(self):
        real(self)  # the step's work is done (the worst moment), then the step fails
        raise exo.ServiceUnavailable(f"injected failure in {step}")

    monkeypatch.setattr(engine.MigrationProcess, f"step_{step}", fail_after_work)
    migration, job = migrate(tech, mail)
    assert job.status == JobStatus.FAILED
    if step in NOTHING_CHANGED_YET:
        assert migration.status == MigrationStatus.FAILED, log_of(job)
        assert "[warning] Undone: " not in log_of(job)
        assert job.summary.startswith("Failed before anything was changed: "), job.summary
    else:
        assert migration.status == MigrationStatus.ROLLED_BACK, log_of(job)
        assert "[warning] Undone: " in log_of(job) and job.summary.startswith("Rolled back: "), job.summary
    assert_original_state(before, mail)


def test_a_failing_step_after_the_point_of_no_return_is_retried_then_reported_not_rolled_back(
        manifest, tech, monkeypatch):
    mail, dn = new_list(manifest, members=3, offset=140)
    calls = {"n": 0}
    real = engine.MigrationProcess.step_routing_contact

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 1:
            raise adc.ServerDown("a blip (test)")
        real(self)

    monkeypatch.setattr(engine.MigrationProcess, "step_routing_contact", flaky)
    migration, job = migrate(tech, mail)
    assert calls["n"] == 2 and "Step 'routing_contact' failed (a blip (test)); trying it once more." in log_of(job)
    assert migration.status == MigrationStatus.MIGRATED and not migration.post_create_errors
    assert_migrated(migration, mail, member_mails(manifest, 3, offset=140))

    mail2, _ = new_list(manifest, members=3, offset=150)
    monkeypatch.setattr(engine.MigrationProcess, "step_child_lists",
                        lambda self: (_ for _ in ()).throw(exo.ServiceUnavailable("down for good (test)")))
    migration2, job2 = migrate(tech, mail2, skip_nested_group_check=True)
    assert job2.status == JobStatus.WARNINGS, log_of(job2)
    assert migration2.status == MigrationStatus.MIGRATED_WITH_WARNINGS
    assert migration2.post_create_errors and migration2.post_create_errors[0]["step"] == "child_lists"
    assert "Succeeded with warnings" == job2.get_status_display()


def test_enable_hybrid_mail_flow_after_a_migration_without_it(manifest, tech, make_user):
    admin = make_user("admin4", "Administrator")
    mail, dn = new_list(manifest, members=3, offset=160)
    migration, job = migrate(tech, mail)
    assert migration.is_done and not migration.dynamic_list_dn, log_of(job)
    recorded = dict(migration.options)
    job = run_job_inline(svc.do_start_enable_hybrid_mail_flow(migration=migration, user=admin, enqueue=False))
    assert job.status == JobStatus.SUCCEEDED, log_of(job)
    migration.refresh_from_db()
    assert migration.options == recorded, "the options the migration ran with are not rewritten"
    with active_directory() as directory:
        ddl = recipients.find_dynamic_list_by_address(directory, mail)
        assert ddl is not None and ddl.dn == migration.dynamic_list_dn
        assert [o.dn for o in directory.dynamic_members(ddl.dn)] == [migration.contact_dn]
    with pytest.raises(svc.MigrationRefused, match="already has hybrid mail flow"):
        svc.do_start_enable_hybrid_mail_flow(migration=migration, user=admin, enqueue=False)


def test_big_list_with_children_restrictions_moderation_managers_and_cloud_dependencies(manifest, tech):
    """The seed's 5,200-member list, given every kind of link, migrated and compared with its backup."""
    users = remote_users(manifest, 8, offset=170)
    with active_directory() as directory:
        # The members of the seed's big list (its bulk contacts and users), copied so the test can run again.
        everyone = [o.dn for o in directory.search(filter=adc.object_class("contact"),
                                                   base=manifest.ous["bulk_contacts"], attributes=["cn"])]
        everyone += remote_users(manifest, 120, offset=0)
    big, dn = new_list(manifest, members=0)
    with active_directory() as directory:
        directory.add_values(dn, "member", everyone, batch_size=1000)
        child_dn = recipients.find_by_address(directory, "staff-netherlands@contoso.com")[0].dn
        directory.add_values(dn, "member", [child_dn])
        directory.modify(dn, replace={
            "managedBy": users[0], "msExchCoManagedByLink": [users[1]], "authOrig": [users[2], users[3]],
            "unauthOrig": [users[4]], "msExchModeratedByLink": [users[5]], "msExchEnableModeration": True,
            "msExchBypassModerationLink": [users[6]], "publicDelegates": [users[7]]})
    sync_now()
    twin = cloud_list(big)
    with exchange_online() as exchange:  # cloud-only dependencies on the synced list
        exchange.add_distribution_group_member("cloudlist1@contoso.com", member=twin.guid)
        exchange.set_distribution_group("cloudlist2@contoso.com", changes={
            "AcceptMessagesOnlyFromSendersOrMembers": exo.MultiValuedUpdate(add=(twin.guid,))})
        exchange.add_recipient_permission(twin.guid, trustee=member_mails(manifest, 1, offset=171)[0])
    twin = cloud_list(big)
    migration, job = migrate(tech, big, skip_nested_group_check=True, hybrid_mail_flow=True)
    assert migration.is_done, log_of(job)
    backup_cloud = migration.backups.get(kind=BackupKind.CLOUD_GROUP).data
    backup_members = migration.backups.get(kind=BackupKind.CLOUD_MEMBERS).data
    after = cloud_list(big)
    assert after.is_dir_synced is False
    # attribute by attribute against the backup of the cloud twin
    for prop in ("ManagedBy", "AcceptMessagesOnlyFromSendersOrMembers", "RejectMessagesFromSendersOrMembers",
                 "ModeratedBy", "BypassModerationFromSendersOrMembers", "GrantSendOnBehalfTo"):
        assert sorted(map(str.lower, after.raw.get(prop) or [])) == \
            sorted(map(str.lower, backup_cloud.get(prop) or [])), prop
    for prop in ("ModerationEnabled", "HiddenFromAddressListsEnabled", "RequireSenderAuthenticationEnabled",
                 "DisplayName", "Alias", "PrimarySmtpAddress"):
        assert after.raw.get(prop) == backup_cloud.get(prop), prop
    assert {a.lower() for a in backup_cloud["EmailAddresses"]} <= {a.lower() for a in after.email_addresses}
    members = cloud_member_addresses(after.guid)
    assert len(members) == len(backup_members) == len(set(everyone)) + 1 > 5000
    assert {(m["primary_smtp_address"] or "").lower() for m in backup_members} == members
    with exchange_online() as exchange:
        assert after.guid in {r.guid for r in exchange.iter_distribution_group_members("cloudlist1@contoso.com")}
        restricted = exchange.get_distribution_group("cloudlist2@contoso.com")
        assert after.name in restricted.accept_messages_only_from_senders_or_members
        assert [p.trustee for p in exchange.get_recipient_permission(after.guid)]
    assert "staff-netherlands@contoso.com" in members


# ----------------------------------------------------------------------------------------------
# hardening: cancel, pinned approvals, SIGKILLed workers


def test_cancel_mid_migration_rolls_back_completely_and_the_migration_ends_cancelled(manifest, tech, monkeypatch):
    mail, dn = new_list(manifest, members=3, offset=160)
    before = snapshot_onprem(dn)
    real = engine.MigrationProcess.step_move_to_non_sync

    def moved_then_cancelled(self):
        real(self)
        do_cancel_job(job=self.runner.job, user=tech)  # the person presses Cancel now

    monkeypatch.setattr(engine.MigrationProcess, "step_move_to_non_sync", moved_then_cancelled)
    migration, job = migrate(tech, mail)
    log = log_of(job)
    assert job.status == JobStatus.CANCELLED, log
    # Every line of the rollback was written although the cancel was pending the whole time.
    assert "[warning] Undone: moved the group back to" in log and "Undone: removed the cloud list" in log
    assert migration.status == MigrationStatus.CANCELLED and migration.finished_at, log
    finished = AuditEvent.objects.get(action="dl.migration.finish", target=f"dl:{mail}")
    assert finished.after["status"] == MigrationStatus.CANCELLED and finished.job_id == job.pk
    assert_original_state(before, mail)
    # The list is free again: a new request is not blocked by a migration stuck 'running'.
    svc.check_no_open_migration(mail=mail)


def test_cancel_past_the_point_of_no_return_is_refused_and_the_migration_completes(manifest, tech, monkeypatch):
    mail, _ = new_list(manifest, members=3, offset=170)
    refusals = []
    real = engine.MigrationProcess.step_routing_contact

    def try_to_cancel(self):
        try:
            do_cancel_job(job=self.runner.job, user=tech)
        except JobActionRefused as exc:
            refusals.append(str(exc))
        real(self)

    monkeypatch.setattr(engine.MigrationProcess, "step_routing_contact", try_to_cancel)
    migration, job = migrate(tech, mail)
    assert refusals and "point of no return" in refusals[0]
    assert job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS) and not job.cancel_requested
    assert_migrated(migration, mail, member_mails(manifest, 3, offset=170))


def _approved_request(manifest, tech, approver, mail):
    MigrationSettings.objects.update_or_create(pk=1, defaults={"require_approval_for_single": True})
    assert preflight(tech, mail).result["ok"]
    migration = svc.do_request_migration(mail=mail, user=tech, enqueue=False)
    return svc.do_approve_migration(migration=migration, user=approver, enqueue=False)


def test_a_stale_approval_is_refused_with_the_differences_when_the_list_changed(manifest, tech, make_user):
    mail, dn = new_list(manifest, members=3, offset=180)
    migration = _approved_request(manifest, tech, make_user("appr", "Approver"), mail)
    newcomer = remote_users(manifest, 1, offset=190)[0]
    with active_directory() as directory:
        directory.add_values(dn, "member", [newcomer])  # the list changes after it was signed off
    before = snapshot_onprem(dn)
    job = run_job_inline(migration.job)
    migration.refresh_from_db()
    assert job.status == JobStatus.FAILED and migration.status == MigrationStatus.FAILED
    assert "no longer matches the plan that was approved" in job.summary
    assert f"members: 1 added ({newcomer.lower()})" in job.summary
    assert job.result["plan_changed"] and snapshot_onprem(dn) == before
    twin = cloud_list(mail)
    assert twin is not None and twin.is_dir_synced, "nothing was changed"


def test_an_expired_approval_is_refused(manifest, tech, make_user):
    mail, dn = new_list(manifest, members=2, offset=200)
    migration = _approved_request(manifest, tech, make_user("appr", "Approver"), mail)
    Migration.objects.filter(pk=migration.pk).update(approval_expires_at=timezone.now() - timedelta(minutes=1))
    job = run_job_inline(migration.job)
    assert job.status == JobStatus.FAILED and "approval of this migration expired" in job.summary
    assert cloud_list(mail).is_dir_synced


def _kill_worker_when(rq_workers, proc, job, predicate, settings):
    # The kill is certain here, so the loss may be declared sooner than a production worker's would be.
    settings.JOB_WORKER_LOST_AFTER_SECONDS = 2
    wait_for(predicate, timeout=120, interval=0.2, message="the worker to reach the point of the kill")
    job.refresh_from_db()
    horse = int(job.worker.rsplit(":", 1)[1])
    os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(horse, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(lambda: Job.objects.get(pk=job.pk).status == JobStatus.WORKER_LOST or do_detect_lost_jobs(),
             timeout=settings.JOB_WORKER_LOST_AFTER_SECONDS + 20, message="the lost worker to be noticed")


def _resume_on_a_fresh_worker(rq_workers, job, admin):
    rq_workers(1)  # a worker without the pause: the machine came back
    do_resume_job(job=Job.objects.get(pk=job.pk), user=admin)
    wait_for(lambda: not Job.objects.get(pk=job.pk).is_active, timeout=180, interval=0.3,
             message="the resumed job to end")
    job.refresh_from_db()
    # One runner: the first attempt was killed, the second finished the job.
    assert job.attempts == 2
    return job


@pytest.mark.parametrize("step", engine.STEPS)
def test_real_worker_sigkilled_after_any_checkpoint_then_resumed(manifest, tech, admin, rq_workers, settings,
                                                                 step):
    mail, dn = new_list(manifest, members=3, offset=210)
    [proc] = rq_workers(1, TEST_PAUSE_AFTER_CHECKPOINT=step)
    assert preflight(tech, mail).result["ok"]
    migration = svc.do_request_migration(mail=mail, user=tech)
    job = migration.job
    _kill_worker_when(rq_workers, proc, job, lambda: job.checkpoints.filter(name=step).exists(), settings)
    job = _resume_on_a_fresh_worker(rq_workers, job, admin)
    assert job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS), log_of(job)
    assert f"Step '{step}' already done in an earlier run; skipping it." in log_of(job)
    assert_migrated(migration, mail, member_mails(manifest, 3, offset=210))


def test_real_worker_sigkilled_during_the_rollback_then_resumed(manifest, tech, admin, rq_workers, settings):
    mail, dn = new_list(manifest, members=3, offset=220)
    before = snapshot_onprem(dn)
    [proc] = rq_workers(1, TEST_FAIL_STEP="finalize_cloud_list", TEST_PAUSE_IN_ROLLBACK="1")
    assert preflight(tech, mail).result["ok"]
    migration = svc.do_request_migration(mail=mail, user=tech)
    job = migration.job
    _kill_worker_when(rq_workers, proc, job, lambda: job.log_lines.filter(message__startswith="Rolling back").exists(),
                      settings)
    job = _resume_on_a_fresh_worker(rq_workers, job, admin)
    migration.refresh_from_db()
    # The resumed run carries on after the last checkpoint; whatever the killed rollback had undone,
    # it ends as a correct migration or puts the original back: never in between.
    if migration.is_done:
        assert_migrated(migration, mail, member_mails(manifest, 3, offset=220))
    else:
        assert migration.status in (MigrationStatus.ROLLED_BACK, MigrationStatus.FAILED), log_of(job)
        assert_original_state(before, mail)
