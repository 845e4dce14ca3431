"""One sync cycle: import from AD, the cloud side, deprovisioning, and the order of the steps."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal
from uuid import UUID

from portal.connectors import ad
from portal.connectors.ad import ActiveDirectory, DirectoryObject
from portal.lab import layout
from portal.lab.cloud.store import CloudStore
from portal.lab.cloud.store.common import CLOUD_MANAGED_KEY, iso, parse_datetime, utc_now

from .authority import _SourceOfAuthority
from .constants import (
    _SCOPE_FILTER,
    BACK_LINKS,
    MAILBOX_TYPES,
    READ_ATTRIBUTES,
    RECYCLE_BIN_DAYS,
    SKELETON_ATTRIBUTES,
    STATE_FILE,
    Policy,
)
from .export_errors import _ExportErrors
from .model import CycleResult, SyncOptions, _Entry, _Plan
from .projection import _Projection
from .recipients import _Recipients
from .scoping import scope_problem, source_anchor_of
from .state import _json_safe, _State
from .writeback import _Writeback


class _Cycle(_Projection, _Recipients, _Writeback, _ExportErrors, _SourceOfAuthority):
    """One sync cycle; the steps are grouped by responsibility in the mixins it is built from."""

    def __init__(self, *, directory: ActiveDirectory, store: CloudStore, base_dn: str, policy: Policy,
                 options: SyncOptions, run_id: int | None) -> None:
        self.directory = directory
        self.store = store
        self.base_dn = str(ad.parse_dn(base_dn))
        self.policy = policy
        self.options = options
        scheduler = store.scheduler()
        self.staging = options.staging_mode if options.staging_mode is not None else bool(
            scheduler.get("StagingModeEnabled"))
        self.initial_domain = (store.initial_domain or layout.TENANT_DOMAIN).lower()
        self.verified = {d["DomainName"].lower() for d in store.list_accepted_domains()} | {self.initial_domain}
        connectors = store.sync_connectors()
        self.ad_connector = next((c["Name"] for c in connectors if c.get("Type") == "AD"), "lab.example")
        self.aad_connector = next((c["Name"] for c in connectors if c.get("Type") != "AD"),
                                  f"{self.initial_domain} - AAD")
        self.domain_fqdn = ".".join(v for t, v in (r[0] for r in ad.parse_dn(self.base_dn).rdns) if t.lower() == "dc")
        self.sync_ous = [str(ad.parse_dn(ou)) for ou in layout.sync_ous(self.base_dn)]
        self.writeback_ou = str(ad.parse_dn(layout.writeback_ou(self.base_dn)))
        self.state_path = store.path.parent / STATE_FILE
        self.state = _State.load(self.state_path)
        self.result = CycleResult(policy=policy, run_id=run_id, staging=self.staging)
        self.now = utc_now()
        self._dn_keys: dict[str, str] = {}

    # ---- helpers

    def key(self, dn: str) -> str:
        """A DN's comparison form (cached: member lists repeat the same DNs)."""
        cached = self._dn_keys.get(dn)
        if cached is None:
            try:
                cached = ad.parse_dn(dn).normalized()
            except ad.InvalidDn:
                cached = dn.lower()
            self._dn_keys[dn] = cached
        return cached

    def touch(self, dn: str) -> None:
        if len(self.result.touched) < 100 and dn not in self.result.touched:
            self.result.touched.append(dn)

    def tick(self, name: str, started: float) -> float:
        now = time.monotonic()
        self.result.timings[name] = round(now - started, 3)
        return now

    # ---- the run

    def run(self) -> CycleResult:
        started = time.monotonic()
        if self.options.latency_seconds > 0:
            time.sleep(self.options.latency_seconds)
        t = time.monotonic()
        self.load_cloud()
        t = self.tick("load_cloud", t)
        self.import_directory()
        t = self.tick("import", t)
        # Pending exports are what this cycle holds back (staging) -- nothing is left pending after a real one.
        self.store.clear_pending_exports()
        with self.store.transaction():
            self.export_to_cloud()
        t = self.tick("export_cloud", t)
        self.exchange_hybrid_writeback()
        self.group_writeback()
        t = self.tick("export_ad", t)
        self.record_errors()
        self.save_state()
        self.tick("finish", t)
        self.result.finished = utc_now()
        self.result.duration_seconds = round(time.monotonic() - started, 3)
        return self.result

    # ---- cloud side

    def load_cloud(self) -> None:
        store = self.store
        self.docs: dict[str, dict[str, Any]] = {}
        self.joined: dict[str, str] = {}  # anchor -> object id
        self.anchor_of: dict[str, str] = {}
        self.addresses: dict[str, str] = {}  # lower-case proxy address -> object id
        self.upns: dict[str, str] = {}
        for kind in ("user", "group", "contact"):
            for doc in store.iter_objects(kind=kind, batch=5000):
                oid = doc["id"]
                self.docs[oid] = doc
                self.index(oid, doc)
                # a cloud-managed object stays joined: the client keeps its connector space entry
                if doc.get("onPremisesSyncEnabled") or doc.get(CLOUD_MANAGED_KEY) is not None:
                    anchor = store.source_anchor_of(object_id=oid)
                    if anchor:
                        self.joined[anchor] = oid
                        self.anchor_of[oid] = anchor
        self.recipients = store.recipients_by_object_ids(self.docs)
        self.honours = self.honours_cloud_managed()
        self.prior_errors = store.list_export_errors(connector=self.aad_connector)
        self.prior_ad_errors = store.list_export_errors(connector=self.ad_connector)

    def index(self, oid: str, doc: Mapping[str, Any]) -> None:
        for address in doc.get("proxyAddresses") or []:
            self.addresses[address.lower()] = oid
        upn = doc.get("userPrincipalName")
        if upn and doc.get("@kind", "user") == "user":
            self.upns[upn.lower()] = oid

    def unindex(self, oid: str, doc: Mapping[str, Any]) -> None:
        for address in doc.get("proxyAddresses") or []:
            if self.addresses.get(address.lower()) == oid:
                del self.addresses[address.lower()]
        upn = (doc.get("userPrincipalName") or "").lower()
        if upn and self.upns.get(upn) == oid:
            del self.upns[upn]

    # ---- import

    def import_directory(self) -> None:
        directory = self.directory
        dse = directory.root_dse()
        watermark = int((dse.get("highestCommittedUSN") or ["0"])[0])
        service = (dse.get("dsServiceName") or [""])[0]
        dc = ""
        if service:
            with contextlib.suppress(ad.AdError):
                guid = directory.read(service, attributes=["objectGUID"]).guid
                dc = str(guid) if guid else ""
        self.dc = dc
        self.result.watermark = watermark
        self.new_watermark = watermark

        self.entries: dict[UUID, _Entry] = {}
        self.by_dn: dict[str, UUID] = {}
        self.by_anchor: dict[str, UUID] = {}
        self.fetched: dict[UUID, DirectoryObject] = {}
        reason = self.delta_problem() if self.policy == "Delta" else None
        self.full = full = self.policy == "Initial" or reason is not None
        self.result.fallback_reason = reason
        self.result.effective_policy = "Initial" if full else "Delta"
        if full:
            for obj in self.search(_SCOPE_FILTER, READ_ATTRIBUTES):
                if self.add_entry(obj):
                    self.fetched[obj.guid] = obj  # type: ignore[index]
        else:
            # the skeleton (every object of the sync OUs, cheaply), then the changed ones in full
            for obj in self.search(_SCOPE_FILTER, SKELETON_ATTRIBUTES):
                self.add_entry(obj)
            changed = ad.all_of(_SCOPE_FILTER, ad.ge("uSNChanged", (self.state.watermark or 0) + 1))
            for obj in self.search(changed, READ_ATTRIBUTES):
                if obj.guid in self.entries:
                    self.fetched[obj.guid] = obj
            self.fetch(self.cloud_side_dirty() | self.soa_dirty())
        self.result.in_scope = len(self.entries)
        self.result.imported = len(self.fetched)

    def search(self, flt: ad.Filter, attributes: list[str]) -> Iterator[DirectoryObject]:
        for ou in self.sync_ous:
            try:
                yield from self.directory.search(filter=flt, base=ou, attributes=attributes, page_size=1000)
            except ad.NotFound:
                continue  # an OU of the scope that does not exist (yet)

    def add_entry(self, obj: DirectoryObject) -> bool:
        if obj.guid is None or obj.guid in self.entries:
            return False
        external = obj.first("msDS-ExternalDirectoryObjectId")
        wb = external[6:].lower() if obj.kind == "group" and isinstance(external, str) and \
            external.startswith("Group_") else None
        entry = _Entry(obj.guid, obj.dn, obj.kind, obj.usn_changed or 0, source_anchor_of(obj), wb)
        self.entries[obj.guid] = entry
        self.by_dn[self.key(obj.dn)] = obj.guid
        if entry.anchor:
            self.by_anchor[entry.anchor] = obj.guid
        return True

    def delta_problem(self) -> str | None:
        """Why this delta cannot trust the previous cycle's high-water mark (then it imports in full)."""
        s = self.state
        if s.watermark is None:
            return "no previous cycle"
        if s.tenant_id != self.store.tenant_id or s.base_dn != self.base_dn:
            return "another tenant or domain than at the previous cycle"
        if s.dc != self.dc:
            return "another domain controller (or a re-provisioned one) than at the previous cycle"
        if s.watermark > self.result.watermark:
            return "the domain controller's USN is below the previous high-water mark"
        if s.synced_objects is not None and s.synced_objects != len(self.joined):
            return "the tenant's synchronised objects changed outside the sync engine"
        return None

    def fetch(self, guids: Iterable[UUID]) -> list[UUID]:
        """Read full attributes of objects the delta did not bring (dirty ones); returns those read."""
        read = []
        for guid in guids:
            if guid in self.fetched or guid not in self.entries:
                continue
            try:
                self.fetched[guid] = self.directory.read_by_guid(guid, attributes=READ_ATTRIBUTES)
            except ad.NotFound:
                continue
            read.append(guid)
        return read

    def cloud_side_dirty(self) -> set[UUID]:
        """Unchanged AD objects a delta must still process, because of something on the cloud side."""
        dirty: set[UUID] = set()
        # licensed users whose mailbox (and X500) does not exist yet
        for oid, anchor in self.anchor_of.items():
            doc = self.docs[oid]
            if doc.get("@kind") == "user" and doc.get("assignedLicenses"):
                recipient = self.recipients.get(oid)
                if recipient is None or recipient.get("RecipientTypeDetails") not in MAILBOX_TYPES:
                    guid = self.by_anchor.get(anchor)
                    if guid:
                        dirty.add(guid)
        # objects in export error are retried at every cycle
        for error in self.prior_errors:
            guid = self.by_anchor.get(error.get("SourceAnchor") or "") or self.by_dn.get(
                self.key(error.get("DistinguishedName") or ""))
            if guid:
                dirty.add(guid)
        return dirty

    # ---- export to the cloud

    def export_to_cloud(self) -> None:
        self.plans: dict[UUID, _Plan] = {}
        self.deprovision()
        pending = [g for g in self.fetched if g not in self.plans]
        rounds = 0
        while pending and rounds < 4:
            rounds += 1
            added = self.project(pending)
            # objects naming a re-created object must name it again (links are by object id)
            linking: set[UUID] = set()
            for guid in added:
                attrs = self.plans[guid].attrs
                for name in BACK_LINKS:
                    for dn in attrs.all(name):
                        other = self.by_dn.get(self.key(dn))
                        if other is not None and other not in self.plans:
                            linking.add(other)
            pending = self.fetch(linking) if not self.full else []
            self.result.imported = len(self.fetched)
        self.export_memberships()
        self.export_recipient_links()
        self.settle_source_of_authority()

    def deprovision(self) -> None:
        """Delete the cloud objects whose AD object left the scope (moved, deleted or filtered out)."""
        for anchor, oid in list(self.joined.items()):
            if self.cloud_managed(oid):
                continue  # AD no longer decides whether it exists
            guid = self.by_anchor.get(anchor)
            if guid is None:
                gone = True  # deleted, or moved out of every synchronised OU
            elif guid in self.fetched:
                gone = scope_problem(self.fetched[guid]) is not None or self.entries[guid].writeback_id is not None
            else:
                gone = False  # unchanged since the last cycle, so still in scope
            if gone:
                self.delete_cloud_object(anchor, oid)

    def delete_cloud_object(self, anchor: str, oid: str) -> None:
        doc = self.docs.pop(oid)
        kind = doc.get("@kind", "user")
        recipient = self.recipients.pop(oid, None)
        dn = doc.get("onPremisesDistinguishedName") or ""
        if self.staging:
            self.pend(self.aad_connector, dn, "Delete", {}, oid)
        else:
            self.store.delete_object(object_id=oid, with_recipient=True)
            self.result.cloud_writes += 1
            self.state.recycle_bin[anchor] = {
                "id": oid, "kind": kind, "deleted": iso(self.now),
                "legacy_dn": (recipient or {}).get("LegacyExchangeDN"),
            }
        self.unindex(oid, doc)
        del self.joined[anchor]
        del self.anchor_of[oid]
        self.touch(dn)
        self.result.counts[kind].deletes += 1
        if recipient is not None:
            self.result.counts["recipient"].deletes += 1
        self.clear_errors_of(anchor, dn)

    def project(self, guids: Sequence[UUID]) -> list[UUID]:
        """Plan and export the given objects (users and contacts first, groups after); returns the added."""
        order = {"user": 0, "contact": 1, "group": 2}
        added = []
        candidates = sorted((g for g in guids if g in self.fetched), key=lambda g: order.get(self.fetched[g].kind, 3))
        for guid in candidates:
            obj = self.fetched[guid]
            entry = self.entries[guid]
            if entry.writeback_id or scope_problem(obj) is not None or entry.anchor is None:
                continue
            plan = self.plan(obj, entry)
            self.plans[guid] = plan
            if self.cloud_managed(plan.oid):
                continue  # handed to the cloud: AD's changes stop here
            self.export_object(plan)
            if plan.exported:
                self.export_recipient(plan)
            if plan.added:
                added.append(guid)
        return added

    # ---- bookkeeping

    def pend(self, connector: str, dn: str, operation: Literal["Add", "Update", "Delete", "Replace"],
             attributes: Mapping[str, Any], object_id: str | None) -> None:
        self.store.add_pending_export(connector=connector, distinguished_name=dn, operation=operation,
                                      attributes=_json_safe(dict(attributes)), object_id=object_id)
        self.result.pending_exports += 1

    def save_state(self) -> None:
        s = self.state
        cutoff = self.now - timedelta(days=RECYCLE_BIN_DAYS)
        s.recycle_bin = {k: v for k, v in s.recycle_bin.items() if parse_datetime(v["deleted"]) >= cutoff}
        s.written_back = getattr(self, "written_back", s.written_back)
        s.tenant_id = self.store.tenant_id
        s.base_dn = self.base_dn
        if not self.staging:
            # staging exports nothing: the next real cycle must import these changes again
            s.dc = self.dc
            s.watermark = self.new_watermark
            s.synced_objects = len(self.joined)
        s.save(self.state_path)
