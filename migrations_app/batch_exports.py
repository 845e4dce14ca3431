"""A batch's report as a workbook: one row per list (the CSV's columns) and the batch's facts."""

from __future__ import annotations

import io

from diagnostics_app.exports import safe_cell

from . import batch_selectors as bsel
from .models import MigrationBatch


def xlsx_bytes(batch: MigrationBatch) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.utils import get_column_letter

    def cell(value):
        # Notes quote directory data and job summaries: never a formula, never a character a sheet refuses.
        value = safe_cell(value)
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value

    rows = bsel.run_report(batch)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Lists")
    sheet.freeze_panes = "A2"
    sheet.append(bsel.REPORT_COLUMNS)
    for row in rows:
        sheet.append([cell(v) for v in row])
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(bsel.REPORT_COLUMNS))}{len(rows) + 1}"
    summary = book.create_sheet("Summary")
    for label, value in bsel.report_summary(batch, rows):
        summary.append([label, cell(value)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
