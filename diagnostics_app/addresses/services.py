"""Writes of Address repair: start a scan, store its findings as they come, close it with the history."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from portal.bulk import insert_rows
from portal.jobs.models import Job
from portal.jobs.services import do_start_job

from ..models import AddressFinding, AddressScan
from .choices import FindingState, ScanStatus
from .rules import Finding

SCAN_JOB = "address_scan"
STORE_BATCH = 1_000
MAX_SKIPPED_KEPT = 1_000


def do_start_scan(*, user, request=None, enqueue: bool = True) -> Job:
    """Queue an address scan (reads AD's sync scope and the tenant; changes nothing)."""
    return do_start_job(kind=SCAN_JOB, user=user, params={}, target="Address repair: sync scope and tenant",
                        request=request, enqueue=enqueue)


def do_begin_scan(*, job: Job | None, user, scope: Iterable[str]) -> AddressScan:
    return AddressScan.objects.create(job=job, started_by=user, scope=list(scope))


def finding_key(dn: str, attribute: str, rule: str, value: str) -> str:
    return hashlib.sha256("\x1f".join((dn, attribute, rule, value)).lower().encode("utf-8", "replace")).hexdigest()


def _parent(dn: str) -> str:
    # The first unescaped comma ends the RDN.
    escaped = False
    for index, char in enumerate(dn):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            return dn[index + 1:]
    return ""


def _clean(text: str | None) -> str | None:
    # PostgreSQL text refuses NUL; the rules already escape control characters in values they show.
    return text.replace("\x00", "\\x00") if isinstance(text, str) else text


def do_store_findings(*, scan: AddressScan, findings: Iterable[Finding], now: datetime | None = None) -> int:
    """Append findings to a running scan (called per page by the job); the history is set at :func:`do_finish_scan`."""
    now = now or timezone.now()
    # plain rows through portal.bulk.insert_rows: no model instance per finding (36,000 at the bench's full size)
    return insert_rows(AddressFinding, (dict(
        scan_id=scan.pk, key=finding_key(f.dn, f.attribute, f.rule, f.value), first_seen=now, dn=_clean(f.dn),
        ou=_clean(_parent(f.dn)), object_class=f.object_class[:32], attribute=f.attribute[:64],
        value=_clean(f.value), rule=str(f.rule), severity=str(f.severity), category=str(f.category),
        errors=f.errors.labels, action=str(f.action), proposed_value=_clean(f.proposed_value),
        explanation=_clean(f.explanation), beyond_idfix=f.beyond_idfix, fix=f.fix.as_dict() if f.fix else None,
        others=list(f.others)) for f in findings), batch=STORE_BATCH)


def previous_scan(scan: AddressScan) -> AddressScan | None:
    return (AddressScan.objects.filter(status=ScanStatus.COMPLETE, created_at__lte=scan.created_at)
            .exclude(pk=scan.pk).order_by("-created_at", "-id").first())


@transaction.atomic
def do_finish_scan(*, scan: AddressScan, objects_read: int, cloud_objects_read: int,
                   skipped: list[tuple[str, str]], message: str = "") -> AddressScan:
    """Close the scan: each finding is new or still present against the last complete scan (keeping when it was
    first seen), and the last scan's findings that are not raised any more are copied in as gone."""
    before = previous_scan(scan)
    if before is not None:
        seen = dict(before.findings.exclude(state=FindingState.GONE).values_list("key", "first_seen"))
        current = scan.findings.all().only("id", "key")
        still = []
        for row in current.iterator(chunk_size=STORE_BATCH):
            if row.key in seen:
                row.state, row.first_seen = FindingState.STILL_PRESENT, seen[row.key]
                still.append(row)
        AddressFinding.objects.bulk_update(still, ["state", "first_seen"], batch_size=STORE_BATCH)
        present = set(scan.findings.values_list("key", flat=True))
        gone = []
        for row in before.findings.exclude(state=FindingState.GONE).iterator(chunk_size=STORE_BATCH):
            if row.key not in present:
                row.pk, row.scan, row.state = None, scan, FindingState.GONE
                gone.append(row)
        AddressFinding.objects.bulk_create(gone, batch_size=STORE_BATCH)
        scan.gone_total = len(gone)
    live = scan.findings.exclude(state=FindingState.GONE)
    counts: dict[str, dict[str, int]] = {}
    for field in ("rule", "severity", "category", "state"):
        counts[field] = {k or "": n for k, n in live.values_list(field).annotate(n=Count("id")).order_by()}
    scan.counts = counts
    scan.findings_total = live.count()
    scan.objects_read, scan.cloud_objects_read = objects_read, cloud_objects_read
    scan.skipped = [list(s) for s in skipped[:MAX_SKIPPED_KEPT]]
    scan.skipped_total = len(skipped)
    scan.status, scan.finished_at, scan.message = ScanStatus.COMPLETE, timezone.now(), message
    scan.save()
    return scan


def do_fail_scan(*, scan: AddressScan, message: str) -> None:
    scan.status, scan.finished_at, scan.message = ScanStatus.FAILED, timezone.now(), message[:2000]
    scan.save(update_fields=["status", "finished_at", "message"])

