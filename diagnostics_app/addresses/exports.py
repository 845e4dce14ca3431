"""Findings as CSV (streamed, one row at a time, whatever the count) and XLSX: the same columns and cells."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.db.models import QuerySet

from ..exports import safe_cell

COLUMNS = ("object", "type", "ou", "attribute", "value", "rule", "severity", "connect_health_category",
           "idfix_errors", "proposed_action", "proposed_value", "history", "first_seen", "beyond_idfix",
           "explanation")


def csv_lines(findings: QuerySet, scan) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(COLUMNS)
    yield flush()
    for f in findings.iterator(chunk_size=2000):
        writer.writerow(_cells(f))
        yield flush()


def _cells(f) -> list:
    return [safe_cell(v) for v in (
        f.dn, f.object_class, f.ou, f.attribute, f.value, f.rule, f.severity, f.category, " ".join(f.errors),
        f.action, f.proposed_value or "", f.state, f.first_seen.isoformat(), "yes" if f.beyond_idfix else "no",
        f.explanation)]


def xlsx_bytes(findings: QuerySet, scan) -> bytes:
    """A workbook with the findings (header frozen, autofilter on every column) and a summary of the scan."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.utils import get_column_letter

    def cell(value):
        # A finding's value may hold the very control characters it reports; a worksheet cannot hold them.
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Address findings")
    sheet.freeze_panes = "A2"
    sheet.append(COLUMNS)
    count = 0
    for f in findings.iterator(chunk_size=2000):
        sheet.append([cell(v) for v in _cells(f)])
        count += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{count + 1}"
    summary = book.create_sheet("Summary")
    summary.append(["scan", scan.pk])
    summary.append(["started (UTC)", scan.created_at.strftime("%Y-%m-%d %H:%M:%S")])
    summary.append(["objects in sync scope", scan.objects_read])
    summary.append(["tenant objects", scan.cloud_objects_read])
    summary.append(["findings", scan.findings_total])
    summary.append(["findings exported", count])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
