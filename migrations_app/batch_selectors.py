"""Reads of migration batches for their pages, the approver's queue and the nav badge."""

from __future__ import annotations

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


def run_report(batch: MigrationBatch) -> list[list]:
    """One row per list: address, wave, run result, why, migration, job and its warnings."""
    rows = []
    for item in batch.lists.select_related("migration", "migration__job").order_by("mail"):
        job = item.migration.job if item.migration else None
        rows.append([item.mail, (item.preflight or {}).get("wave", ""), item.get_run_state_display(), item.run_note,
                     item.migration_id or "", job.pk if job else "", job.get_absolute_url() if job else "",
                     job.warning_count if job else ""])
    return rows
