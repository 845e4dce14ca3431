"""The lab sync engine (portal/lab/sync/) against a Samba AD DC and a lab tenant of its own.

The module resets a lab under ``$DIROPS_VAR_DIR/lab/sync-test`` on an address of its own
(tests/support/labs.py; DIROPS_TEST_SYNC_DIR / DIROPS_TEST_SYNC_HOST override), seeds the default
organisation, opens a CloudStore in a temporary directory and runs an initial cycle; the tests then change AD
or the tenant and run delta cycles, each proving one documented behaviour of Entra Connect (named in its
docstring). The tests share the lab and run in any order; a test that counts a cycle's work settles the lab
first. The lab is stopped at the end.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from portal.connectors import ad
from portal.lab import layout, samba, sync
from portal.lab import seed as seeder
from portal.lab.cloud.app import LabCloud
from portal.lab.cloud.store import CloudStore
from portal.lab.cloud.store.common import parse_datetime
from tests.support import labs

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VAR_DIR = Path(os.environ.get("DIROPS_VAR_DIR", REPO / "var"))
LAB_DIR = Path(os.environ.get("DIROPS_TEST_SYNC_DIR", VAR_DIR / "lab" / "sync-test"))
LAB_HOST = os.environ.get("DIROPS_TEST_SYNC_HOST") or labs.own_host(labs.LAB_SYNC)

USER_CLASSES = ("top", "person", "organizationalPerson", "user")


@dataclass
class Lab:
    settings: ad.AdSettings
    conn: ad.ActiveDirectory
    store: CloudStore
    manifest: seeder.Manifest
    initial: sync.CycleResult
    initial_stats: dict[str, int]  # the tenant right after the initial cycle (tests run in any order after it)

    @property
    def base(self) -> str:
        return self.settings.base_dn

    def cycle(self, policy: sync.Policy = "Delta", **options: Any) -> sync.CycleResult:
        result = sync.run_cycle(directory=self.conn, store=self.store, base_dn=self.base, policy=policy,
                                options=sync.SyncOptions(**options))
        print(f"\n{result.effective_policy}: {result.duration_seconds:.2f} s, imported {result.imported}, "
              f"cloud writes {result.cloud_writes}, AD writes {result.ad_writes}, {result.timings}")
        return result

    def cloud(self, dn: str) -> dict[str, Any] | None:
        """The cloud object synchronised from this AD object (by its source anchor)."""
        obj = self.conn.read(dn, attributes=["objectGUID", "mS-DS-ConsistencyGuid"])
        anchor = sync.source_anchor_of(obj)
        return self.store.find_by_source_anchor(source_anchor=anchor) if anchor else None

    def user(self, name: str, **attributes: Any) -> str:
        dn = ad.child_dn(layout.users_ou(self.base), "CN", name)
        sam = f"s{secrets.token_hex(6)}"
        self.conn.add(dn, object_class=USER_CLASSES, attributes={
            "sAMAccountName": sam, "displayName": name, "userAccountControl": 544, **attributes})
        return dn


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    password = "Lab-" + secrets.token_urlsafe(16) + "-9a"
    status = samba.reset(base_dir=LAB_DIR, admin_password=password, host=LAB_HOST)
    settings = ad.AdSettings(host=status.host, port=status.ldap_port, base_dn=status.base_dn or "",
                             bind_dn=status.admin_dn, password=password, retries=2, retry_backoff=0.2)
    store = CloudStore.open(data_dir=tmp_path_factory.mktemp("lab-sync-cloud"))
    store.set_tenant(tenant_id=str(uuid.uuid4()), initial_domain=layout.TENANT_DOMAIN)
    for domain in layout.ACCEPTED_DOMAINS:
        if domain != layout.TENANT_DOMAIN:
            store.add_accepted_domain(domain_name=domain)
    try:
        with ad.ActiveDirectory(settings) as conn:
            started = time.monotonic()
            manifest = seeder.seed(conn, base_dn=settings.base_dn)
            print(f"\nseeded {manifest.created} objects in {time.monotonic() - started:.1f} s")
            initial = sync.run_cycle(directory=conn, store=store, base_dn=settings.base_dn, policy="Initial")
            print(f"initial cycle: {initial.duration_seconds:.2f} s for {initial.imported} objects {initial.timings}")
            yield Lab(settings, conn, store, manifest, initial, store.stats())
    finally:
        store.close()
        samba.stop(base_dir=LAB_DIR)


# --- the initial cycle -------------------------------------------------------------------------


def test_initial_cycle_projects_the_sync_scope_with_memberships_and_recipients(lab: Lab) -> None:
    """Scoping (default configuration doc): users, groups and contacts of the sync OUs, not dynamic DLs, not
    the written-back groups; memberships with the 5,200-member list; Exchange Online recipients."""
    result, m = lab.initial, lab.manifest
    assert result.effective_policy == "Initial" and result.imported == result.in_scope
    stats = lab.initial_stats
    assert stats["contact"] == m.counts["contacts"] + m.counts["filler_contacts"] + 1  # + the blank-target contact
    assert stats["group"] == m.counts["groups"] + 1  # + the IdFix group without a display name
    for dn in lab.manifest.dns("dynamic_distribution_lists") + lab.manifest.dns("written_back_groups"):
        assert lab.cloud(dn) is None, dn
    assert result.orphaned_writeback_groups == len(m.dns("written_back_groups"))

    big = lab.manifest.first("large_list").dn
    group = lab.cloud(big)
    assert group is not None and group["mailEnabled"] and not group["securityEnabled"]
    ad_members = list(lab.conn.iter_values(big, "member", step=1000))  # ranged reads, as Windows serves them
    assert len(ad_members) == seeder.BIG_LIST_MEMBERS
    assert len(lab.store.member_ids(group_id=group["id"])) == seeder.BIG_LIST_MEMBERS
    recipient = lab.store.get_recipient_by_object_id(object_id=group["id"])
    assert recipient["RecipientTypeDetails"] == "MailUniversalDistributionGroup" and recipient["IsDirSynced"]
    assert recipient["ManagedBy"]  # managedBy, as a recipient id

    mailbox = lab.manifest.first("remote_mailbox_users")
    user = lab.cloud(mailbox.dn)
    assert user["onPremisesSyncEnabled"] and user["onPremisesDistinguishedName"] == mailbox.dn
    assert user["onPremisesImmutableId"] and user["accountEnabled"]
    assert lab.store.get_recipient_by_object_id(object_id=user["id"])["RecipientTypeDetails"] == "UserMailbox"
    room = lab.cloud(lab.manifest.first("remote_room_mailboxes").dn)
    assert not room["accountEnabled"]
    assert lab.store.get_recipient_by_object_id(object_id=room["id"])["RecipientTypeDetails"] == "RoomMailbox"
    room_list = lab.cloud(lab.manifest.first("room_list").dn)
    assert lab.store.get_recipient_by_object_id(object_id=room_list["id"])["RecipientTypeDetails"] == "RoomList"
    moderated = lab.cloud(lab.manifest.first("moderated_list").dn)
    assert lab.store.get_recipient_by_object_id(object_id=moderated["id"])["ModeratedBy"]
    hidden = lab.cloud(lab.manifest.first("hidden_list").dn)
    assert lab.store.get_recipient_by_object_id(object_id=hidden["id"])["HiddenFromAddressListsEnabled"] is True

    # unverified UPN suffix (.local) -> the initial domain, as Entra ID assigns it
    local = next(o for o in lab.manifest.scenario("idfix_topleveldomain").objects
                 if o.facts["attribute"] == "userPrincipalName")
    upn = lab.cloud(local.dn)["userPrincipalName"]
    assert upn.endswith("@" + layout.TENANT_DOMAIN)


def settle(lab: Lab) -> None:
    """Delta cycles, so that what the initial cycle or an earlier test (tests run in random order) left for
    the next cycle (the confirming import of the engine's own writebacks, an AD writeback) is done before a
    test counts what its own cycle does. A cycle that still wrote (to AD, say) leaves its own confirming import for
    the next one: cycles run until one writes nothing, a few at most."""
    for _ in range(5):
        result = lab.cycle()
        if (result.cloud_writes, result.ad_writes) == (0, 0):
            return
    raise AssertionError(f"the lab did not settle in 5 cycles: the last one touched {result.touched}")


def test_a_second_cycle_with_nothing_changed_makes_no_writes(lab: Lab) -> None:
    """Delta (confirming import of the engine's own writebacks, then nothing): no export to either side."""
    settle(lab)
    first = lab.cycle()
    second = lab.cycle()
    for result in (first, second):
        assert result.effective_policy == "Delta"
        assert (result.cloud_writes, result.ad_writes, result.touched) == (0, 0, [])
    # only the objects still in export error are retried
    assert second.imported == len({e.distinguished_name for e in second.export_errors})


def test_delta_after_a_change_only_touches_what_changed(lab: Lab) -> None:
    """Delta import by uSNChanged: one changed attribute, one object read and exported."""
    dn = lab.manifest.scenario("remote_mailbox_users").objects[3].dn
    settle(lab)
    lab.conn.modify(dn, replace={"department": "Treasury"})
    result = lab.cycle()
    assert result.touched == [dn]
    assert result.counts["user"].updates == 1 and result.cloud_writes == 1 and result.ad_writes == 0
    assert result.imported == 1 + len({e.distinguished_name for e in result.export_errors})
    assert lab.cloud(dn)["department"] == "Treasury"


# --- scoping and matching ----------------------------------------------------------------------


def test_moving_out_of_scope_deletes_and_moving_back_restores_the_same_object(lab: Lab) -> None:
    """Scoping: an object moved to the non-sync OU is deleted in the cloud (with its recipient and its
    memberships) at the next cycle; moved back it is matched again by source anchor, same object id."""
    group_dn = lab.manifest.first("nested_lists_depth_4").dn
    member_dn = next(dn for dn in lab.conn.read(group_dn, attributes=["member"]).get("member")
                     if "OU=Users" in dn)
    user = lab.cloud(member_dn)
    group = lab.cloud(group_dn)
    recipient = lab.store.get_recipient_by_object_id(object_id=user["id"])
    assert user["id"] in lab.store.member_ids(group_id=group["id"])

    moved = lab.conn.move(member_dn, layout.non_sync_ou(lab.base))
    out = lab.cycle()
    assert out.counts["user"].deletes == 1 and out.counts["recipient"].deletes == 1
    assert lab.store.get_object(object_id=user["id"]) is None
    assert lab.store.get_recipient_by_object_id(object_id=user["id"]) is None
    assert user["id"] not in lab.store.member_ids(group_id=group["id"])

    lab.conn.move(moved, str(ad.parse_dn(member_dn).parent))
    back = lab.cycle()
    assert back.counts["user"].adds == 1
    again = lab.cloud(member_dn)
    assert again["id"] == user["id"] and again["onPremisesImmutableId"] == user["onPremisesImmutableId"]
    restored = lab.store.get_recipient_by_object_id(object_id=user["id"])
    assert restored["LegacyExchangeDN"] == recipient["LegacyExchangeDN"]
    assert user["id"] in lab.store.member_ids(group_id=group["id"])  # the unchanged group names it again


def test_soft_match_joins_a_cloud_only_user_and_an_x500_only_user_keeps_its_primary(lab: Lab) -> None:
    """Soft match ("When you have an existing tenant": UPN or primary SMTP, cloud-managed objects only), and
    ProxyCalc with an X500-only proxyAddresses: the cloud keeps the primary address it had."""
    upn = f"joan.keller.{secrets.token_hex(3)}@{layout.PRIMARY_DOMAIN}"
    previous = f"joan.keller@{layout.SECONDARY_DOMAIN}"
    cloud = lab.store.create_user(user_principal_name=upn, display_name="Joan Keller", mail=previous,
                                  proxy_addresses=[f"SMTP:{previous}"])
    x500 = f"x500:/o=ExchangeLabs/ou={layout.ADMIN_GROUP}/cn=Recipients/cn={secrets.token_hex(16)}-joan"
    dn = lab.user("Joan Keller", userPrincipalName=upn, mail=f"joan.keller.new@{layout.PRIMARY_DOMAIN}",
                  proxyAddresses=[x500])
    result = lab.cycle()
    assert result.counts["user"].adds == 0 and result.counts["user"].updates == 1 and result.soft_matches == 1
    joined = lab.cloud(dn)
    assert joined["id"] == cloud["id"] and joined["onPremisesSyncEnabled"] is True
    assert lab.store.source_anchor_of(object_id=cloud["id"]) == joined["onPremisesImmutableId"]
    assert joined["mail"] == previous and f"SMTP:{previous}" in joined["proxyAddresses"]
    assert len(lab.store.find_objects_by_address(address=upn)) == 1  # no duplicate


def test_field_notes_mail_changes_stop_reaching_the_cloud_after_hybrid_writeback(lab: Lab) -> None:
    """The field notes' story end to end: a mail-only user's mail change reaches the cloud; a licence
    creates the mailbox and Exchange hybrid writeback adds its X500 to proxyAddresses (and
    msDS-ExternalDirectoryObjectId User_<id>); from then on a mail change no longer reaches the cloud."""
    first = f"mailonly.{secrets.token_hex(3)}@{layout.PRIMARY_DOMAIN}"
    dn = lab.user("Mail Only", userPrincipalName=first, mail=first)
    lab.cycle()
    user = lab.cloud(dn)
    assert user["mail"] == first and lab.store.get_recipient_by_object_id(object_id=user["id"]) is None

    changed = f"totally.new.{secrets.token_hex(3)}@{layout.PRIMARY_DOMAIN}"
    lab.conn.modify(dn, replace={"mail": changed})
    lab.cycle()
    assert lab.cloud(dn)["mail"] == changed  # no proxyAddresses on-premises: mail decides

    lab.store.update_object(object_id=user["id"], properties={
        "assignedLicenses": [{"skuId": str(uuid.uuid4()), "disabledPlans": []}]})
    licensed = lab.cycle()
    mailbox = lab.store.get_recipient_by_object_id(object_id=user["id"])
    assert mailbox["RecipientTypeDetails"] == "UserMailbox"
    on_prem = lab.conn.read(dn, attributes=["proxyAddresses", "msDS-ExternalDirectoryObjectId"])
    assert on_prem.get("proxyAddresses") == [f"x500:{mailbox['LegacyExchangeDN']}"]
    assert on_prem.first("msDS-ExternalDirectoryObjectId") == f"User_{user['id']}"
    assert licensed.writebacks["x500"] == 1

    lab.cycle()  # imports the writeback
    ignored = f"ignored.{secrets.token_hex(3)}@{layout.PRIMARY_DOMAIN}"
    lab.conn.modify(dn, replace={"mail": ignored})
    lab.cycle()
    assert lab.cloud(dn)["mail"] == changed
    assert lab.store.get_recipient_by_object_id(object_id=user["id"])["PrimarySmtpAddress"] == changed

    lab.conn.modify(dn, add={"proxyAddresses": [f"SMTP:{ignored}"]})  # the fix the field notes give
    lab.cycle()
    assert lab.cloud(dn)["mail"] == ignored


# --- export errors -------------------------------------------------------------------------------


def test_the_scan_s_data_mismatch_prediction_is_the_export_error_the_sync_then_reports(lab: Lab) -> None:
    """Address repair predicts Connect Health's Data Mismatch before the export (a new contact whose primary
    SMTP address a cloud-only user holds: the soft match finds an object of another type); the delta cycle
    then fails that export with ObjectTypeMismatch, and the scan reading today's export errors files the
    real error under the same category, on the same object."""
    from diagnostics_app.addresses.collect import read_export_errors
    from diagnostics_app.addresses.rules import CloudObject, ScanConfig, entry, evaluate
    from portal.connectors.sync import ExportError as SyncExportError

    address = f"partner.desk.{secrets.token_hex(3)}@{layout.PRIMARY_DOMAIN}"
    cloud = lab.store.create_user(user_principal_name=f"desk.{secrets.token_hex(3)}@{layout.PRIMARY_DOMAIN}",
                                  display_name="Partner Desk", mail=address, proxy_addresses=[f"SMTP:{address}"])
    dn = ad.child_dn(layout.contacts_ou(lab.base), "CN", f"Partner Desk {secrets.token_hex(3)}")
    lab.conn.add(dn, object_class=("top", "person", "organizationalPerson", "contact"), attributes={
        "displayName": "Partner Desk", "mail": address, "mailNickname": f"pdesk{secrets.token_hex(3)}",
        "proxyAddresses": [f"SMTP:{address}"], "targetAddress": f"SMTP:{address}"})
    read = lab.conn.read(dn, attributes=["objectClass", "displayName", "mail", "mailNickname", "proxyAddresses",
                                         "targetAddress"])
    before = entry(dn=dn, object_class=read.get("objectClass"),
                   attributes={a: read.get(a) for a in ("displayName", "mail", "mailNickname", "proxyAddresses",
                                                        "targetAddress")})
    tenant = [CloudObject(id=cloud["id"], kind="user", display_name="Partner Desk", mail=address,
                          user_principal_name=cloud["userPrincipalName"], proxy_addresses=(f"SMTP:{address}",))]
    found, _ = evaluate([before], config=ScanConfig(), tenant=tenant)
    predicted = [f for f in found if f.rule == "soft_match"]
    assert [(f.category, f.severity) for f in predicted] == [("Data Mismatch", "error")]
    assert "ObjectTypeMismatch" in predicted[0].explanation

    lab.cycle()
    errors = [e for e in lab.store.list_export_errors() if e["DistinguishedName"] == dn]
    assert [e["ErrorCode"] for e in errors] == ["ObjectTypeMismatch"]
    assert lab.cloud(dn) is None  # nothing of the contact reached the cloud

    # What the scan job reads from the sync server (Get-ADSyncExportError through the connector).
    server = SimpleNamespace(export_errors=lambda: [SyncExportError.from_dict(e) for e in errors])
    found, _ = evaluate([before], config=ScanConfig(export_errors=tuple(read_export_errors(server))), tenant=tenant)
    real = [f for f in found if f.rule == "export_error"]
    assert [(f.dn, f.category) for f in real] == [(dn, predicted[0].category)]
    lab.conn.delete(dn)


def test_data_validation_failed_for_a_lower_case_x509_certificate_user_id_until_fixed(lab: Lab) -> None:
    """DataValidationFailed (field notes, certificateUserIds doc: the X509: prefix is case-sensitive): the
    object does not export at all; the error is cleared when the value is fixed on-premises."""
    wrong = lab.manifest.scenario("certificate_user_ids_lowercase_x509").objects
    right = lab.manifest.first("certificate_user_ids_uppercase_x509")
    lab.cycle()  # one cycle after the initial one, whatever ran before this test: the error is retried
    errors = {e["DistinguishedName"]: e for e in lab.store.list_export_errors()}
    for item in wrong:
        error = errors[item.dn]
        assert error["ErrorCode"] == "DataValidationFailed" and "[None]" in error["Message"]
        assert error["RetryCount"] >= 1  # retried at every cycle since the initial one
        assert lab.cloud(item.dn) is None
    value = right.facts["attributes"][seeder.CERTIFICATE_USER_IDS_ATTRIBUTE]
    assert lab.cloud(right.dn)["authorizationInfo"]["certificateUserIds"] == value

    fixed = wrong[0]
    bad = fixed.facts["attributes"][seeder.CERTIFICATE_USER_IDS_ATTRIBUTE][0]
    good = "X509:" + bad.split(":", 1)[1]
    lab.conn.modify(fixed.dn, replace={seeder.CERTIFICATE_USER_IDS_ATTRIBUTE: [good]})
    result = lab.cycle()
    assert fixed.dn not in {e.distinguished_name for e in result.export_errors}
    assert fixed.dn not in {e["DistinguishedName"] for e in lab.store.list_export_errors()}
    assert lab.cloud(fixed.dn)["authorizationInfo"]["certificateUserIds"] == [good]
    assert {e["DistinguishedName"] for e in lab.store.list_export_errors()} >= {o.dn for o in wrong[1:]}


# --- group writeback v2 ------------------------------------------------------------------------


def _cloud_groups(lab: Lab) -> dict[str, dict[str, Any]]:
    tag = secrets.token_hex(3)
    m365 = lab.store.create_group(
        display_name='#1 Sales, EMEA + Partners <Core>; "Q1" \\ R&D=Go', mail_enabled=True,
        security_enabled=False, group_types=["Unified"], mail=f"sales-emea-{tag}@{layout.PRIMARY_DOMAIN}",
        mail_nickname=f"sales-emea-{tag}", proxy_addresses=[f"SMTP:sales-emea-{tag}@{layout.PRIMARY_DOMAIN}"])
    security = lab.store.create_group(
        display_name="Cloud Security Reviewers and Auditors of the Extended Leadership Team", security_enabled=True,
        extra={"writebackConfiguration": {"isEnabled": True, "onPremisesGroupType": "universalSecurityGroup"}})
    member = lab.cloud(lab.manifest.scenario("remote_mailbox_users").objects[5].dn)
    lab.store.add_member(group_id=security["id"], member_id=member["id"])
    not_enabled = lab.store.create_group(display_name="Cloud Security Not Written Back", security_enabled=True)
    return {"m365": m365, "security": security, "member": member, "not_enabled": not_enabled}


def test_group_writeback_dn_formats_rename_on_option_change_then_disabling_deletes_but_not_in_staging(lab: Lab) -> None:
    """Group writeback v2: CN=Group_<objectId>; with "Writeback Group Distinguished Name with cloud Display
    Name" CN=<displayName>_<last 12 of objectId> (escaped, cut to fit cn's 64 characters); changing the
    option renames the groups (same objectGUID) instead of deleting them. Then "Disabling group writeback
    causes any groups that this feature created previously to be deleted ... on the next sync cycle" --
    except in staging mode (field notes), where nothing is exported and the deletions wait as pending
    exports; groups never joined to a cloud group are left alone. One test: the groups are its own."""
    groups = _cloud_groups(lab)
    ou = layout.writeback_ou(lab.base)
    result = lab.cycle()
    assert result.writebacks["group_adds"] == 2 and result.cloud_writes == 0
    m365 = lab.conn.read(ad.child_dn(ou, "CN", f"Group_{groups['m365']['id']}"))
    security = lab.conn.read(ad.child_dn(ou, "CN", f"Group_{groups['security']['id']}"))
    assert m365.first("groupType") == "8" and m365.first("mail") == groups["m365"]["mail"]
    assert m365.first("msDS-ExternalDirectoryObjectId") == f"Group_{groups['m365']['id']}"
    assert security.first("groupType") == "-2147483640" and not security.get("mail")
    assert [ad.parse_dn(d).normalized() for d in security.get("member")] == [
        ad.parse_dn(groups["member"]["onPremisesDistinguishedName"]).normalized()]
    assert not list(lab.conn.search(filter=ad.eq("msDS-ExternalDirectoryObjectId",
                                                 f"Group_{groups['not_enabled']['id']}"), base=ou))
    assert lab.cycle().ad_writes == 0  # written back once, then stable

    renamed = lab.cycle(writeback_display_name=True)
    assert renamed.writebacks["group_renames"] == 2 and renamed.writebacks["group_deletes"] == 0
    for key, before in (("m365", m365), ("security", security)):
        cn = sync.writeback_cn(object_id=groups[key]["id"], display_name=groups[key]["displayName"],
                               with_display_name=True)
        assert len(cn) <= 64 and cn.endswith("_" + groups[key]["id"][-12:])
        after = lab.conn.read(ad.child_dn(ou, "CN", cn), attributes=["objectGUID", "cn"])
        assert after.guid == before.guid and after.first("cn") == cn
    assert cn.startswith(groups["security"]["displayName"][:51])  # 51 + "_" + 12 = 64
    escaped = ad.child_dn(ou, "CN", sync.writeback_cn(object_id=groups["m365"]["id"],
                                                        display_name=groups["m365"]["displayName"],
                                                        with_display_name=True))
    assert escaped.startswith("CN=\\#1 Sales\\, EMEA \\+ Partners \\<Core\\>\\; \\\"Q1\\\" \\\\ R&D\\=Go_")
    assert lab.cycle(writeback_display_name=True).ad_writes == 0

    ids = [groups["m365"]["id"], groups["security"]["id"]]

    def written_back() -> set[str]:
        flt = ad.starts_with("msDS-ExternalDirectoryObjectId", "Group_")
        return {o.first("msDS-ExternalDirectoryObjectId")[6:] for o in lab.conn.search(filter=flt, base=ou)}

    staged = lab.cycle(group_writeback_enabled=False, writeback_display_name=True, staging_mode=True)
    assert (staged.ad_writes, staged.cloud_writes) == (0, 0)
    assert set(ids) <= written_back()
    pending = [p for p in lab.store.list_pending_exports() if p["Operation"] == "Delete"]
    assert {p["ObjectId"] for p in pending} == set(ids)

    disabled = lab.cycle(group_writeback_enabled=False, writeback_display_name=True)
    assert disabled.writebacks["group_deletes"] == 2
    remaining = written_back()
    assert not set(ids) & remaining
    assert len(remaining) == len(lab.manifest.dns("written_back_groups"))  # the seed's, never joined
    assert lab.store.list_pending_exports() == []
    for oid in ids:
        assert lab.store.get_object(object_id=oid) is not None  # the cloud groups stay


# --- the sync server -----------------------------------------------------------------------------


def test_sync_runner_records_runs_and_refuses_a_second_cycle(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Start-ADSyncSyncCycle: one cycle at a time ("Sync is already running..."), each in the run history;
    the scheduler's interval decides when the next one is due."""
    monkeypatch.setattr(sync.runner, "_runner", None)
    sync.configure_runner(directory_factory=lambda: ad.ActiveDirectory(lab.settings),
                          store_factory=lambda: CloudStore.open(data_dir=lab.store.path.parent), base_dn=lab.base,
                          options=sync.SyncOptions(latency_seconds=1.0))
    # The cycle's latency is its one sleep: held until the test releases it, so the second cycle meets a
    # running one for certain (not for as long as a real second lasts).
    in_latency, release, latencies = threading.Event(), threading.Event(), []

    def held(seconds: float) -> None:
        latencies.append(seconds)
        in_latency.set()
        assert release.wait(30), "the test never released the cycle"

    monkeypatch.setattr(sync.cycle, "time", SimpleNamespace(monotonic=time.monotonic, sleep=held))
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(sync.sync_runner("Delta")))
    thread.start()
    try:
        assert in_latency.wait(20), "the first cycle did not start"
        assert lab.store.sync_runs(limit=1)[0]["state"] == "running"
        with pytest.raises(sync.SyncAlreadyRunning, match="Sync is already running"):
            sync.sync_runner("Delta")
        with pytest.raises(sync.SyncAlreadyRunning, match="Sync is already running"):
            lab.cycle()
    finally:
        release.set()
        thread.join(30)
    assert not thread.is_alive() and latencies == [1.0]
    assert outcome["Result"] in ("success", "completed-export-errors") and outcome["effective_policy"] == "Delta"
    [run] = lab.store.sync_runs(limit=1)
    assert run["state"] == "succeeded" and run["result"]["Result"] == outcome["Result"]

    # the lab cloud's Start-ADSyncSyncCycle records the run itself, then calls the runner, which adopts it
    cloud = LabCloud(data_dir=lab.store.path.parent, tenant_id=lab.store.tenant_id or "",
                     initial_domain=layout.TENANT_DOMAIN, sync_runner=sync.sync_runner, onprem_runner=None,
                     public_base_url=None, token_lifetime=3599, sync_in_background=False)
    assert cloud.cmd_start_adsync_sync_cycle({"PolicyType": "Delta"}, None) == [{"Result": "Success"}]
    [run] = lab.store.sync_runs(limit=1)
    assert run["state"] == "succeeded" and run["result"]["run_id"] == run["id"]

    started = parse_datetime(run["started"])
    assert not sync.due(lab.store, now=started + timedelta(minutes=29))
    assert sync.due(lab.store, now=started + timedelta(minutes=31))
    lab.store.update_scheduler(SyncCycleEnabled=False)
    assert not sync.due(lab.store, now=started + timedelta(hours=2))
    lab.store.update_scheduler(SyncCycleEnabled=True)


def test_source_anchor_is_the_base64_object_guid_written_back_as_consistency_guid(lab: Lab) -> None:
    """sourceAnchor = ms-DS-ConsistencyGuid (written back from objectGUID when empty) = immutableId."""
    dn = lab.manifest.first("remote_mailbox_users").dn
    obj = lab.conn.read(dn, attributes=["objectGUID", "mS-DS-ConsistencyGuid"])
    assert obj.first("mS-DS-ConsistencyGuid") == obj.guid.bytes_le
    assert lab.cloud(dn)["onPremisesImmutableId"] == base64.b64encode(obj.guid.bytes_le).decode()


# --- source of authority handed to the cloud ---------------------------------------------------


def test_cloud_managed_list_ignores_ad_until_handed_back_and_an_old_client_reverts_it(lab: Lab) -> None:
    """"Configure Group Source of Authority": with Connect Sync 2.5.76.0+ an AD change stops reaching a group
    whose ``isCloudManaged`` is true and ``onPremisesSyncEnabled`` is cleared at the next cycle (Exchange Online
    shows it as not synced); false hands it back and the next cycle re-applies AD's values. A client older than
    2.5.76.0 knows nothing of the flag: its next cycle overwrites the cloud and the conversion is gone."""
    from portal.lab.cloud.store.common import CLOUD_MANAGED_KEY

    dn = lab.manifest.first("distribution_lists_flat").dn
    group = lab.cloud(dn)
    members = set(lab.store.member_ids(group_id=group["id"]))
    assert group["onPremisesSyncEnabled"] is True and len(members) > 1
    lab.store.update_object(object_id=group["id"], properties={CLOUD_MANAGED_KEY: True})
    try:
        first = lab.cycle()
        assert first.cloud_managed >= 1 and first.cloud_managed_reverted == []
        after = lab.store.get_object(object_id=group["id"])
        assert "onPremisesSyncEnabled" not in after  # null in Graph
        assert lab.store.get_recipient_by_object_id(object_id=group["id"])["IsDirSynced"] is False

        # an AD change no longer flows; a cloud change stays
        lab.conn.modify(dn, replace={"description": "edited on-premises after the conversion"})
        dropped = next(iter(members))
        lab.store.remove_member(group_id=group["id"], member_id=dropped)
        lab.cycle()
        cloud = lab.store.get_object(object_id=group["id"])
        assert cloud.get("description") != "edited on-premises after the conversion"
        assert dropped not in lab.store.member_ids(group_id=group["id"])
        assert "onPremisesSyncEnabled" not in cloud

        # an old client overwrites it at its next cycle
        lab.store.set_connect_version(version="2.4.131.0")
        old = lab.cycle()
        assert old.cloud_managed_reverted == [group["id"]]
        reverted = lab.store.get_object(object_id=group["id"])
        assert reverted["onPremisesSyncEnabled"] is True and CLOUD_MANAGED_KEY not in reverted
        assert reverted["description"] == "edited on-premises after the conversion"
        assert set(lab.store.member_ids(group_id=group["id"])) == members
        assert lab.store.get_recipient_by_object_id(object_id=group["id"])["IsDirSynced"] is True
        lab.store.set_connect_version(version="2.5.79.0")

        # convert again, then hand back: the next cycle re-applies AD's values
        lab.store.update_object(object_id=group["id"], properties={CLOUD_MANAGED_KEY: True})
        lab.cycle()
        lab.store.remove_member(group_id=group["id"], member_id=dropped)
        lab.store.update_object(object_id=group["id"], properties={CLOUD_MANAGED_KEY: False})
        back = lab.cycle()
        assert back.cloud_managed_reverted == []
        taken = lab.store.get_object(object_id=group["id"])
        assert taken["onPremisesSyncEnabled"] is True and CLOUD_MANAGED_KEY not in taken
        assert set(lab.store.member_ids(group_id=group["id"])) == members
        assert lab.store.get_recipient_by_object_id(object_id=group["id"])["IsDirSynced"] is True
    finally:
        lab.store.set_connect_version(version="2.5.79.0")
        lab.store.update_object(object_id=group["id"], properties={CLOUD_MANAGED_KEY: None})
