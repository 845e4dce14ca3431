"""Writes of the diagnostics area (MFA registration): start a snapshot, store what it collected."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from portal.audit.services import record
from portal.bulk import insert_rows
from portal.heap import growing_heap
from portal.jobs.models import Job
from portal.jobs.services import do_start_job

from ..models import MfaPolicy, MfaSnapshot, MfaUserRow
from .choices import SnapshotStatus
from .collect import CollectOptions, CollectResult

SNAPSHOT_JOB = "mfa_snapshot"
STORE_BATCH = 2_000


def snapshot_params(*, audit_days: int = 30, method_read_limit: int = 2_000, fallback_limit: int = 5_000,
                    max_groups: int = 500) -> dict[str, int]:
    for name, value, low, high in (("audit_days", audit_days, 1, 30), ("method_read_limit", method_read_limit, 0,
                                   100_000), ("fallback_limit", fallback_limit, 0, 100_000),
                                   ("max_groups", max_groups, 0, 10_000)):
        if not low <= int(value) <= high:
            raise ValueError(f"{name} must be between {low} and {high}")
    return {"audit_days": int(audit_days), "method_read_limit": int(method_read_limit),
            "fallback_limit": int(fallback_limit), "max_groups": int(max_groups)}


def options_from(params: dict[str, Any]) -> CollectOptions:
    p = snapshot_params(**{k: v for k, v in params.items() if k in
                           ("audit_days", "method_read_limit", "fallback_limit", "max_groups")})
    return CollectOptions(**p)


def do_start_snapshot(*, user, request=None, enqueue: bool = True, **params: int) -> Job:
    """Queue an MFA snapshot job (a change-free read that costs Graph calls)."""
    return do_start_job(kind=SNAPSHOT_JOB, user=user, params=snapshot_params(**params),
                        target="Entra ID: MFA registration", request=request, enqueue=enqueue)


def _row(snapshot: MfaSnapshot, rec: Any) -> dict[str, Any]:
    """One user's row, as :func:`portal.bulk.insert_rows` writes it (field attnames)."""
    facts, verdict = rec.facts, rec.verdict
    return dict(
        snapshot_id=snapshot.pk, user_id=facts.id[:64], upn=(facts.upn or "")[:320],
        display_name=(facts.display_name or "")[:256], user_type=(facts.user_type or "")[:16],
        enabled=facts.enabled, licensed=facts.licensed, department=(facts.department or "")[:128],
        is_admin=verdict.is_admin, classification=verdict.classification, can_satisfy_mfa=verdict.can_satisfy_mfa,
        usable=list(verdict.usable), registered=list(verdict.registered),
        usable_key=("," + ",".join(verdict.usable) + ",") if verdict.usable else "",
        group_ids=list(rec.groups), groups_key=("," + ",".join(rec.groups) + ",") if rec.groups else "",
        flags=list(verdict.flags), reasons=list(verdict.reasons), evidence=verdict.evidence,
        question=rec.question[:64], deleted=facts.deleted,
        policy_outcome=rec.policy.outcome if rec.policy else "",
        policy_hits=[h.as_json() for h in rec.policy.hits] if rec.policy else [],
        policy_reasons=list(rec.policy.reasons) if rec.policy else [],
        policy_key=rec.policy.key() if rec.policy else "",
    )


def _policies(snapshot: MfaSnapshot, result: CollectResult) -> list[MfaPolicy]:
    """One row per policy read, with its counts over the snapshot's enabled accounts: the population of the
    report's figures and of the outcome table (disabled accounts do not sign in; deleted ones are gone), so a
    policy's "would be interrupted" adds up with theirs. The accounts left out are counted apart."""
    read = result.policy_read
    if read is None:
        return []
    counts: dict[str, dict[str, int]] = {d["policy_id"]: {} for d in read.details}
    for rec in result.users.values():
        status_of = "left_out" if rec.facts.deleted or rec.facts.enabled is False else None
        for hit in rec.policy.hits if rec.policy else ():
            c = counts.get(hit.policy_id)
            if c is not None:
                status = status_of or hit.status
                c[status] = c.get(status, 0) + 1
    out = []
    for d in read.details:
        c = counts[d["policy_id"]]
        ids = {str(v).lower() for k in ("includeUsers", "excludeUsers", "includeGroups", "excludeGroups",
                                         "includeRoles", "excludeRoles") for v in d["users"].get(k) or ()}
        out.append(MfaPolicy(
            snapshot=snapshot, policy_id=d["policy_id"][:64], display_name=(d["display_name"] or "")[:256],
            state=(d["state"] or "")[:48], demand_kind=d["demand"]["kind"], demand=d["demand"], users=d["users"],
            conditions=d["conditions"], controls=d["controls"], problems=d["problems"],
            names={i: read.names[i] for i in ids if i in read.names}, modified=d["modified"],
            in_scope=sum(v for k, v in c.items() if k not in ("excluded", "left_out")), able=c.get("able", 0),
            interrupted=c.get("interrupted", 0), not_evaluated=c.get("unknown", 0), excluded=c.get("excluded", 0),
            left_out=c.get("left_out", 0)))
    return out


@growing_heap()  # the collected snapshot is in memory while its rows are built (portal/heap.py)
def do_store_snapshot(result: CollectResult, *, job: Job | None = None, user=None,
                      audit_days: int = 30) -> MfaSnapshot:
    """Store one collected snapshot and its rows (earlier snapshots stay: the trend reads them)."""
    counts = {str(k): v for k, v in result.counts().items()}
    methods: dict[str, int] = {}
    departments: set[str] = set()
    for rec in result.users.values():
        for family in rec.verdict.usable:
            methods[family] = methods.get(family, 0) + 1
        if rec.facts.department:
            departments.add(rec.facts.department)
    outcomes: dict[str, int] = {}
    for rec in result.users.values():
        if rec.policy is not None:
            outcomes[str(rec.policy.outcome)] = outcomes.get(str(rec.policy.outcome), 0) + 1
    message = result.licence_message
    if result.methods_skipped:
        message = (message + " " if message else "") + (
            f"{result.methods_skipped:,} user(s) needed a per-user read beyond the bound; see the job log.")
    with transaction.atomic():
        snapshot = MfaSnapshot.objects.create(
            taken_at=result.started, job=job, started_by=user,
            status=SnapshotStatus.FALLBACK if result.licence_missing else SnapshotStatus.COMPLETE,
            licence_missing=result.licence_missing, message=message, total_users=len(result.users),
            counts=counts, method_counts=methods, groups=result.groups, departments=sorted(departments),
            graph_calls=result.graph_calls, phases=result.phases, questions=result.questions,
            methods_read=result.methods_read, methods_skipped=result.methods_skipped, audit_days=audit_days,
            notes=result.notes[:200],
            policies_read=bool(result.policy_read and result.policy_read.read),
            security_defaults=result.policy_read.security_defaults if result.policy_read else None,
            policies_message=result.policy_read.message if result.policy_read else "",
            policy_problems=result.policy_read.problems[:100] if result.policy_read else [],
            outcome_counts=outcomes,
        )
        MfaPolicy.objects.bulk_create(_policies(snapshot, result))
        insert_rows(MfaUserRow, (_row(snapshot, rec) for rec in result.users.values()), batch=STORE_BATCH)
    record(actor=user, action="mfa.snapshot", target=f"mfa_snapshot:{snapshot.pk}", job=job,
           after={"users": snapshot.total_users, "counts": counts, "graph_calls": result.graph_calls,
                  "licence_missing": result.licence_missing})
    return snapshot
