"""The cloud side of the scenario seed (portal/lab/cloud_seed.py) over the test suite's seeded lab AD.

One module-scoped tenant: a CloudStore in a temporary directory, an initial sync cycle from the lab AD,
then seed_cloud. The sync cycles run with the Exchange hybrid and ConsistencyGuid writebacks off, so
this private tenant never writes into the shared lab's users; the groups it writes back are deleted
at the end.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from portal.connectors import ad
from portal.connectors.registry import active_directory
from portal.lab import config, layout, sync
from portal.lab.cloud.store import CloudStore
from portal.lab.cloud_seed import CloudManifest, seed_cloud
from portal.lab.seed import Manifest

pytestmark = pytest.mark.integration

# private tenant: leave the shared lab's users alone (see module docstring)
OPTIONS = {"exchange_hybrid": False, "consistency_guid_writeback": False}


@dataclass
class Tenant:
    store: CloudStore
    manifest: Manifest
    cloud: CloudManifest
    synced_copy: Path  # the store as the initial cycle left it, before the cloud seed
    seeded_stats: dict[str, int]  # the store right after the cloud seed (a later test's cycle changes it)


def _events(store: CloudStore, user_id: str) -> list[dict[str, Any]]:
    events = []
    token = None
    while True:
        page = store.list_audit_events(limit=500, token=token)
        events += [e for e in page.items if any(t.get("id") == user_id for t in e["targetResources"])]
        token = page.next_token
        if not token:
            return events


def _activities(store: CloudStore, user_id: str) -> set[str]:
    return {e["activityDisplayName"] for e in _events(store, user_id)}


def _app_detail_updates(store: CloudStore, user_id: str) -> list[dict[str, Any]]:
    return [e for e in _events(store, user_id) if e["activityDisplayName"] == "Update user" and any(
        p["displayName"] == "StrongAuthenticationPhoneAppDetail"
        for t in e["targetResources"] for p in t["modifiedProperties"])]


def _row(store: CloudStore, upn: str) -> dict[str, Any]:
    rows = [r for r in store.list_registration_details(limit=1000).items if r["userPrincipalName"] == upn]
    assert len(rows) == 1
    return rows[0]


@pytest.fixture(scope="module")
def tenant(seeded_lab: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    root = tmp_path_factory.mktemp("cloud-seed")
    store = CloudStore.open(data_dir=root / "main")
    store.set_tenant(tenant_id=str(uuid.uuid4()), initial_domain="contoso.onmicrosoft.com")
    started = time.monotonic()
    with active_directory() as directory:
        sync.run_cycle(directory=directory, store=store, base_dn=config.base_dn(), policy="Initial",
                       options=sync.SyncOptions(**OPTIONS))
    synced = time.monotonic()
    copy = root / "synced.sqlite3"
    with sqlite3.connect(store.path) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    cloud = seed_cloud(store=store, manifest=seeded_lab, seed=1)
    print(f"\ninitial cycle {synced - started:.2f} s, cloud seed {time.monotonic() - synced:.2f} s")
    yield Tenant(store, seeded_lab, cloud, copy, store.stats())
    # the written-back groups of this private tenant must not linger in the shared lab
    with active_directory() as directory:
        for group in cloud.scenarios["cloud_writeback_groups"]:
            dn = ad.child_dn(layout.writeback_ou(config.base_dn()), "CN", group["cn"])
            try:
                directory.delete(dn)
            except ad.NotFound:
                pass


def test_licences(tenant: Tenant) -> None:
    s = tenant.cloud.scenarios
    assert len(s["licensed_users"]) > 10 * len(s["unlicensed_users"]) > 0
    for ref in s["licensed_users"][:20]:
        skus = {lic["skuId"] for lic in tenant.store.get_user(id_or_upn=ref["id"])["assignedLicenses"]}
        assert len(skus) == 2
    for ref in s["unlicensed_users"]:
        assert not tenant.store.get_user(id_or_upn=ref["id"]).get("assignedLicenses")


def test_unverified_authenticator_differs_from_verified_only_by_audit_evidence(tenant: Tenant) -> None:
    store, s = tenant.store, tenant.cloud.scenarios
    assert s["mfa_authenticator_verified"] and s["mfa_authenticator_unverified"]
    types = set()
    for ref in s["mfa_authenticator_verified"] + s["mfa_authenticator_unverified"]:
        methods = store.list_auth_methods(user_id=ref["id"])
        types.add(tuple(sorted(m["@odata.type"] for m in methods)))
        assert ref["authenticator_method_id"] in {m["id"] for m in methods}
        updates = _app_detail_updates(store, ref["id"])
        assert len(updates) == 1 and updates[0]["initiatedBy"]["app"]["displayName"].startswith("Azure MFA")
        assert ref["authenticator_method_id"] in updates[0]["targetResources"][0]["modifiedProperties"][0]["newValue"]
    assert types == {("#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
                      "#microsoft.graph.passwordAuthenticationMethod")}  # the methods list cannot tell them apart
    for ref in s["mfa_authenticator_verified"]:
        assert {"User started security info registration", "User registered security info",
                "User registered all required security info"} <= _activities(store, ref["id"])
        row = _row(store, ref["upn"])
        assert row["isMfaRegistered"] and row["isMfaCapable"] and row["systemPreferredAuthenticationMethods"]
    started = 0
    for ref in s["mfa_authenticator_unverified"]:
        activities = _activities(store, ref["id"])
        assert "User registered security info" not in activities
        assert "User registered all required security info" not in activities
        started += "User started security info registration" in activities
        row = _row(store, ref["upn"])
        assert row["isMfaRegistered"] and not row["isMfaCapable"]
        assert row["methodsRegistered"] == _row(store, s["mfa_authenticator_verified"][0]["upn"])["methodsRegistered"]
    assert 0 < started < len(s["mfa_authenticator_unverified"])  # QR scanned and next pressed, or not even that


def test_other_mfa_states(tenant: Tenant) -> None:
    store, s = tenant.store, tenant.cloud.scenarios
    for ref in s["mfa_none"]:
        assert [m["@odata.type"] for m in store.list_auth_methods(user_id=ref["id"])] == [
            "#microsoft.graph.passwordAuthenticationMethod"]
        assert not _activities(store, ref["id"])
        assert not _row(store, ref["upn"])["isMfaRegistered"]
    for ref in s["mfa_sms_only"]:
        phones = [m for m in store.list_auth_methods(user_id=ref["id"]) if "phone" in m["@odata.type"]]
        assert [p["phoneType"] for p in phones] == ["mobile"]
        row = _row(store, ref["upn"])
        assert row["methodsRegistered"] == ["mobilePhone"]
        assert row["userPreferredMethodForSecondaryAuthentication"] == "sms"
        assert "User registered security info" in _activities(store, ref["id"])
    for ref in s["mfa_fido2"]:
        assert any("fido2" in m["@odata.type"] for m in store.list_auth_methods(user_id=ref["id"]))
        assert _row(store, ref["upn"])["isPasswordlessCapable"]
    for ref in s["mfa_admin_strong"]:
        row = _row(store, ref["upn"])
        assert row["isAdmin"] and row["isMfaCapable"] and ref["role"]
    for ref in s["mfa_admin_weak"]:
        row = _row(store, ref["upn"])
        assert row["isAdmin"] and not row["isMfaCapable"]
    departments = {ref["department"] for state in ("mfa_sms_only", "mfa_authenticator_verified",
                                                   "mfa_authenticator_unverified") for ref in s[state]}
    assert len(departments) >= 3
    # everyone synced has a row (the report covers the whole tenant)
    assert store.list_registration_details(limit=1, with_total=True).total == len(
        [u for u in store.iter_objects(kind="user") if store.source_anchor_of(object_id=u["id"])])


def test_cloud_lists_permissions_domains_and_switch(tenant: Tenant) -> None:
    store, s = tenant.store, tenant.cloud.scenarios
    for entry in s["cloud_lists_nesting_synced_lists"]:
        assert store.source_anchor_of(object_id=entry["id"]) is None
        recipient = store.get_recipient(recipient_id=entry["recipient_id"])
        assert recipient["RecipientTypeDetails"] == "MailUniversalDistributionGroup" and not recipient["IsDirSynced"]
        members = set(store.member_ids(group_id=entry["id"]))
        assert set(entry["nested_synced_lists"]) <= members
        for synced_id in entry["nested_synced_lists"] + [entry["managed_by"], entry["send_on_behalf"]]:
            assert store.source_anchor_of(object_id=synced_id)
        linked = store.recipients_by_object_ids([entry["managed_by"], entry["send_on_behalf"]])
        assert recipient["ManagedBy"] == [linked[entry["managed_by"]]["@id"]]
        assert recipient["GrantSendOnBehalfTo"] == [linked[entry["send_on_behalf"]]["@id"]]
    perms = s["mailbox_sendas_on_synced_groups"]
    assert {p["cloud_only"] for p in perms} == {True, False}
    for p in perms:
        assert {"recipient_id": p["group_recipient_id"], "trustee_id": p["trustee_recipient_id"],
                "access_right": "SendAs"} in store.list_recipient_permissions(recipient_id=p["group_recipient_id"])
    domains = {d["DomainName"] for d in store.list_accepted_domains()}
    assert {"contoso.com", "fabrikam.com", "contoso.mail.onmicrosoft.com", "contoso.onmicrosoft.com"} <= domains
    assert "legacy.local" not in domains
    route_all = [c for c in store.list_outbound_connectors() if c["RouteAllMessagesViaOnPremises"]]
    assert route_all and not any(c["Enabled"] for c in route_all)
    assert store.settings().premium_licence


def test_idempotent_and_deterministic(tenant: Tenant, tmp_path: Path) -> None:
    before = tenant.store.stats()
    again = seed_cloud(store=tenant.store, manifest=tenant.manifest, seed=1)
    assert not again.created and again == tenant.cloud and tenant.store.stats() == before
    twin = CloudStore(tmp_path / "twin.sqlite3")
    with sqlite3.connect(tenant.synced_copy) as src, sqlite3.connect(twin.path) as dst:
        src.backup(dst)
    other = seed_cloud(store=twin, manifest=tenant.manifest, seed=1)
    assert other.created and other.to_json() == tenant.cloud.to_json()
    assert CloudManifest.from_json(other.to_json()) == other
    assert twin.stats() == tenant.seeded_stats
    different = CloudStore(tmp_path / "other.sqlite3")
    with sqlite3.connect(tenant.synced_copy) as src, sqlite3.connect(different.path) as dst:
        src.backup(dst)
    assert seed_cloud(store=different, manifest=tenant.manifest, seed=2).to_json() != tenant.cloud.to_json()


def test_next_cycle_writes_cloud_groups_back(tenant: Tenant) -> None:
    groups = tenant.cloud.scenarios["cloud_writeback_groups"]
    with active_directory() as directory:
        # The shared lab AD may hold these groups already: the session's seeded tenant (same seed, same
        # object ids) writes them back too. This cycle must write them itself.
        for group in groups:
            try:
                directory.delete(ad.child_dn(layout.writeback_ou(config.base_dn()), "CN", group["cn"]))
            except ad.NotFound:
                pass
        result = sync.run_cycle(directory=directory, store=tenant.store, base_dn=config.base_dn(), policy="Delta",
                                options=sync.SyncOptions(**OPTIONS))
        # the AD seed's IdFix cases fail towards the cloud on purpose; nothing may fail towards AD
        assert not [e for e in result.export_errors if not e.connector.endswith(" - AAD")]
        assert result.writebacks["group_adds"] >= len(groups)
        ou = layout.writeback_ou(config.base_dn())
        expected = {g["onPremisesGroupType"]: g for g in groups}
        for target, group in expected.items():
            obj = directory.read(ad.child_dn(ou, "CN", group["cn"]),
                                 attributes=["groupType", "displayName", "member", "msDS-ExternalDirectoryObjectId"])
            assert obj.first("msDS-ExternalDirectoryObjectId") == f"Group_{group['id']}"
            assert obj.first("displayName") == group["displayName"]
            assert int(obj.first("groupType")) == sync.WRITEBACK_GROUP_TYPES[target]
            assert len(obj.attributes.get("member") or []) == 3
    # the cycle kept every cloud-only object of the seed
    for entry in tenant.cloud.scenarios["cloud_lists_nesting_synced_lists"] + groups:
        assert tenant.store.get_object(object_id=entry["id"]) is not None
