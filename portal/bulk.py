"""Many rows of one model written by one INSERT per batch, from plain values.

``bulk_create`` builds a model instance for each row and prepares each field through the ORM: for a snapshot of
100,000 users (26 columns, 8 of them JSON) that was about 300 us of CPU a row, 34 s, most of it Django's
machinery around values sqlite3 and psycopg take as they are. :func:`insert_rows` writes the same rows with
``executemany``: text, numbers, booleans and foreign keys go as they are, JSON is encoded once with orjson,
date-times as the database's backend adapts them (``auto_now`` and ``auto_now_add`` take the statement's time,
as a save would give them). What it stores reads back through the ORM exactly as ``bulk_create``'s rows do
(tests/unit/test_bulk.py, on SQLite and PostgreSQL). Fields of any other kind are refused when the statement
is built, before any row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from itertools import islice
from typing import Any

import orjson
from django.db import connections, models, router
from django.utils import timezone

_AS_IS = (models.CharField, models.TextField, models.BooleanField, models.IntegerField, models.ForeignKey)


def json_text(value: Any) -> str:
    """A JSON column's text as :func:`insert_rows` writes it: keys that are not text become text, as json.dumps
    makes them; a dataclass is written as its fields, a date-time in ISO 8601 (orjson's own)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _column(field: models.Field, connection: Any, now: Any) -> tuple[str, Callable[[Any], Any] | None]:
    """The placeholder of one column and how its value is written (None: as it is)."""
    vendor = connection.vendor
    if isinstance(field, models.JSONField):
        if field.encoder is not None:
            raise TypeError(f"{field.model.__name__}.{field.name}: a JSON field with its own encoder is not supported")
        # None is SQL NULL where the column allows it, else JSON's null, as the ORM writes it
        write = (lambda v: None if v is None else json_text(v)) if field.null else json_text
        return ("%s::jsonb" if vendor == "postgresql" else "%s"), write
    if isinstance(field, models.DateTimeField):
        if field.auto_now or field.auto_now_add:
            stamp = field.get_db_prep_value(now, connection)
            return "%s", lambda v: stamp
        # a naive value is made aware with the ORM's warning, as a save makes it
        return "%s", lambda v: field.get_db_prep_value(v, connection)
    if isinstance(field, _AS_IS):
        return "%s", None
    raise TypeError(f"{field.model.__name__}.{field.name}: {type(field).__name__} is not supported by insert_rows")


def insert_rows(model: type[models.Model], rows: Iterable[Mapping[str, Any]], *, batch: int = 2_000) -> int:
    """Insert ``rows`` (each a mapping of field attname, e.g. ``snapshot_id``, to value; a field left out takes
    its default) into ``model``'s table, ``batch`` rows per statement, in the caller's transaction. Returns the
    number of rows written. The primary key is the database's to give."""
    connection = connections[router.db_for_write(model)]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    now = timezone.now()
    columns = [_column(f, connection, now) for f in fields]
    quote = connection.ops.quote_name
    sql = (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608 - the model's own names
           f"VALUES ({', '.join(placeholder for placeholder, _ in columns)})")
    defaults = {f.attname: f.get_default() for f in fields}
    steps = [(f.attname, write) for f, (_, write) in zip(fields, columns, strict=True)]

    def values(row: Mapping[str, Any]) -> tuple[Any, ...]:
        unknown = row.keys() - defaults.keys()
        if unknown:
            raise TypeError(f"{model.__name__} has no field(s) {', '.join(sorted(unknown))}")
        out = []
        for name, write in steps:
            value = row[name] if name in row else defaults[name]
            out.append(value if write is None else write(value))
        return tuple(out)

    written = 0
    it = iter(rows)
    with connection.cursor() as cursor:
        while chunk := [values(row) for row in islice(it, batch)]:
            cursor.executemany(sql, chunk)
            written += len(chunk)
    return written
