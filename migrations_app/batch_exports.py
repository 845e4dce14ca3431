"""A batch's report as a workbook: one row per list (the CSV's columns) and the batch's facts."""

from __future__ import annotations

from portal.exports import xlsx_bytes as _xlsx_bytes

from . import batch_selectors as bsel
from .models import MigrationBatch


def xlsx_bytes(batch: MigrationBatch) -> bytes:
    rows = bsel.run_report(batch)
    return _xlsx_bytes(title="Lists", header=list(bsel.REPORT_COLUMNS), rows=rows,
                       summary=bsel.report_summary(batch, rows))
