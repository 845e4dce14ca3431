"""Exchange Online recipients of synced objects, their links, and group memberships."""

from __future__ import annotations

from typing import Any

from portal.lab.cloud.store.common import ConflictError, NotFoundError, iso

from .constants import EXCHANGE_CLOUD_MANAGED_RECIPIENT, LINKS, MANAGED_RECIPIENT_PROPERTIES
from .model import _Plan


class _Recipients:
    """Recipients and memberships (a mixin of the cycle)."""

    # ---- recipients

    def export_recipient(self, plan: _Plan) -> None:
        oid = plan.oid
        if oid is None:
            return
        existing = self.recipients.get(oid)
        if plan.recipient_type is None:
            if existing is not None and existing.get("IsDirSynced"):
                if self.staging:
                    return
                self.store.delete_recipient(recipient_id=existing["@id"])
                self.recipients.pop(oid, None)
                self.result.cloud_writes += 1
                self.result.counts["recipient"].deletes += 1
            return
        props = dict(plan.recipient_props)
        if "UserPrincipalName" in props:
            props["UserPrincipalName"] = self.docs[oid].get("userPrincipalName")  # after any quarantine
        if self.staging:
            if existing is None:
                self.result.counts["recipient"].adds += 1
            return
        if existing is None:
            extra = {k: v for k, v in props.items() if k not in ("Name", "Alias", "PrimarySmtpAddress",
                                                                 "EmailAddresses", "DisplayName")}
            if plan.legacy_dn:
                extra["LegacyExchangeDN"] = plan.legacy_dn
            addresses = list(props["EmailAddresses"])
            for _ in range(10):
                try:
                    created = self.store.create_recipient(
                        recipient_type_details=plan.recipient_type, name=props["Name"] or props["Alias"],
                        alias=props["Alias"] or "", primary_smtp_address=props["PrimarySmtpAddress"],
                        email_addresses=addresses, object_id=oid, display_name=props["DisplayName"],
                        is_dir_synced=True, properties=extra)
                except ConflictError as conflict:
                    # another recipient holds the address: Exchange Online would not show it twice
                    kept = [x for x in addresses if x.lower() != conflict.value.lower()]
                    primary = f"smtp:{props['PrimarySmtpAddress']}".lower()
                    if len(kept) == len(addresses) or conflict.value.lower() == primary:
                        return
                    addresses = kept
                    continue
                break
            else:
                return
            self.recipients[oid] = created
            self.result.cloud_writes += 1
            self.result.counts["recipient"].adds += 1
            return
        changes = {k: props.get(k) for k in MANAGED_RECIPIENT_PROPERTIES
                   if k in props and props.get(k) != existing.get(k)}
        if existing.get("IsExchangeCloudManaged"):
            changes = {k: v for k, v in changes.items() if k not in EXCHANGE_CLOUD_MANAGED_RECIPIENT}
        if not existing.get("IsDirSynced"):
            changes["IsDirSynced"] = True
        if not changes:
            return
        try:
            updated = self.store.update_recipient(recipient_id=existing["@id"], properties=changes)
        except (ConflictError, NotFoundError):
            return
        self.recipients[oid] = updated
        self.result.cloud_writes += 1
        self.result.counts["recipient"].updates += 1

    def export_recipient_links(self) -> None:
        """Second pass: ManagedBy, ModeratedBy, delivery restrictions and send-on-behalf, as recipient ids."""
        if self.staging:
            return
        for plan in self.plans.values():
            if not plan.exported or plan.oid is None or plan.recipient_type is None:
                continue
            recipient = self.recipients.get(plan.oid)
            if recipient is None:
                continue
            changes: dict[str, Any] = {}
            for prop, sources in LINKS.items():
                ids: list[str] = []
                for name in sources:
                    for dn in plan.attrs.all(name):
                        target = self.recipient_id_for_dn(dn)
                        if target and target not in ids:
                            ids.append(target)
                if ids != (recipient.get(prop) or []):
                    changes[prop] = ids
            if changes:
                self.recipients[plan.oid] = self.store.update_recipient(recipient_id=recipient["@id"],
                                                                        properties=changes)
                self.result.cloud_writes += 1
                if not plan.added:
                    self.result.counts["recipient"].updates += 1

    def exchange_cloud_managed(self, oid: str | None) -> bool:
        """The object's mailbox has its Exchange attributes managed in Exchange Online: AD's addresses stay out."""
        recipient = self.recipients.get(oid) if oid else None
        return bool(recipient and recipient.get("IsExchangeCloudManaged"))

    def object_id_for_dn(self, dn: str) -> str | None:
        guid = self.by_dn.get(self.key(dn))
        if guid is None:
            return None
        entry = self.entries[guid]
        if entry.writeback_id:
            return entry.writeback_id if entry.writeback_id in self.docs else None
        return self.joined.get(entry.anchor or "")

    def recipient_id_for_dn(self, dn: str) -> str | None:
        oid = self.object_id_for_dn(dn)
        recipient = self.recipients.get(oid) if oid else None
        return recipient["@id"] if recipient else None

    # ---- memberships

    def export_memberships(self) -> None:
        for plan in self.plans.values():
            if plan.kind != "group" or not plan.exported or plan.oid is None:
                continue
            wanted: list[str] = []
            seen: set[str] = set()
            for dn in plan.attrs.all("member"):
                member = self.object_id_for_dn(dn)
                if member and member != plan.oid and member not in seen:
                    seen.add(member)
                    wanted.append(member)
            current = set(self.store.member_ids(group_id=plan.oid)) if not plan.added else set()
            if set(wanted) == current:
                continue
            if self.staging:
                self.pend(self.aad_connector, plan.dn, "Update", {"member": len(wanted)}, plan.oid)
            else:
                self.store.set_members(group_id=plan.oid, member_ids=wanted)
                self.result.cloud_writes += 1
            self.result.membership_changes += len(set(wanted) ^ current)
            self.touch(plan.dn)
            if not plan.added and not self.updated_already(plan):
                self.result.counts["group"].updates += 1

    def updated_already(self, plan: _Plan) -> bool:
        return bool(self.docs.get(plan.oid or "", {}).get("onPremisesLastSyncDateTime") == iso(self.now))
