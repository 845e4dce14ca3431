"""Whether Microsoft Entra Cloud Sync's group provisioning to AD can take a written-back group over, judged by the
limits Microsoft documents (pure: no connection, no ORM).

Group writeback v2 of Connect Sync is retired; Cloud Sync's "Group Provision to AD" is its successor. What it
takes, from Microsoft's pages listed in :data:`SOURCES` (each note names the source it rests on):

* only cloud-created security groups: its default scope is ``securityEnabled`` true, ``mailEnabled`` false and
  ``dirSyncEnabled`` false; mail-enabled groups and distribution lists written back by Connect Sync are not
  supported; Microsoft 365 groups stay on group writeback v1;
* written back with universal scope (Cloud Sync writes universal groups);
* at most 50,000 members, each direct child group counting as one; members only users synchronized from AD and
  cloud security groups; a member group is provisioned without its members unless it is in scope too;
* scope by "All security groups" or "Selected security groups"; the target OU is the ``parentDistinguishedName``
  mapping, by default ``OU=Users`` of the domain, so a group moved to Cloud Sync must get its OU mapped;
* its ``cn`` mapping is ``Left(Trim(displayName), 51)`` + ``_`` + the last 12 characters of the object id: the
  display-name form the rename switches to; a group still named ``Group_<objectId>`` would be renamed;
* it joins existing groups by ``msDS-ExternalDirectoryObjectId`` ``Group_<objectId>``;
* the provisioning agent's permissions are not applied to AdminSDHolder-protected objects (``adminCount`` 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.connectors.ad import parse_dn
from portal.directory import writeback_names as wn

from .choices import CloudSyncVerdict

MEMBER_LIMIT = 50_000  # "groups that are larger than 50,000 members aren't supported"
NAMES_SHOWN = 5

# number -> (title, address, the sections a note cites)
SOURCES: dict[int, tuple[str, str]] = {
    1: ("Provision groups to Active Directory using Microsoft Entra Cloud Sync",
        "https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-configure-entra-to-active-directory"),
    2: ("Migrate Microsoft Entra Connect Sync group writeback V2 to Microsoft Entra Cloud Sync",
        "https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/migrate-group-writeback"),
    3: ("Govern on-premises Active Directory based apps (Kerberos) using Microsoft Entra ID Governance",
        "https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/govern-on-premises-groups"),
    4: ("Group writeback in the Microsoft Entra admin center",
        "https://learn.microsoft.com/entra/identity/users/groups-write-back-portal"),
}

# What Cloud Sync needs before any group moves (shown above the table, with the same sources).
PREREQUISITES: tuple[str, ...] = (
    "Microsoft Entra ID P1 licences; the provisioning agent 1.1.1370.0 or later; AD on Windows Server 2016 or later "
    "(the schema's msDS-ExternalDirectoryObjectId) [source 1, Prerequisites]",
    "Microsoft Entra Connect 2.2.8.0 or later, so synchronized users carry onPremisesObjectIdentifier and can be "
    "members [source 1, Prerequisites]",
    "each group's msDS-ExternalDirectoryObjectId set to Group_<objectId> (copied from adminDescription) and the "
    "groups taken out of Connect Sync's scope in staging mode before Cloud Sync takes them [source 2, Steps 1-6]",
    "Group writeback v2 public preview in Connect Sync ended on 30 June 2024; Microsoft 365 groups keep group "
    "writeback v1 [source 4]",
)


@dataclass(frozen=True)
class Members:
    """A group's direct members as Cloud Sync would see them (counted up to MEMBER_LIMIT + 1)."""

    total: int
    capped: bool = False  # counting stopped above the limit
    synced_users: int = 0
    cloud_users: int = 0
    groups: tuple[tuple[str, str, bool], ...] = ()  # (object id, display name, is a cloud-created security group)
    other: int = 0  # contacts, devices, service principals

    def summary(self) -> str:
        total = f"more than {MEMBER_LIMIT:,}" if self.capped else f"{self.total:,}"
        return (f"{total} direct member(s): {self.synced_users:,} synchronized user(s), {self.cloud_users:,} "
                f"cloud-only user(s), {len(self.groups):,} group(s), {self.other:,} other")


@dataclass(frozen=True)
class GroupFacts:
    """What the verdict reads of one written-back group."""

    object_id: str
    display_name: str | None
    current_dn: str
    container: str
    mail_enabled: bool | None
    security_enabled: bool | None
    unified: bool
    on_premises_sync_enabled: bool | None
    on_premises_group_type: str | None
    mail_on_prem: bool = False
    admin_count: bool = False  # adminCount 1 in AD: protected by AdminSDHolder
    members: Members | None = None


