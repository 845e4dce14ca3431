"""Findings as CSV (streamed, one row at a time, whatever the count) and XLSX: the same columns and cells."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet

from portal.exports import csv_lines as _csv_lines
from portal.exports import xlsx_bytes as _xlsx_bytes

COLUMNS = ("object", "type", "ou", "attribute", "value", "rule", "severity", "connect_health_category",
           "idfix_errors", "proposed_action", "proposed_value", "history", "first_seen", "beyond_idfix",
           "explanation")


def csv_lines(findings: QuerySet, scan) -> Iterator[str]:
    return _csv_lines(COLUMNS, (_cells(f) for f in findings.iterator(chunk_size=2000)))


def _cells(f) -> list:
    return [f.dn, f.object_class, f.ou, f.attribute, f.value, f.rule, f.severity, f.category, " ".join(f.errors),
            f.action, f.proposed_value or "", f.state, f.first_seen.isoformat(), "yes" if f.beyond_idfix else "no",
            f.explanation]


def xlsx_bytes(findings: QuerySet, scan) -> bytes:
    """A workbook with the findings (header frozen, autofilter on every column) and a summary of the scan."""
    summary = [["scan", scan.pk], ["started (UTC)", scan.created_at.strftime("%Y-%m-%d %H:%M:%S")],
               ["objects in sync scope", scan.objects_read], ["tenant objects", scan.cloud_objects_read],
               ["findings", scan.findings_total], ["findings exported", findings.count()]]
    return _xlsx_bytes(title="Address findings", header=list(COLUMNS), summary=summary,
                       rows=(_cells(f) for f in findings.iterator(chunk_size=2000)))
