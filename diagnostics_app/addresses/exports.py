"""CSV export of findings, streamed (one row at a time, whatever the count)."""

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
        writer.writerow([safe_cell(v) for v in (
            f.dn, f.object_class, f.ou, f.attribute, f.value, f.rule, f.severity, f.category, " ".join(f.errors),
            f.action, f.proposed_value or "", f.state, f.first_seen.isoformat(), "yes" if f.beyond_idfix else "no",
            f.explanation)])
        yield flush()
