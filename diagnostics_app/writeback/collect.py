"""Reads a writeback rename plan needs: AD (the writeback OU, written-back groups elsewhere, the DACLs the
portal may read) and Entra ID (each written-back group and its beta writebackConfiguration).

The job calls :func:`collect` with open connectors; the rows come from :func:`.plan.build_plan`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from portal.connectors import ad
from portal.connectors.ad.security import dacl_trustees
from portal.connectors.graph import MEMBER_KIND_SELECT, EntraGraph
from portal.connectors.graph.errors import NotFound as GraphNotFound

from .cloud_sync import MEMBER_LIMIT, Members
from .plan import AD_ATTRIBUTES, BuiltPlan, CloudGroup, build_plan, written_back_id

GROUP_SELECT = ["id", "displayName", "mailEnabled", "securityEnabled", "groupTypes", "onPremisesSyncEnabled"]
# Containers whose permissions commonly name groups (delegations on OUs, the domain head, containers):
# reading every object's descriptor would not scale, and they hold the delegations that matter.
ACL_CLASSES = ("organizationalUnit", "container", "domainDNS", "group")


class Reporter(Protocol):
    def info(self, message: str, **kw: Any) -> None: ...
    def warning(self, message: str, **kw: Any) -> None: ...
    def progress(self, done: int, total: int | None = None) -> None: ...


@dataclass(frozen=True)
class CollectOptions:
    container: str
    base_dn: str
    acl_limit: int = 5_000


def read_members(graph: EntraGraph, object_id: str) -> Members:
    """The direct members as Cloud Sync's group provisioning sees them; counting stops past its 50,000 limit."""
    total = synced = cloud_users = other = 0
    groups: list[tuple[str, str, bool]] = []
    for member in graph.iter_group_members(object_id, select=MEMBER_KIND_SELECT):
        total += 1
        if total > MEMBER_LIMIT:
            return Members(total=total, capped=True, synced_users=synced, cloud_users=cloud_users,
                           groups=tuple(groups), other=other)
        if member.kind == "user":
            if member.on_premises_sync_enabled:
                synced += 1
            else:
                cloud_users += 1
        elif member.kind == "group":
            cloud_security = bool(member.security_enabled and not member.mail_enabled
                                  and not member.on_premises_sync_enabled and "Unified" not in member.group_types)
            groups.append((member.id, member.display_name or "", cloud_security))
        else:
            other += 1
    return Members(total=total, synced_users=synced, cloud_users=cloud_users, groups=tuple(groups), other=other)


def read_cloud_group(graph: EntraGraph, object_id: str) -> CloudGroup | None:
    try:
        group = graph.get_group(object_id, select=GROUP_SELECT)
        writeback = graph.group_writeback(object_id)
        members = read_members(graph, object_id)
    except GraphNotFound:
        return None
    return CloudGroup(id=group.id, display_name=group.display_name, mail_enabled=group.mail_enabled,
                      security_enabled=group.security_enabled, group_types=tuple(group.group_types),
                      writeback_enabled=writeback.is_enabled,
                      on_premises_group_type=writeback.on_premises_group_type,
                      on_premises_sync_enabled=group.on_premises_sync_enabled, members=members)


def read_writeback_ou(directory: ad.ActiveDirectory, container: str) -> list[ad.DirectoryObject]:
    return list(directory.search(filter=ad.MATCH_ALL, base=container, attributes=AD_ATTRIBUTES))


def read_written_back_elsewhere(directory: ad.ActiveDirectory, base_dn: str) -> list[ad.DirectoryObject]:
    flt = ad.all_of(ad.object_class("group"), ad.starts_with("msDS-ExternalDirectoryObjectId", "Group_"))
    return list(directory.search(filter=flt, base=base_dn, attributes=AD_ATTRIBUTES))


def acl_index(directory: ad.ActiveDirectory, base_dn: str, sids: Iterable[str], *, limit: int
              ) -> tuple[dict[str, list[str]], int, bool]:
    """SID -> DNs whose DACL names it, for the given SIDs; the number of descriptors read; whether the
    limit stopped the reading."""
    wanted = set(sids)
    index: dict[str, list[str]] = {}
    read = 0
    flt = ad.any_of(*(ad.object_class(c) for c in ACL_CLASSES))
    for obj in directory.search(filter=flt, base=base_dn, attributes=["nTSecurityDescriptor"], limit=limit + 1):
        read += 1
        if read > limit:
            return index, limit, True
        sd = obj.first("nTSecurityDescriptor")
        if not isinstance(sd, bytes):
            continue
        for sid in dacl_trustees(sd) & wanted:
            index.setdefault(sid, []).append(obj.dn)
    return index, read, False


def collect(directory: ad.ActiveDirectory, graph: EntraGraph, *, options: CollectOptions,
            reporter: Reporter) -> BuiltPlan:
    reporter.info(f"Reading the writeback OU {options.container}…")
    in_ou = read_writeback_ou(directory, options.container)
    reporter.info(f"{len(in_ou):,} object(s) in the OU. Looking for written-back groups elsewhere in the domain…")
    outside = [o for o in read_written_back_elsewhere(directory, options.base_dn)
               if not ad.parse_dn(o.dn).is_within(options.container)]
    if outside:
        reporter.warning(f"{len(outside):,} written-back group(s) outside the writeback OU: listed apart.")
    ids = [oid for oid in (written_back_id(o) for o in [*in_ou, *outside]) if oid]
    reporter.info(f"Reading {len(ids):,} cloud group(s), their writeback settings and members (for Cloud Sync's "
                  "limits) from Microsoft Graph…")
    cloud: dict[str, CloudGroup | None] = {}
    for n, oid in enumerate(ids, 1):
        cloud[oid] = read_cloud_group(graph, oid)
        reporter.progress(n, len(ids))
    missing = [oid for oid, g in cloud.items() if g is None]
    if missing:
        reporter.warning(f"{len(missing):,} written-back group(s) have no cloud group: the switch leaves them alone.")
    sids = [o.sid for o in in_ou if o.sid]
    reporter.info("Reading the permissions of OUs, containers and groups the portal may read…")
    index, read, stopped = acl_index(directory, options.base_dn, sids, limit=options.acl_limit)
    note = (f"Permissions read on {read:,} OUs, containers and groups"
            + (f" (stopped at the limit of {options.acl_limit:,}: the rest is unchecked)" if stopped else "")
            + "; file shares, GPO security filtering and applications naming groups are invisible to the directory "
              "and stay a manual check.")
    reporter.info(note)
    return build_plan(container=options.container, in_ou=in_ou, outside=outside, cloud=cloud, acl_index=index,
                      acl_note=note)
