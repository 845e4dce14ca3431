"""Writes of the diagnostics area (MFA registration): start a snapshot, store what it collected."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction

from portal.audit.services import record
from portal.bulk import insert_rows
from portal.heap import growing_heap
from portal.jobs.models import Job
from portal.jobs.services import do_start_job

from ..models import MfaAuditEvent, MfaAuditJournal, MfaPolicy, MfaSnapshot, MfaUserRow
from .choices import SnapshotStatus
from .collect import AUDIT_READ_KEY, CollectOptions, CollectResult

SNAPSHOT_JOB = "mfa_snapshot"
STORE_BATCH = 2_000
MAX_AUDIT_DAYS = 30  # the widest window a snapshot may ask for (snapshot_params): the journal keeps no older event


def snapshot_params(*, audit_days: int = 30, method_read_limit: int = 2_000, fallback_limit: int = 5_000,
                    max_groups: int = 500, full_audit: bool = False) -> dict[str, int | bool]:
    for name, value, low, high in (("audit_days", audit_days, 1, MAX_AUDIT_DAYS),
                                   ("method_read_limit", method_read_limit, 0, 100_000),
                                   ("fallback_limit", fallback_limit, 0, 100_000),
                                   ("max_groups", max_groups, 0, 10_000)):
        if not low <= int(value) <= high:
            raise ValueError(f"{name} must be between {low} and {high}")
    return {"audit_days": int(audit_days), "method_read_limit": int(method_read_limit),
            "fallback_limit": int(fallback_limit), "max_groups": int(max_groups), "full_audit": bool(full_audit)}


def options_from(params: dict[str, Any]) -> CollectOptions:
    p = snapshot_params(**{k: v for k, v in params.items() if k in
                           ("audit_days", "method_read_limit", "fallback_limit", "max_groups", "full_audit")})
    return CollectOptions(**p)


def do_start_snapshot(*, user, request=None, enqueue: bool = True, **params: int | bool) -> Job:
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


def _keep_audit(*, tenant: str, result: CollectResult) -> None:
    """Keep the audit events this snapshot read in ``tenant``'s journal, for the next snapshot (selectors.known_audit):
    a full read replaces the journal; a read that followed it adds what was new and drops what no window reaches."""
    audit = result.audit
    journal = MfaAuditJournal.objects.select_for_update().filter(tenant=tenant).first()
    horizon = result.started - timedelta(days=MAX_AUDIT_DAYS)
    fresh = audit.fresh
    if audit.incremental and journal is not None and journal.read_key == AUDIT_READ_KEY:
        # a snapshot that ran beside this one, from the same journal, may have kept some of them already
        kept = set(journal.events.filter(time__gte=audit.since).values_list("audit_id", "user_id"))
        fresh = [(uid, e) for uid, e in fresh if (e.id[:200], uid[:64]) not in kept]
        journal.events.filter(time__lt=horizon).delete()
        journal.covered_from = max(journal.covered_from, horizon)
        journal.read_until = max(journal.read_until, result.started)
        journal.save()
    else:
        if journal is not None:
            journal.delete()
        journal = MfaAuditJournal.objects.create(tenant=tenant, read_key=AUDIT_READ_KEY, covered_from=audit.since,
                                                 read_until=result.started)
    insert_rows(MfaAuditEvent, (dict(
        journal_id=journal.pk, audit_id=e.id[:200], user_id=uid[:64], time=e.time, activity=e.activity[:200],
        kind=e.kind[:32], detail=e.detail, actor=e.actor[:400], added_devices=list(e.added_devices),
        had_devices=e.had_devices) for uid, e in fresh), batch=STORE_BATCH)


@growing_heap()  # the collected snapshot is in memory while its rows are built (portal/heap.py)
def do_store_snapshot(result: CollectResult, *, job: Job | None = None, user=None,
                      audit_days: int = 30, tenant: str = "") -> MfaSnapshot:
    """Store one collected snapshot and its rows (earlier snapshots stay: the trend reads them), and, given the
    ``tenant`` it was read from, the audit events it read (the next snapshot of that tenant reads fewer)."""
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
            audit_since=result.audit.since if result.audit else None,
            audit_read=len(result.audit.fresh) if result.audit else 0,
            audit_from_journal=result.audit.known if result.audit else 0,
            notes=result.notes[:200],
            policies_read=bool(result.policy_read and result.policy_read.read),
            security_defaults=result.policy_read.security_defaults if result.policy_read else None,
            policies_message=result.policy_read.message if result.policy_read else "",
            policy_problems=result.policy_read.problems[:100] if result.policy_read else [],
            outcome_counts=outcomes,
        )
        MfaPolicy.objects.bulk_create(_policies(snapshot, result))
        insert_rows(MfaUserRow, (_row(snapshot, rec) for rec in result.users.values()), batch=STORE_BATCH)
        if tenant and result.audit is not None:
            _keep_audit(tenant=tenant, result=result)
    record(actor=user, action="mfa.snapshot", target=f"mfa_snapshot:{snapshot.pk}", job=job,
           after={"users": snapshot.total_users, "counts": counts, "graph_calls": result.graph_calls,
                  "licence_missing": result.licence_missing})
    return snapshot
