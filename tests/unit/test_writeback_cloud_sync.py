"""Cloud Sync readiness of written-back groups, by the limits Microsoft documents for Cloud Sync's group
provisioning to AD: security groups only, mail-enabled groups and distribution lists not supported, at most
50,000 members, member groups in scope too, universal scope, the target OU and cn mappings, AdminSDHolder."""

from __future__ import annotations

from dataclasses import replace

import pytest

from diagnostics_app.writeback.choices import CloudSyncVerdict
from diagnostics_app.writeback.cloud_sync import MEMBER_LIMIT, SOURCES, GroupFacts, Members, readiness

OU = "OU=GroupWriteback,DC=lab,DC=example"
OID = "44c6ff41-bf76-4f40-a2a3-5faa6569b75d"
SECURITY = GroupFacts(object_id=OID, display_name="Sales", current_dn=f"CN=Group_{OID},{OU}", container=OU,
                      mail_enabled=False, security_enabled=True, unified=False, on_premises_sync_enabled=False,
                      on_premises_group_type="universalSecurityGroup",
                      members=Members(total=3, synced_users=2, cloud_users=1))


def _text(notes: list[str]) -> str:
    return " | ".join(notes)


def test_a_plain_cloud_security_group_is_ready_with_what_to_map() -> None:
    verdict, notes = readiness(SECURITY)
    text = _text(notes)
    assert verdict == CloudSyncVerdict.READY
    assert "3 direct member(s): 2 synchronized user(s), 1 cloud-only user(s), 0 group(s)" in text
    assert f"map the target container (parentDistinguishedName) to {OU}" in text and "OU=Users" in text
    # Cloud Sync's default cn mapping would rename a group still called Group_<objectId>
    assert f"would rename it from Group_{OID} to Sales_{OID[-12:]}" in text
    renamed = readiness(replace(SECURITY, current_dn=f"CN=Sales_{OID[-12:]},{OU}"))[1]
    assert "already has Cloud Sync's default form" in _text(renamed)
    assert all("[source " in n for n in notes if not n[0].isdigit()), notes  # every rule names its source


@pytest.mark.parametrize(("change", "reason"), [
    ({"mail_enabled": True}, "mail-enabled groups and distribution lists written back by Connect Sync"),
    ({"mail_on_prem": True}, "mail-enabled"),
    ({"unified": True, "security_enabled": False}, "a Microsoft 365 group"),
    ({"security_enabled": False}, "not a security group"),
    ({"on_premises_sync_enabled": True}, "synchronized from AD"),
    ({"members": Members(total=MEMBER_LIMIT + 1, capped=True)}, f"more than {MEMBER_LIMIT:,} members"),
])
def test_what_cloud_sync_cannot_take_over(change, reason) -> None:
    verdict, notes = readiness(replace(SECURITY, **change))
    assert verdict == CloudSyncVerdict.STAYS and reason in _text(notes)


def test_what_must_be_prepared_first() -> None:
    nested = Members(total=3, synced_users=1, groups=((OID, "Team A", True), ("x", "Mail list", False)), other=1)
    verdict, notes = readiness(replace(SECURITY, members=nested, admin_count=True,
                                       on_premises_group_type="universalMailEnabledSecurityGroup"))
    text = _text(notes)
    assert verdict == CloudSyncVerdict.PREPARE
    assert "2 member group(s) (Team A, Mail list): put them in the configuration's scope too" in text
    assert "member group(s) that are not cloud security groups (Mail list)" in text
    assert "1 member(s) neither users nor groups" in text
    assert "adminCount is 1" in text and "written back as universalMailEnabledSecurityGroup" in text


def test_unknown_members_and_no_cloud_group() -> None:
    verdict, notes = readiness(replace(SECURITY, members=None))
    assert verdict == CloudSyncVerdict.READY and "members not read: check the size" in _text(notes)
    assert readiness(None)[0] == CloudSyncVerdict.STAYS


def test_the_sources_are_microsoft_pages() -> None:
    assert all(url.startswith("https://learn.microsoft.com/entra/") for _, url in SOURCES.values())
