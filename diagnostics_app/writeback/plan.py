"""From what AD and Entra ID hold to the rows of a writeback rename plan (pure: no connection, no ORM).

The DN itself comes from :mod:`portal.directory.writeback_names`, the code the lab's sync engine names
groups with. This module decides which groups the switch renames, what each risks and whether Cloud Sync
can take it over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from portal.connectors.ad import DirectoryObject, parse_dn
from portal.directory import writeback_names as wn

from .choices import RowSection
from .cloud_sync import GroupFacts, Members, readiness

# Back-links on a group and the risk each one reveals (the forward link sits on the other object).
BACK_LINK_RISKS: dict[str, str] = {
    "memberOf": "nested",
    "managedObjects": "managed_by",
    "msExchCoManagedObjectsBL": "managed_by",
    "authOrigBL": "delivery_restrictions",
    "unauthOrigBL": "delivery_restrictions",
    "dLMemSubmitPermsBL": "delivery_restrictions",
    "dLMemRejectPermsBL": "delivery_restrictions",
}
AD_ATTRIBUTES = ["cn", "displayName", "objectGUID", "objectSid", "objectClass", "groupType", "mail", "adminCount",
                 "msDS-ExternalDirectoryObjectId", *BACK_LINK_RISKS]
DETAIL_LIMIT = 20  # DNs kept per risk and group: enough to act on, small enough to store per version


@dataclass(frozen=True)
class CloudGroup:
    """What the plan needs of a cloud group (Graph v1.0 and the beta writebackConfiguration)."""

    id: str
    display_name: str | None
    mail_enabled: bool | None
    security_enabled: bool | None
    group_types: tuple[str, ...] = ()
    writeback_enabled: bool | None = None  # isEnabled as Graph returns it (None: not set)
    on_premises_group_type: str | None = None
    on_premises_sync_enabled: bool | None = None
    members: Members | None = None  # None: not read

    @property
    def unified(self) -> bool:
        return "Unified" in self.group_types

    @property
    def written_back(self) -> bool:
        """Whether Connect Sync writes it back: an unset isEnabled counts for Microsoft 365 groups only
        ("groupWritebackConfiguration resource type": default true for them, false for security groups)."""
        return self.writeback_enabled is True or (self.writeback_enabled is None and self.unified)


@dataclass
class BuiltPlan:
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            out[row["section"]] = out.get(row["section"], 0) + 1
            if row["section"] == RowSection.PLANNED:
                for key in row["risks"]:
                    out[f"risk:{key}"] = out.get(f"risk:{key}", 0) + 1
                if row["collides"]:
                    out["collisions"] = out.get("collisions", 0) + 1
                if row["truncated"]:
                    out["truncated"] = out.get("truncated", 0) + 1
                if row["cloud_sync"]:
                    out[f"cloud_sync:{row['cloud_sync']}"] = out.get(f"cloud_sync:{row['cloud_sync']}", 0) + 1
        return out


def written_back_id(obj: DirectoryObject) -> str | None:
    """The cloud object id a written-back group carries (msDS-ExternalDirectoryObjectId ``Group_<id>``)."""
    value = obj.first("msDS-ExternalDirectoryObjectId")
    if isinstance(value, str) and value.startswith("Group_"):
        try:
            return wn.check_object_id(value[6:])
        except wn.InvalidObjectId:
            return None
    return None


def cloud_sync_readiness(cloud: CloudGroup | None, obj: DirectoryObject, *, container: str) -> tuple[str, list[str]]:
    """Whether Cloud Sync's group provisioning to AD can take the group over, and what to do
    (:mod:`.cloud_sync` holds the rules and Microsoft's pages they rest on)."""
    if cloud is None:
        return readiness(None)
    return readiness(GroupFacts(
        object_id=cloud.id, display_name=cloud.display_name, current_dn=obj.dn, container=container,
        mail_enabled=cloud.mail_enabled, security_enabled=cloud.security_enabled, unified=cloud.unified,
        on_premises_sync_enabled=cloud.on_premises_sync_enabled, on_premises_group_type=cloud.on_premises_group_type,
        mail_on_prem=bool(obj.first("mail")), admin_count=str(obj.first("adminCount") or "0").strip() not in ("", "0"),
        members=cloud.members))


def _risks(obj: DirectoryObject, *, mail_enabled: bool, acl_index: Mapping[str, list[str]],
           named: wn.DisplayNameCn | None) -> tuple[list[str], dict[str, list[str]]]:
    risks: list[str] = []
    detail: dict[str, list[str]] = {}
    for attribute, risk in BACK_LINK_RISKS.items():
        values = [str(v) for v in obj.get(attribute) if v]
        if values:
            if risk not in risks:
                risks.append(risk)
            detail.setdefault(risk, []).extend(values)
    if mail_enabled:
        risks.append("mail_enabled")
    if obj.sid and acl_index.get(obj.sid):
        risks.append("acl")
        detail["acl"] = list(acl_index[obj.sid])
    if named is not None and any(not wn.FLAGS[f][1] for f in named.flags):
        risks.append("undocumented")
    risks.append("manual")
    return risks, {k: v[:DETAIL_LIMIT] for k, v in detail.items()}


def build_plan(*, container: str, in_ou: Iterable[DirectoryObject], outside: Iterable[DirectoryObject],
               cloud: Mapping[str, CloudGroup | None], acl_index: Mapping[str, list[str]] | None = None,
               acl_note: str | None = None) -> BuiltPlan:
    """Every object of the writeback OU and every written-back group outside it, as plan rows.

    ``cloud``: object id -> the cloud group, None when Graph has none. ``acl_index``: SID -> DNs of the
    objects whose DACL names it (the part of the directory the portal could read).
    """
    acl = acl_index or {}
    container_key = wn.dn_key(container)
    plan = BuiltPlan()
    planned: list[dict[str, Any]] = []
    others: list[str] = []
    for obj in in_ou:
        if wn.dn_key(obj.dn) == container_key:
            continue
        oid = written_back_id(obj)
        display = obj.first("displayName") or ""
        base = {"object_id": oid or "", "guid": str(obj.guid or ""), "display_name": str(display)[:512],
                "current_dn": obj.dn, "planned_dn": "", "planned_cn": "", "truncated": False, "flags": [],
                "changes": [], "collides": False, "collision": {}, "same_display_name": [], "risks": [],
                "risk_detail": {}, "mail_enabled": None, "security_enabled": None, "group_types": [],
                "writeback_enabled": None, "on_premises_group_type": "", "cloud_sync": "", "cloud_sync_notes": []}
        if oid is None or not obj.has_class("group"):
            others.append(obj.dn)
            plan.rows.append({**base, "section": RowSection.NOT_WRITTEN_BACK})
            continue
        group = cloud.get(oid)
        mail_on_prem = bool(obj.first("mail"))
        verdict, verdict_notes = cloud_sync_readiness(group, obj, container=container)
        base.update({"cloud_sync": verdict, "cloud_sync_notes": verdict_notes})
        if group is None or not group.written_back:
            others.append(obj.dn)
            plan.rows.append({**base, "section": RowSection.NOT_JOINED if group is None
                              else RowSection.WRITEBACK_DISABLED,
                              **({} if group is None else _cloud_fields(group))})
            continue
        named = wn.display_name_cn(object_id=oid, display_name=group.display_name)
        mail_enabled = bool(group.mail_enabled) or mail_on_prem
        risks, detail = _risks(obj, mail_enabled=mail_enabled, acl_index=acl, named=named)
        row = {**base, "display_name": (group.display_name or "")[:512], "section": RowSection.PLANNED,
               "planned_cn": named.cn, "planned_dn": wn.writeback_dn(container, named.cn),
               "truncated": named.truncated, "flags": list(named.flags), "changes": named.changes,
               "risks": risks, "risk_detail": detail, **_cloud_fields(group)}
        if wn.dn_key(row["planned_dn"]) == wn.dn_key(obj.dn):
            row["changes"] = ["already named this way: no rename"]
        planned.append(row)
        plan.rows.append(row)
    collisions = wn.find_collisions(planned, others=others)
    for row in planned:
        hit = collisions.collisions.get(row["object_id"])
        if hit is not None:
            row["collides"] = True
            row["collision"] = {"object_ids": list(hit.with_object_ids), "dns": list(hit.with_existing)}
            row["risks"].insert(0, "collision")
        row["same_display_name"] = list(collisions.same_display_name.get(row["object_id"], ()))
    for obj in outside:
        if parse_dn(obj.dn).is_within(container):
            continue
        oid = written_back_id(obj) or ""
        group = cloud.get(oid) if oid else None
        plan.rows.append({
            "section": RowSection.OUTSIDE_OU, "object_id": oid, "guid": str(obj.guid or ""),
            "display_name": str((group.display_name if group else None) or obj.first("displayName") or "")[:512],
            "current_dn": obj.dn, "planned_dn": "", "planned_cn": "", "truncated": False, "flags": [],
            "changes": ["outside the writeback OU: the switch does not rename it; if writeback is turned off "
                        "outside staging mode it is deleted with the others"],
            "collides": False, "collision": {}, "same_display_name": [], "risks": ["manual"], "risk_detail": {},
            "cloud_sync": "", "cloud_sync_notes": [],
            **(_cloud_fields(group) if group else {"mail_enabled": None, "security_enabled": None,
                                                     "group_types": [], "writeback_enabled": None,
                                                     "on_premises_group_type": ""})})
    if acl_note:
        plan.notes.append(acl_note)
    for row in plan.rows:
        row["risks_key"] = ("," + ",".join(row["risks"]) + ",") if row["risks"] else ""
    return plan


def _cloud_fields(group: CloudGroup) -> dict[str, Any]:
    return {"mail_enabled": group.mail_enabled, "security_enabled": group.security_enabled,
            "group_types": list(group.group_types), "writeback_enabled": group.writeback_enabled,
            "on_premises_group_type": group.on_premises_group_type or ""}
