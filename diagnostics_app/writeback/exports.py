"""A writeback plan (and its Cloud Sync readiness) as CSV: the same columns as the page, directory data inert."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from portal.exports import csv_lines

from ..models import WritebackPlanRow
from .choices import CloudSyncVerdict, RowSection

PLAN_COLUMNS = ["section", "display_name", "object_id", "current_dn", "planned_dn", "planned_cn", "truncated",
                "flags", "changes", "collides", "collides_with", "same_display_name_as", "risks", "risk_detail",
                "mail_enabled", "security_enabled", "writeback_enabled", "on_premises_group_type", "cloud_sync",
                "cloud_sync_notes"]
READINESS_COLUMNS = ["display_name", "object_id", "current_dn", "group_kind", "cloud_sync", "what_to_do"]


def group_kind(row: WritebackPlanRow) -> str:
    if "Unified" in (row.group_types or []):
        return "Microsoft 365 group"
    if row.mail_enabled:
        return "mail-enabled security group" if row.security_enabled else "distribution list"
    return "security group" if row.security_enabled else "unknown"


def plan_csv_lines(rows: Iterable[WritebackPlanRow]) -> Iterator[str]:
    def values(r: WritebackPlanRow) -> list:
        detail = "; ".join(f"{k}: {' | '.join(v)}" for k, v in sorted((r.risk_detail or {}).items()))
        collides = " | ".join([*r.collision.get("object_ids", []), *r.collision.get("dns", [])]) if r.collides else ""
        return [RowSection(r.section).label, r.display_name, r.object_id, r.current_dn, r.planned_dn, r.planned_cn,
                r.truncated, ", ".join(r.flags), "; ".join(r.changes), r.collides, collides,
                " | ".join(r.same_display_name), ", ".join(r.risks), detail, r.mail_enabled, r.security_enabled,
                r.writeback_enabled, r.on_premises_group_type,
                CloudSyncVerdict(r.cloud_sync).label if r.cloud_sync else "", "; ".join(r.cloud_sync_notes)]
    return csv_lines(PLAN_COLUMNS, (values(r) for r in rows))


def readiness_csv_lines(rows: Iterable[WritebackPlanRow]) -> Iterator[str]:
    return csv_lines(READINESS_COLUMNS, ([r.display_name, r.object_id, r.current_dn, group_kind(r),
                                       CloudSyncVerdict(r.cloud_sync).label if r.cloud_sync else "",
                                       "; ".join(r.cloud_sync_notes)] for r in rows))