def _names(groups: tuple[tuple[str, str, bool], ...]) -> str:
    shown = ", ".join(name or oid for oid, name, _ in groups[:NAMES_SHOWN])
    return shown + (f" and {len(groups) - NAMES_SHOWN} more" if len(groups) > NAMES_SHOWN else "")


def readiness(facts: GroupFacts | None) -> tuple[str, list[str]]:
    """The verdict (:class:`CloudSyncVerdict`) and, one sentence each, why and what to do, with its source."""
    if facts is None:
        return CloudSyncVerdict.STAYS, ["no cloud group found: nothing for Cloud Sync to provision"]
    stays: list[str] = []
    prepare: list[str] = []
    notes: list[str] = []
    if facts.unified:
        stays.append("a Microsoft 365 group: Cloud Sync provisions cloud-created security groups only "
                     "[source 1, Supported groups]; Microsoft 365 groups keep group writeback v1 [source 4]")
    elif facts.mail_enabled or facts.mail_on_prem:
        stays.append("mail-enabled: mail-enabled groups and distribution lists written back by Connect Sync are not "
                     "supported [source 2]; keep it on Connect Sync, or give its on-premises uses a new cloud "
                     "security group and leave mail to this one")
    elif not facts.security_enabled:
        stays.append("not a security group: Cloud Sync's scope is securityEnabled true, mailEnabled false "
                     "[source 1, The default security grouping]")
    if facts.on_premises_sync_enabled:
        stays.append("synchronized from AD (dirSyncEnabled): Cloud Sync provisions cloud-created groups only "
                     "[source 1, The default security grouping]")
    members = facts.members
    if members is not None and (members.capped or members.total > MEMBER_LIMIT):
        stays.append(f"more than {MEMBER_LIMIT:,} members: not supported [source 1, Supported groups]; split it")
    if stays:
        return CloudSyncVerdict.STAYS, stays

    if facts.on_premises_group_type not in (None, "", "universalSecurityGroup"):
        prepare.append(f"written back as {facts.on_premises_group_type}: Cloud Sync takes over security groups "
                       "written back with universal scope only [source 2]")
    if facts.admin_count:
        prepare.append("adminCount is 1 (AdminSDHolder protects it, through a protected group it is or was in): "
                       "the provisioning agent's permissions are not applied to such objects [source 1, "
                       "Prerequisites]; take it out of the protected group and clear adminCount, or grant them")
    if members is None:
        notes.append("members not read: check the size (at most 50,000) and member groups by hand "
                     "[source 1, Supported groups]")
    else:
        notes.append(members.summary())
        if members.groups:
            prepare.append(f"{len(members.groups)} member group(s) ({_names(members.groups)}): put them in the "
                           "configuration's scope too, or they are provisioned without their members; each counts "
                           "as one member [source 1, Scope provisioning to specific groups]")
            unfit = tuple(g for g in members.groups if not g[2])
            if unfit:
                prepare.append(f"member group(s) that are not cloud security groups ({_names(unfit)}): Cloud "
                               "Sync groups contain only synchronized users and cloud security groups [source 1, "
                               "Supported groups]")
        if members.other:
            prepare.append(f"{members.other} member(s) neither users nor groups (contacts, devices): Cloud Sync "
                           "does not provision them as members [source 1, Supported groups]")
        if members.cloud_users:
            notes.append(f"{members.cloud_users} cloud-only user member(s) have no AD account: as today, they are "
                         "not members in AD; Cloud Sync writes only users synchronized from AD [source 1, "
                         "Supported groups]")

    notes.append("scope it: Selected security groups (or All security groups) in the Entra ID to AD configuration "
                 "[source 1, Scope provisioning to specific groups]")
    notes.append(f"map the target container (parentDistinguishedName) to {facts.container}: the default is "
                 "OU=Users of the domain, which would move the group [source 1, Schema for Entra ID to AD "
                 "configurations]")
    try:
        current_cn = str(parse_dn(facts.current_dn).rdn_value)
    except ValueError:
        current_cn = ""
    cloud_cn = wn.display_name_cn(object_id=facts.object_id, display_name=facts.display_name).cn
    if current_cn.casefold() == cloud_cn.casefold():
        notes.append("its cn already has Cloud Sync's default form Left(Trim(displayName),51)_<last 12 of objectId> "
                     "[source 1, Schema]")
    else:
        notes.append(f"Cloud Sync's default cn mapping, Left(Trim(displayName),51)_<last 12 of objectId>, would "
                     f"rename it from {current_cn or '?'} to {cloud_cn}: switch the names first (this plan) or map "
                     "cn to Group_<objectId> [source 1, Schema]")
    if prepare:
        return CloudSyncVerdict.PREPARE, prepare + notes
    return CloudSyncVerdict.READY, ["a cloud security group written back with universal scope [source 2]", *notes]
