"""Source of authority handed to the cloud (``onPremisesSyncBehavior.isCloudManaged``), as the sync client sees it.

"Configure Group Source of Authority" (Microsoft Learn): from Connect Sync 2.5.76.0 the client stops applying AD
changes to an object whose source of authority is the cloud, and the object is no longer shown as synced
(``onPremisesSyncEnabled`` cleared); setting the flag back to false lets AD take the object over again at the
next cycle, which re-applies AD's values. An older client does not know the flag: it keeps exporting AD's
values, so the conversion is undone at its next cycle (the issue's "older sync clients can undo it"; the
lab also clears the flag then, so the state it leaves is plainly "synced from AD again").

Decisions of the lab: an AD deletion or a move out of scope does not delete a cloud-managed object (the
client no longer exports anything for it); Exchange Online shows the recipient as not directory-synced
from the same cycle on.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from portal.lab.cloud.store.common import CLOUD_MANAGED_KEY

FIRST_HONOURING_BUILD = (2, 5, 76, 0)


def build_tuple(version: str) -> tuple[int, ...]:
    """``2.5.79.0`` as a comparable tuple (an unreadable build counts as the oldest)."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)


class _SourceOfAuthority:
    """The cycle's handling of cloud-managed objects (a mixin of the cycle)."""

    def honours_cloud_managed(self) -> bool:
        return build_tuple(self.store.connect_version()) >= FIRST_HONOURING_BUILD

    def cloud_managed(self, oid: str | None) -> bool:
        """Whether this client leaves the object alone (handed to the cloud and a client that knows it)."""
        return bool(oid) and self.docs.get(oid, {}).get(CLOUD_MANAGED_KEY) is True and self.honours

    def soa_dirty(self) -> set[UUID]:
        """Objects a delta must read although AD did not change them: handed back (AD's values are
        re-applied), or handed to the cloud under a client too old to know it (it overwrites them)."""
        dirty: set[UUID] = set()
        for oid, anchor in self.anchor_of.items():
            flag = self.docs[oid].get(CLOUD_MANAGED_KEY)
            if flag is False or (flag is True and not self.honours):
                guid = self.by_anchor.get(anchor)
                if guid:
                    dirty.add(guid)
        return dirty

    def settle_source_of_authority(self) -> None:
        """After the export: a cloud-managed object shows as not synced; a handed-back or reverted one
        loses the flag once AD's values are on it again."""
        if self.staging:
            return
        exported = {plan.oid for plan in self.plans.values() if plan.exported and plan.oid}
        for oid in list(self.anchor_of):
            doc = self.docs[oid]
            flag = doc.get(CLOUD_MANAGED_KEY)
            if flag is True and self.honours:
                self.result.cloud_managed += 1
                if doc.get("onPremisesSyncEnabled") is not None:
                    self.docs[oid] = {**self.store.update_object(
                        object_id=oid, properties={"onPremisesSyncEnabled": None}), "@kind": doc.get("@kind")}
                    self.result.cloud_writes += 1
                self.set_recipient_synced(oid, False)
            elif flag is not None and oid in exported:
                if flag is True:
                    self.result.cloud_managed_reverted.append(oid)
                self.docs[oid] = {**self.store.update_object(
                    object_id=oid, properties={CLOUD_MANAGED_KEY: None}), "@kind": doc.get("@kind")}
                self.result.cloud_writes += 1
                self.set_recipient_synced(oid, True)

    def set_recipient_synced(self, oid: str, synced: bool) -> None:
        recipient: dict[str, Any] | None = self.recipients.get(oid)
        if recipient is None or bool(recipient.get("IsDirSynced")) == synced:
            return
        self.recipients[oid] = self.store.update_recipient(recipient_id=recipient["@id"],
                                                           properties={"IsDirSynced": synced})
        self.result.cloud_writes += 1
