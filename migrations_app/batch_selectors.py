"""Reads of migration batches for their pages, the approver's queue and the nav badge."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Count, QuerySet

from .choices import EDITABLE_BATCH_STATUSES, BatchListOutcome, BatchStatus
from .models import BatchList, MigrationBatch, Notification


def batches() -> QuerySet[MigrationBatch]:
    return MigrationBatch.objects.select_related("requested_by", "approved_by").annotate(list_count=Count("lists"))


def batch_lists(batch: MigrationBatch) -> list[BatchList]:
    """Each list with ``dependencies``: the objects naming it that its migration rewrites, by attribute."""
    items = list(batch.lists.select_related("distribution_list", "migration").order_by("mail"))
    for item in items:
        deps = ((item.preflight or {}).get("plan") or {}).get("dependencies") or {}
        item.dependencies = sorted((attr, len(dns)) for attr, dns in deps.items())
    return items


def editable_batches_of(user) -> QuerySet[MigrationBatch]:
    """The batches a person can add lists to from the inventory: theirs, still open to change."""
    return MigrationBatch.objects.filter(requested_by=user, status__in=EDITABLE_BATCH_STATUSES).order_by("-created_at")


def batches_awaiting_approval(*, user) -> QuerySet[MigrationBatch]:
    return batches().filter(status=BatchStatus.SUBMITTED).exclude(requested_by=user).order_by("submitted_at")


def signable(batch: MigrationBatch) -> bool:
    return batch.status == BatchStatus.SUBMITTED and bool(batch.plan_hash)


def sign_off_facts(batch: MigrationBatch, lists: list[BatchList]) -> dict[str, Any]:
    """What an approver signs: members affected, dependencies rewritten, warnings, per list and in total."""
    members = dependencies = 0
    warnings: list[dict[str, Any]] = []
    for item in lists:
        report = item.preflight or {}
        members += int(report.get("member_count") or 0)
        deps = (report.get("plan") or {}).get("dependencies") or {}
        dependencies += sum(len(v) for v in deps.values())
        for check in report.get("checks") or []:
            if check.get("outcome") != "pass":
                warnings.append({"mail": item.mail, **check})
    return {"members": members, "dependencies": dependencies, "warnings": warnings,
            "waiting_parents": sum(1 for i in lists if any(c.get("key") in ("nested_groups", "in_place_children")
                                                           and c.get("outcome") == "failure"
                                                           for c in (i.preflight or {}).get("checks") or []))}


def outcome_counts(lists: list[BatchList]) -> dict[str, int]:
    counts = {o: 0 for o in BatchListOutcome.values}
    for item in lists:
        counts[item.outcome] += 1
    return counts


def unread_notifications(*, user) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notifications_of(*, user) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user)[:100]


# The batch report's columns, the same in its CSV, its XLSX and its printable summary.
REPORT_COLUMNS = ("list", "wave", "result", "note", "duration_seconds", "members", "addresses", "warnings", "errors",
                  "migration", "job", "job_url")


def run_report(batch: MigrationBatch) -> list[list]:
    """One row per list: address, wave, run result and why, how long its job took (parked time included),
    members and addresses of the new cloud list (the preflight's member count before it ran), the job's
    warnings and errors, its migration and job."""
    rows = []
    for item in batch.lists.select_related("migration", "migration__job").order_by("mail"):
        migration = item.migration
        job = migration.job if migration else None
        report = (migration.report if migration else None) or {}
        members = (report.get("members") or {}).get("found", (item.preflight or {}).get("member_count", ""))
        addresses = len((report.get("list") or {}).get("addresses") or []) or ""
        duration = round(job.duration.total_seconds()) if job is not None and job.duration is not None else ""
        wave = (item.preflight or {}).get("wave")
        rows.append([item.mail, "" if wave is None else wave + 1, item.get_run_state_display(), item.run_note,
                     duration, members, addresses, job.warning_count if job else "", job.error_count if job else "",
                     item.migration_id or "", job.pk if job else "", job.get_absolute_url() if job else ""])
    return rows


def report_summary(batch: MigrationBatch, rows: list[list]) -> list[tuple[str, object]]:
    """The batch's facts for the change record, as label/value pairs (XLSX summary sheet, printable page)."""
    from .batch_sync import sync_rounds

    states = Counter(row[2] for row in rows)
    rounds = sync_rounds(batch)
    return [
        ("Batch", f"#{batch.pk} {batch.name}"), ("Status", batch.get_status_display()),
        ("Requested by", str(batch.requested_by or "")),
        ("Approved by", str(batch.approved_by or "") if batch.status != "rejected" else ""),
        ("Approved at (UTC)", f"{batch.decided_at:%Y-%m-%d %H:%M}" if batch.decided_at else ""),
        ("Approver's note", batch.decision_note), ("Signed plan hash", batch.plan_hash),
        ("Window", (f"{batch.window_start:%Y-%m-%d %H:%M}" if batch.window_start else "when scheduled")
         + (f" to {batch.window_end:%Y-%m-%d %H:%M} UTC" if batch.window_end else "")),
        ("Started (UTC)", f"{batch.job.started_at:%Y-%m-%d %H:%M}" if batch.job and batch.job.started_at else ""),
        ("Finished (UTC)", f"{batch.finished_at:%Y-%m-%d %H:%M}" if batch.finished_at else ""),
        ("Lists", len(rows)), *((f"Lists {label.lower()}", n) for label, n in sorted(states.items())),
        ("Delta syncs started", sum(1 for r in rounds if r.status == "started")),
    ]
