"""Downloads every area offers (CSV streamed row by row, XLSX with a summary sheet), written one way: directory
data is untrusted, so a cell a spreadsheet would run as a formula is kept as text, and a character a worksheet
cannot hold (the control characters a finding may be about) is replaced rather than failing the whole export.
Each area keeps its columns and how its values read; this module only writes them."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"


def safe_cell(value: Any) -> Any:
    """A spreadsheet runs a cell starting with = + - @ (or a tab / CR) as a formula; directory data is untrusted."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def _sheet_cell(value: Any) -> Any:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    value = safe_cell(value)
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value


class _Echo:
    """csv.writer's file: each row is handed back as text, to be streamed."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The header, then one line per row, each cell formula-safe; nothing held in memory."""
    writer = csv.writer(_Echo())
    yield writer.writerow(list(header))
    for row in rows:
        yield writer.writerow([safe_cell(v) for v in row])


def xlsx_bytes(*, title: str, header: list[str], rows: Iterable[Iterable[Any]],
               summary: Iterable[Iterable[Any]] = ()) -> bytes:
    """One sheet of rows (header frozen, autofilter over every row) and a "Summary" sheet of label/value lines."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])  # Excel's limit for a sheet name
    sheet.freeze_panes = "A2"  # the header stays in view while scrolling
    sheet.append(header)
    count = 0
    for row in rows:
        sheet.append([_sheet_cell(v) for v in row])
        count += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{count + 1}"
    side = book.create_sheet("Summary")
    for line in summary:
        side.append([_sheet_cell(v) for v in line])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def filename(kind: str, pk: Any, when: datetime | None, extension: str,
             filters: Mapping[str, Any] | None = None) -> str:
    """``<kind>-<pk>-<yyyymmdd-hhmm>[-<filter>].<ext>``: named after what it exports and, when filtered, after the
    filter, so two files never look alike."""
    used = [f"{k}-{v}" for k, v in sorted((filters or {}).items()) if v not in (None, "", [])]
    tag = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(used))[:80]
    stamp = f"-{when:%Y%m%d-%H%M}" if when else ""
    return f"{kind}-{pk}{stamp}{'-' + tag if tag else ''}.{extension}"


def download(content: bytes | str | Iterable[str], *, name: str, content_type: str) -> HttpResponse:
    """An attachment: bytes or text at once, or an iterator of lines streamed as they come."""
    if isinstance(content, (bytes, str)):
        response: HttpResponse = HttpResponse(content, content_type=content_type)
    else:
        response = StreamingHttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
