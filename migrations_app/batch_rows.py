"""Which addresses may join a batch, row by row: the uploaded CSV and the inventory selection share it.

A row is refused for one reason, the first that applies: malformed, duplicate (of an earlier row),
unknown (no inventoried list has the address), ambiguous (several have it), already migrated, or in
another open batch. Nothing here writes; the services add only what every row allows.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from django.db.models.functions import Lower

from .choices import DONE_MIGRATION_STATUSES, OPEN_BATCH_STATUSES, ListState
from .models import BatchList, DistributionList, Migration

MAX_ROWS = 10_000
MAX_BYTES = 2 * 1024 * 1024
HEADERS = ("address", "mail", "primarysmtpaddress", "email", "smtp")


class CsvUnreadable(ValueError):
    """The file as a whole cannot be read (not text, no address column, too big): no row is judged."""


@dataclass
class Row:
    line: int  # in the file, counting the header and blank lines, as a spreadsheet numbers them
    value: str
    problem: str = ""
    list_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problem


def read_csv(data: bytes) -> list[tuple[int, str]]:
    """(line, cell) of each non-blank row of the address column; a byte-order mark, semicolons and a
    header are accepted, a header naming no address column is not."""
    if len(data) > MAX_BYTES:
        raise CsvUnreadable(f"The file has {len(data):,} bytes; at most {MAX_BYTES // 1024 // 1024} MB "
                            f"({MAX_ROWS:,} addresses) per upload.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvUnreadable("The file is not UTF-8 text: save it as 'CSV UTF-8' and upload it again.") from None
    if "\x00" in text:
        raise CsvUnreadable("The file is not a text file (it holds NUL bytes).")
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    rows = [(n, cells) for n, cells in enumerate(csv.reader(lines, delimiter=delimiter), start=1)
            if any(c.strip() for c in cells)]
    if not rows:
        raise CsvUnreadable("The file holds no address.")
    column = 0
    header = [c.strip().lower() for c in rows[0][1]]
    if not any("@" in c for c in header):
        found = [i for i, c in enumerate(header) if c in HEADERS]
        if not found:
            raise CsvUnreadable(f"The first row ({', '.join(rows[0][1])[:120]!r}) is neither an address nor a "
                                "header naming the address column: call it 'address' (or mail, "
                                "PrimarySmtpAddress).")
        column = found[0]
        rows = rows[1:]
    if len(rows) > MAX_ROWS:
        raise CsvUnreadable(f"The file has {len(rows):,} addresses; at most {MAX_ROWS:,} per upload: split it.")
    return [(n, cells[column] if column < len(cells) else "") for n, cells in rows]


def _malformed(value: str) -> str:
    from .services import MigrationRefused, check_address

    if not value:
        return "malformed: empty"
    if any(ch.isspace() for ch in value):
        return "malformed: it contains a space"
    if any(ord(ch) > 127 for ch in value):
        odd = next(ch for ch in value if ord(ch) > 127)
        return f"malformed: it contains {odd!r} (U+{ord(odd):04X}), not a plain ASCII character (a look-alike?)"
    try:
        check_address(value)
    except MigrationRefused:
        return "malformed: not an e-mail address"
    return ""


def judge(values: list[tuple[int, str]], *, batch=None) -> list[Row]:
    """Each (line, value) with its problem, if any. ``batch``: the batch they would join (rows already in
    it are duplicates, not 'in another batch')."""
    rows = [Row(line=n, value=v.strip()) for n, v in values]
    seen: dict[str, int] = {}
    for row in rows:
        row.problem = _malformed(row.value)
        if row.problem:
            continue
        key = row.value.lower()
        if key in seen:
            row.problem = f"duplicate of line {seen[key]}"
        else:
            seen[key] = row.line
    wanted = [r.value.lower() for r in rows if r.ok]
    by_mail: dict[str, list[DistributionList]] = {}
    migrated: set[str] = set()
    elsewhere: dict[str, int] = {}
    here: set[str] = set()
    for start in range(0, len(wanted), 500):  # SQLite allows a limited number of query parameters
        chunk = wanted[start:start + 500]
        for dl in DistributionList.objects.annotate(m=Lower("mail")).filter(m__in=chunk).only("pk", "mail", "state"):
            by_mail.setdefault(dl.mail.lower(), []).append(dl)
        migrated |= {m.lower() for m in Migration.objects.annotate(m=Lower("mail")).filter(
            m__in=chunk, status__in=DONE_MIGRATION_STATUSES).values_list("mail", flat=True)}
        in_batches = BatchList.objects.annotate(m=Lower("mail")).filter(
            m__in=chunk, batch__status__in=OPEN_BATCH_STATUSES).values_list("mail", "batch_id")
        for mail, batch_id in in_batches:
            if batch is not None and batch_id == batch.pk:
                here.add(mail.lower())
            else:
                elsewhere.setdefault(mail.lower(), batch_id)
    for row in rows:
        if not row.ok:
            continue
        key = row.value.lower()
        found = by_mail.get(key, [])
        if not found:
            row.problem = "unknown: no inventoried list has this address (run the inventory, or check the spelling)"
        elif len(found) > 1:
            row.problem = f"ambiguous: {len(found)} inventoried lists have this address"
        elif found[0].state == ListState.MIGRATED or key in migrated:
            row.problem = "already migrated"
        elif key in here:
            row.problem = "already in this batch"
        elif key in elsewhere:
            row.problem = f"in another open batch (#{elsewhere[key]})"
        else:
            row.list_id = found[0].pk
    return rows
