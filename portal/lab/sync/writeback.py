"""Writebacks into AD: Exchange hybrid (the X500 LegacyExchangeDN) and group writeback v2 (its cn and DNs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from portal.connectors import ad
from portal.connectors.ad import DirectoryObject
from portal.directory import writeback_names

from .constants import (
    WRITEBACK_GROUP_TYPES,
    WRITEBACK_MAIL_ENABLED,
    WRITEBACK_READ_ATTRIBUTES,
)
from .model import ExportErrorRecord
from .scoping import _Attrs
from .state import _json_safe


def writeback_cn(*, object_id: str, display_name: str | None, with_display_name: bool) -> str:
    """The cn group writeback gives a cloud group: ``Group_<id>`` or ``<name>_<last 12 of id>``.

    One computation with the portal's rename plan (:mod:`portal.directory.writeback_names`), so a
    rehearsal proves what the plan predicted. The value is unescaped; build the DN with ``ad.child_dn``.
    """
    return writeback_names.writeback_cn(object_id=object_id, display_name=display_name,
                                        with_display_name=with_display_name)


class _Writeback:
    """Exchange hybrid writeback and group writeback v2 (a mixin of the cycle)."""

    # ---- Exchange hybrid writeback (to AD)

    def exchange_hybrid_writeback(self) -> None:
        for plan in self.plans.values():
            if plan.kind != "user" or not plan.exported or plan.oid is None:
                continue
            a = plan.attrs
            add: dict[str, Any] = {}
            replace: dict[str, Any] = {}
            recipient = self.recipients.get(plan.oid)
            done: list[str] = []
            if self.options.exchange_hybrid and recipient is not None:
                legacy = recipient.get("LegacyExchangeDN")
                if legacy and not any(isinstance(p, str) and p.lower() == f"x500:{legacy}".lower()
                                      for p in a.all("proxyAddresses")):
                    add["proxyAddresses"] = [f"x500:{legacy}"]
                    done.append("x500")
                anchor = f"User_{plan.oid}"
                if a.text("msDS-ExternalDirectoryObjectId") != anchor:
                    replace["msDS-ExternalDirectoryObjectId"] = anchor
                    done.append("external_directory_object_id")
            if self.options.consistency_guid_writeback and not a.one("mS-DS-ConsistencyGuid"):
                replace["mS-DS-ConsistencyGuid"] = plan.guid.bytes_le
                done.append("consistency_guid")
            if not done:
                continue
            if self.staging:
                shown = {**{k: v for k, v in replace.items() if k != "mS-DS-ConsistencyGuid"}, **add}
                if "mS-DS-ConsistencyGuid" in replace:
                    shown["mS-DS-ConsistencyGuid"] = str(plan.guid)
                self.pend(self.ad_connector, plan.dn, "Update", shown, plan.oid)
            elif not self.ad_write(plan.dn, lambda dn=plan.dn, add=add, replace=replace: self.directory.modify(
                    dn, add=add or None, replace=replace or None)):
                continue
            for name in done:
                self.result.writebacks[name] += 1

    def ad_write(self, dn: str, write: Callable[[], Any]) -> bool:
        try:
            write()
        except ad.ValueExists:
            return True
        except ad.AccessDenied as exc:
            self.ad_error(dn, "permission-issue", str(exc))
            return False
        except ad.AdError as exc:
            self.ad_error(dn, "cd-error", str(exc))
            return False
        self.result.ad_writes += 1
        return True

    def ad_error(self, dn: str, code: str, message: str) -> None:
        self.result.export_errors.append(ExportErrorRecord(self.ad_connector, dn, code, None, message))

    # ---- group writeback v2 (to AD)

    def group_writeback(self) -> None:
        existing = self.read_written_back()
        wanted = self.groups_to_write_back() if self.options.group_writeback_enabled else {}
        joined_before = set(self.state.written_back)
        # DNs first: members of written-back groups may be other written-back groups
        target_dn = {oid: ad.child_dn(self.writeback_ou, "CN", cn) for oid, (cn, _) in wanted.items()}
        for oid, obj in list(existing.items()):
            if oid not in target_dn:
                continue
            new_cn = wanted[oid][0]
            if ad.parse_dn(obj.dn).rdn_value == new_cn:
                target_dn[oid] = obj.dn
                continue
            # A changed DN option renames the group (modify DN); it is never deleted and re-created.
            if self.staging:
                self.pend(self.ad_connector, obj.dn, "Update", {"cn": new_cn, "distinguishedName": target_dn[oid]},
                          oid)
            elif self.ad_write(obj.dn, lambda obj=obj, new_cn=new_cn: self.directory.rename(obj.dn, new_cn)):
                self.result.writebacks["group_renames"] += 1
                existing[oid] = DirectoryObject(target_dn[oid], obj.guid, obj.sid, obj.object_classes,
                                                obj.attributes)
                continue
            target_dn[oid] = obj.dn  # not renamed (yet): members still find it where it is
        for oid, (_cn, config) in wanted.items():
            desired = self.writeback_attributes(oid, config, target_dn)
            obj = existing.get(oid)
            if obj is None:
                dn = target_dn[oid]
                attrs = {"sAMAccountName": f"Group_{oid}", **{k: v for k, v in desired.items() if v}}
                if self.staging:
                    self.pend(self.ad_connector, dn, "Add", _json_safe(attrs), oid)
                elif self.ad_write(dn, lambda dn=dn, attrs=attrs: self.directory.add(
                        dn, object_class=["top", "group"], attributes=attrs)):
                    self.result.writebacks["group_adds"] += 1
                continue
            replace, add, delete = self.writeback_changes(obj, desired)
            if not (replace or add or delete):
                continue
            if self.staging:
                self.pend(self.ad_connector, obj.dn, "Update", _json_safe({**replace, **add}), oid)
            elif self.ad_write(obj.dn, lambda obj=obj, r=replace, ad_=add, d=delete: self.directory.modify(
                    obj.dn, replace=r or None, add=ad_ or None, delete=d or None)):
                self.result.writebacks["group_updates"] += 1
        # groups no longer to be written back
        orphans = 0
        for oid, obj in existing.items():
            if oid in wanted:
                continue
            doc = self.docs.get(oid)
            known = oid in joined_before or (doc is not None and oid not in self.anchor_of)
            if not known:
                orphans += 1  # never joined to a cloud group of this tenant: a disconnector, left alone
                continue
            if doc is not None and self.options.group_writeback_enabled and \
                    not self.options.delete_groups_disabled_for_writeback:
                continue  # disabled for writeback on its own: stays in AD (the documented default)
            if self.staging:
                self.pend(self.ad_connector, obj.dn, "Delete", {}, oid)
            elif self.ad_write(obj.dn, lambda obj=obj: self.directory.delete(obj.dn)):
                self.result.writebacks["group_deletes"] += 1
                joined_before.discard(oid)
        self.result.orphaned_writeback_groups = orphans
        if not self.staging:
            self.written_back = sorted((joined_before | set(wanted)) & (set(existing) | set(wanted)))
        else:
            self.written_back = sorted(joined_before)

    def read_written_back(self) -> dict[str, DirectoryObject]:
        found: dict[str, DirectoryObject] = {}
        flt = ad.all_of(ad.object_class("group"), ad.starts_with("msDS-ExternalDirectoryObjectId", "Group_"))
        try:
            for obj in self.directory.search(filter=flt, base=self.writeback_ou, attributes=WRITEBACK_READ_ATTRIBUTES):
                external = obj.first("msDS-ExternalDirectoryObjectId")
                if isinstance(external, str):
                    found[external[6:].lower()] = obj
        except ad.NotFound:
            pass
        return found

    def groups_to_write_back(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Cloud groups to be in the writeback OU: object id -> (cn, writeback configuration)."""
        wanted: dict[str, tuple[str, dict[str, Any]]] = {}
        for oid, doc in self.docs.items():
            if doc.get("@kind") != "group" or oid in self.anchor_of or doc.get("onPremisesSyncEnabled"):
                continue
            unified = "Unified" in (doc.get("groupTypes") or [])
            if not unified and not (doc.get("securityEnabled") and not doc.get("mailEnabled")):
                continue  # distribution lists and mail-enabled security groups made in Exchange Online
            config = dict(doc.get("writebackConfiguration") or {})
            enabled = config.get("isEnabled")
            if not (enabled is True or (enabled is None and unified)):
                continue
            target = config.get("onPremisesGroupType")
            if target not in WRITEBACK_GROUP_TYPES or (not unified and target != "universalSecurityGroup"):
                target = "universalDistributionGroup" if unified else "universalSecurityGroup"
            config["onPremisesGroupType"] = target
            cn = writeback_cn(object_id=oid, display_name=doc.get("displayName"),
                              with_display_name=self.options.writeback_display_name)
            wanted[oid] = (cn, config)
        return wanted

    def writeback_attributes(self, oid: str, config: Mapping[str, Any], target_dn: Mapping[str, str]
                             ) -> dict[str, Any]:
        doc = self.docs[oid]
        target = config["onPremisesGroupType"]
        members: list[str] = []
        for member in self.store.member_ids(group_id=oid):
            anchor = self.anchor_of.get(member)
            if anchor is not None:
                guid = self.by_anchor.get(anchor)
                if guid is not None:
                    members.append(self.entries[guid].dn)
            elif member in target_dn:
                members.append(target_dn[member])
        attrs: dict[str, Any] = {
            "groupType": WRITEBACK_GROUP_TYPES[target],
            "displayName": doc.get("displayName"),
            "description": doc.get("description"),
            "msDS-ExternalDirectoryObjectId": f"Group_{oid}",
            "member": members,
            "mail": None, "mailNickname": None, "proxyAddresses": [],
        }
        if target in WRITEBACK_MAIL_ENABLED and doc.get("mail"):
            attrs.update({"mail": doc.get("mail"), "mailNickname": doc.get("mailNickname"),
                          "proxyAddresses": list(doc.get("proxyAddresses") or [])})
        return attrs

    def writeback_changes(self, obj: DirectoryObject, desired: Mapping[str, Any]
                          ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        a = _Attrs(obj)
        replace: dict[str, Any] = {}
        add: dict[str, Any] = {}
        delete: dict[str, Any] = {}
        for name in ("displayName", "description", "mail", "mailNickname", "msDS-ExternalDirectoryObjectId"):
            if (desired.get(name) or None) != a.text(name):
                replace[name] = desired.get(name) or None
        if desired["groupType"] != a.number("groupType"):
            replace["groupType"] = desired["groupType"]
        current_proxies = sorted(p for p in a.all("proxyAddresses") if isinstance(p, str))
        if sorted(desired["proxyAddresses"]) != current_proxies:
            replace["proxyAddresses"] = desired["proxyAddresses"] or None
        current = {self.key(dn): dn for dn in a.all("member")}
        wanted = {self.key(dn): dn for dn in desired["member"]}
        if set(wanted) - set(current):
            add["member"] = [wanted[k] for k in wanted if k not in current]
        if set(current) - set(wanted):
            delete["member"] = [current[k] for k in current if k not in wanted]
        return replace, add, delete
