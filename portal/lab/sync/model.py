"""Errors, options and results of a sync cycle, and the per-object records a cycle works on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from portal.addressing import proxycalc
from portal.lab.cloud.store.common import iso, utc_now

from .constants import SYNC_ALREADY_RUNNING, Kind
from .scoping import _Attrs

# --- errors and results ------------------------------------------------------------------------


class SyncError(RuntimeError):
    """A cycle could not run."""


class SyncAlreadyRunning(SyncError):
    """Another cycle holds the sync server (this process or another one)."""

    def __init__(self, message: str = SYNC_ALREADY_RUNNING) -> None:
        super().__init__(message)


@dataclass(frozen=True, kw_only=True)
class SyncOptions:
    """The Entra Connect server's configuration (the wizard's choices) for the lab's cycles."""

    latency_seconds: float = 0.0  # how long a cycle takes at least (the demo shows a busy sync server)
    staging_mode: bool | None = None  # None: the scheduler's StagingModeEnabled in the store
    exchange_hybrid: bool = True  # Exchange hybrid writeback (optional features page)
    consistency_guid_writeback: bool = True  # ms-DS-ConsistencyGuid as source anchor (written back)
    group_writeback_enabled: bool = True  # Group writeback (optional features page)
    writeback_display_name: bool = False  # "Writeback Group Distinguished Name with cloud Display Name"
    delete_groups_disabled_for_writeback: bool = False  # "Modify group writeback" doc's changed default
    duplicate_attribute_resiliency: bool = True  # on for every tenant since 2016
    block_soft_match: bool = False  # BlockSoftMatchEnabled of the tenant's sync features

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SyncOptions:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown sync options: {', '.join(sorted(unknown))}")
        return cls(**dict(data))


@dataclass
class KindCounts:
    adds: int = 0
    updates: int = 0
    deletes: int = 0


@dataclass(frozen=True)
class ExportErrorRecord:
    connector: str
    distinguished_name: str
    error_code: str
    attribute: str | None
    message: str


@dataclass
class CycleResult:
    """What one cycle did. ``as_dict()`` is what the run history keeps (``Get-ADSyncRunProfileResult``)."""

    policy: str
    effective_policy: str = ""
    run_id: int | None = None
    staging: bool = False
    started: datetime = field(default_factory=utc_now)
    finished: datetime | None = None
    duration_seconds: float = 0.0
    imported: int = 0  # objects read with all their attributes
    in_scope: int = 0  # objects listed in the sync OUs
    counts: dict[str, KindCounts] = field(
        default_factory=lambda: {k: KindCounts() for k in ("user", "group", "contact", "recipient")})
    membership_changes: int = 0
    export_errors: list[ExportErrorRecord] = field(default_factory=list)
    writebacks: dict[str, int] = field(default_factory=lambda: {
        "x500": 0, "external_directory_object_id": 0, "consistency_guid": 0, "group_adds": 0,
        "group_updates": 0, "group_renames": 0, "group_deletes": 0})
    pending_exports: int = 0
    cloud_writes: int = 0
    ad_writes: int = 0
    fallback_reason: str | None = None
    watermark: int | None = None
    orphaned_writeback_groups: int = 0
    soft_matches: int = 0
    cloud_managed: int = 0  # joined objects whose source of authority is the cloud (left alone)
    cloud_managed_reverted: list[str] = field(default_factory=list)  # object ids an old client took back
    touched: list[str] = field(default_factory=list)  # DNs whose cloud object changed (the first 100)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def result(self) -> str:
        """The run profile result as the sync server names it."""
        return "completed-export-errors" if self.export_errors else "success"

    @property
    def writes(self) -> int:
        return self.cloud_writes + self.ad_writes

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started"] = iso(self.started)
        data["finished"] = iso(self.finished) if self.finished else None
        data["Result"] = self.result
        data["export_errors"] = [asdict(e) for e in self.export_errors]
        return data


# --- what a cycle keeps per object --------------------------------------------------------------


@dataclass
class _Entry:
    """An object listed in the sync OUs (the import's skeleton)."""

    guid: UUID
    dn: str
    kind: str
    usn: int
    anchor: str | None
    writeback_id: str | None  # a written-back cloud group (msDS-ExternalDirectoryObjectId Group_<id>)


@dataclass
class _Plan:
    """What one in-scope AD object should be in the cloud."""

    attrs: _Attrs
    kind: Kind
    anchor: str
    dn: str
    guid: UUID
    oid: str | None  # the joined cloud object
    props: dict[str, Any]
    calc: proxycalc.ProxyCalcResult | None = None
    recipient_type: str | None = None
    recipient_props: dict[str, Any] = field(default_factory=dict)
    legacy_dn: str | None = None
    error: tuple[str, str | None, str] | None = None  # (code, attribute, message)
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (property, value)
    exported: bool = False
    added: bool = False
    restore_id: str | None = None  # the object id it had before it left the scope (recycle bin)
    soft_matched: bool = False
