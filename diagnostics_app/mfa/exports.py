"""The MFA report as CSV, JSON and XLSX: the same columns everywhere, directory data kept inert."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from portal.exports import csv_lines as _csv_lines
from portal.exports import xlsx_bytes as _xlsx_bytes

from ..models import MfaSnapshot, MfaUserRow
from .choices import MfaClass
from .classify import families_label

COLUMNS = ["upn", "display_name", "user_id", "user_type", "enabled", "licensed", "department", "administrator",
           "classification", "classification_label", "can_satisfy_mfa", "usable_methods", "registered_methods",
           "groups", "flags", "reason", "methods_read_because", "deleted_during_snapshot"]


def record(row: MfaUserRow, groups: dict[str, str]) -> dict[str, Any]:
    return {
        "upn": row.upn, "display_name": row.display_name, "user_id": row.user_id, "user_type": row.user_type,
        "enabled": row.enabled, "licensed": row.licensed, "department": row.department,
        "administrator": row.is_admin, "classification": row.classification,
        "classification_label": MfaClass(row.classification).label, "can_satisfy_mfa": row.can_satisfy_mfa,
        "usable_methods": families_label(row.usable), "registered_methods": families_label(row.registered),
        "groups": "; ".join(sorted(groups.get(g, g) for g in row.group_ids)), "flags": ", ".join(row.flags),
        "reason": (row.reasons or [""])[0], "methods_read_because": row.question,
        "deleted_during_snapshot": row.deleted,
    }


def _records(rows: QuerySet[MfaUserRow], snapshot: MfaSnapshot) -> Iterator[dict[str, Any]]:
    for row in rows.defer("evidence").iterator(chunk_size=2000):
        yield record(row, snapshot.groups)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def csv_lines(rows: QuerySet[MfaUserRow], snapshot: MfaSnapshot) -> Iterator[str]:
    return _csv_lines(COLUMNS, ([_text(rec[c]) for c in COLUMNS] for rec in _records(rows, snapshot)))


def json_chunks(rows: QuerySet[MfaUserRow], snapshot: MfaSnapshot) -> Iterator[str]:
    head = {"snapshot": snapshot.pk, "taken_at": snapshot.taken_at.isoformat(), "total_users": snapshot.total_users,
            "counts": snapshot.counts, "licence_missing": snapshot.licence_missing, "message": snapshot.message}
    yield json.dumps(head)[:-1] + ', "users": [\n'
    for n, rec in enumerate(_records(rows, snapshot)):
        yield ("" if n == 0 else ",\n") + json.dumps(rec)
    yield "\n]}\n"


def _xlsx(title: str, columns: list[str], records: Iterable[dict[str, Any]], summary: Iterable[list[Any]]) -> bytes:
    """One sheet of rows and a summary sheet: both workbooks' layout."""
    return _xlsx_bytes(title=title, header=columns, rows=([rec[c] for c in columns] for rec in records),
                       summary=summary)


def xlsx_bytes(rows: QuerySet[MfaUserRow], snapshot: MfaSnapshot) -> bytes:
    summary = [["snapshot", snapshot.pk], ["taken at (UTC)", snapshot.taken_at.strftime("%Y-%m-%d %H:%M:%S")],
               ["users", snapshot.total_users],
               *[[cls.label, int(snapshot.counts.get(cls.value, 0))] for cls in MfaClass]]
    if snapshot.message:
        summary.append(["note", snapshot.message])
    return _xlsx("MFA registration", COLUMNS, _records(rows, snapshot), summary)


READINESS_COLUMNS = ["upn", "display_name", "department", "classification", "why"]


def readiness_csv_lines(result: Any) -> Iterator[str]:
    """Everyone a policy would interrupt in the readiness scope, one row each."""
    return _csv_lines(READINESS_COLUMNS, ([_text(u[k]) for k in ("upn", "display_name", "department", "label", "why")]
                                         for u in result.interrupted))


POLICY_COLUMNS = ["policy", "policy_state", "demand", "upn", "display_name", "user_id", "department", "status",
                  "why_in_scope", "detail", "outcome_across_policies", "classification"]


def policy_records(policy: Any, rows: QuerySet[MfaUserRow]) -> Iterator[dict[str, Any]]:
    """One conditional access policy's users: in or out of scope, and whether they answer its demand."""
    for row in rows.iterator(chunk_size=2000):
        hit = next((h for h in row.policy_hits or () if h.get("policy_id") == policy.policy_id), {})
        yield dict(zip(POLICY_COLUMNS, [
            policy.display_name, policy.state_label, (policy.demand or {}).get("label", ""), row.upn,
            row.display_name, row.user_id, row.department, hit.get("status", ""), hit.get("why", ""),
            hit.get("detail", ""), row.get_policy_outcome_display(), MfaClass(row.classification).label], strict=True))


def policy_csv_lines(policy: Any, rows: QuerySet[MfaUserRow]) -> Iterator[str]:
    return _csv_lines(POLICY_COLUMNS, ([_text(rec[c]) for c in POLICY_COLUMNS] for rec in policy_records(policy, rows)))


def policy_xlsx_bytes(policy: Any, rows: QuerySet[MfaUserRow], targets: Iterable[tuple[str, str]] = ()) -> bytes:
    """The policy view as a workbook: its users (as the CSV), and the policy itself on the summary sheet."""
    summary = [["policy", policy.display_name], ["state", policy.state_label],
               ["demand", (policy.demand or {}).get("label", "")], ["snapshot", policy.snapshot_id],
               ["in scope", policy.in_scope], ["able", policy.able], ["will be interrupted", policy.interrupted],
               ["not evaluated", policy.not_evaluated], ["excluded", policy.excluded],
               ["disabled or deleted accounts left out", policy.left_out],
               *[[side, what] for side, what in targets],
               *[["problem", str(p)] for p in policy.problems or ()]]
    return _xlsx("Policy users", POLICY_COLUMNS,
                 ({k: _text(v) if isinstance(v, bool) or v is None else v for k, v in rec.items()}
                  for rec in policy_records(policy, rows)), summary)
