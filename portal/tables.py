"""What every table of the portal shares (django-tables2): a page size the reader may choose, within bounds;
cells rendered in Python (a badge, a date) rather than by a template per cell."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_tables2 as tables
from django.core.paginator import Paginator
from django.db import models
from django.template.base import render_value_in_context
from django.templatetags.l10n import localize, unlocalize
from django.utils import dateformat, timezone
from django.utils.formats import date_format
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django_tables2 import utils as _tables_utils
from django_tables2.columns import ManyToManyColumn
from django_tables2.columns.linkcolumn import BaseLinkColumn
from django_tables2.rows import BoundRow

from portal.template_values import value_text

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200


def clamp_per_page(value: object, default: int = DEFAULT_PER_PAGE) -> int:
    """``?per_page=`` as asked, at most MAX_PER_PAGE; anything but a positive whole number gives ``default``."""
    try:
        number = int(str(value))
    except ValueError:
        return default
    return min(number, MAX_PER_PAGE) if number > 0 else default


_signature = _tables_utils.signature
_SIGNATURES: dict[Any, tuple] = {}


def _cached_signature(fn: Any) -> tuple:
    """django-tables2 asks inspect.signature which arguments a render method or linkify callable takes, once
    per cell (call_with_appropriate): a fifth of a 50-row page's time under load. A function's signature does
    not change, so it is asked once per function (a bound method by its function)."""
    func = getattr(fn, "__func__", None)
    key = (func, True) if func is not None else (fn, False)
    try:
        return _SIGNATURES[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable callable: as before
        return _signature(fn)
    if len(_SIGNATURES) > 4096:  # callables made per request (closures) must not grow it without end
        _SIGNATURES.clear()
    _SIGNATURES[key] = found = _signature(fn)
    return found


_tables_utils.signature = _cached_signature


def badge(colour: str, label: Any) -> SafeString:
    """What includes/badge.html renders, for a cell: a template per cell costs a template render each."""
    return format_html('<span class="badge badge-{}">{}</span>', colour, label)


# The date filter's specifiers that write a number (and T, the zone's name, and c, ISO 8601): a format made of them and
# of literal text is written from a list worked out once per format, not parsed again by DateFormat for every cell (a
# tenth of the jobs list's time under load). Any other specifier (names of months or days, which depend on the
# language) goes to date_format.
_NUMBERS = {"Y": ("year", 4), "m": ("month", 2), "d": ("day", 2), "H": ("hour", 2), "i": ("minute", 2),
            "s": ("second", 2)}
_PLANS: dict[str, list[tuple[str, Any]] | None] = {}


def _plan(format_string: str) -> list[tuple[str, Any]] | None:
    plan: list[tuple[str, Any]] = []
    for i, piece in enumerate(dateformat.re_formatchars.split(format_string)):
        if i % 2:
            if piece in _NUMBERS:
                plan.append(("number", _NUMBERS[piece]))
            elif piece == "T":
                plan.append(("zone", None))
            elif piece == "c":
                plan.append(("iso", None))
            else:
                return None
        elif piece:
            plan.append(("text", dateformat.re_escaped.sub(r"\1", piece)))
    return plan


def format_datetime(value: datetime, format_string: str) -> str:
    """``date_format(value, format_string)``, the same text."""
    try:
        plan = _PLANS[format_string]
    except KeyError:
        plan = _PLANS[format_string] = _plan(format_string)
    if plan is None or not isinstance(value, datetime):
        return date_format(value, format_string)
    out = []
    for kind, what in plan:
        if kind == "number":
            out.append(f"{getattr(value, what[0]):0{what[1]}d}")
        elif kind == "text":
            out.append(what)
        elif kind == "iso":
            out.append(value.isoformat())
        else:  # T: DateFormat leaves it empty for a time the zone has twice or not at all
            out.append(dateformat.DateFormat(value).T())
    return "".join(out)


class LocalDateTimeColumn(tables.Column):
    """A date and time in the current time zone, formatted as the ``date`` filter formats it (what
    tables.DateTimeColumn does by compiling a template for every cell); the ISO form in exports."""

    def __init__(self, *, format: str, **kwargs: Any) -> None:  # noqa: A002 - the DateTimeColumn argument
        self.format = format
        super().__init__(**kwargs)

    def render(self, value: datetime) -> str:
        return format_datetime(timezone.localtime(value) if timezone.is_aware(value) else value, self.format)

    def value(self, value: Any) -> Any:
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value


class CountedPaginator(Paginator):
    """A paginator told how many rows there are (a figure cached for data that does not change, such as a
    stored snapshot's rows) instead of counting them again on every page."""

    def __init__(self, object_list: Any, per_page: int, *args: Any, count: int | None = None, **kwargs: Any) -> None:
        super().__init__(object_list, per_page, *args, **kwargs)
        if count is not None:
            self.__dict__["count"] = count  # Paginator.count is a cached_property


class PortalTable(tables.Table):
    """Base of every table. Subclasses' Meta derive from ``PortalTable.Meta`` (and may set their own
    ``per_page`` default)."""

    class Meta:
        per_page = DEFAULT_PER_PAGE
        attrs = {"class": "table"}

    def paginate(self, paginator_class=Paginator, per_page=None, page=1, *args, **kwargs):
        # Clamped here, where every view's RequestConfig ends up, so no list page can be asked to
        # render 100,000 rows in one response (and 0 or a negative size cannot break the paginator).
        per_page = clamp_per_page(per_page, default=self._meta.per_page) if per_page is not None \
            else self._meta.per_page
        return super().paginate(paginator_class, per_page, page, *args, **kwargs)


# ------------------------------------------------------------------------------------------------------------------
# Rows written in Python (includes/table.html, portal_tables.table_row). For every cell django-tables2 builds the
# column's attributes again (a merged dict, computed values, a class set, an AttributeDict and its HTML), looks the
# field up again to know whether it has choices, fills six arguments and filters them by the render method's
# signature, and builds the link's attributes: most of a 50-row page's time under load. What does not change from
# row to row is worked out once per table here; a cell this does not cover (a callable attribute, a nested
# accessor, a pinned row, a value that is itself callable) goes through django-tables2's own BoundRow.get_cell.
# The HTML is the same either way (tests/unit/test_table_rows.py compares every table against django-tables2).

_CELL_ARGUMENTS = frozenset({"value", "record", "column", "bound_column", "bound_row", "table"})


def _is_static(attrs: dict) -> bool:
    """No callable anywhere in ``attrs``: its HTML is the same for every row."""
    return not any(callable(v) or (isinstance(v, dict) and not _is_static(v)) for v in attrs.values())


class _ColumnCells:
    """One column's cells: how django-tables2's BoundRow.get_cell and its td attributes come out for any row."""

    def __init__(self, table: tables.Table, bound_column: Any, record: Any) -> None:
        column = bound_column.column
        self.bound_column, self.column, self.localize = bound_column, column, column.localize
        self.name = bound_column.name
        self.td = self._static_td(table, bound_column)
        self.empty_values, self.render, self.link = column.empty_values, bound_column.render, bound_column.link
        self.link_html = self._static_link_attrs(self.link)
        self.link_text = isinstance(column, BaseLinkColumn) and column.text is not None
        accessor = bound_column.accessor
        self.model = type(record)
        # A field of the record itself: anything else (a path, a dict row, a many-to-many) goes the long way.
        self.attribute = accessor if (isinstance(record, models.Model) and not hasattr(record, "__getitem__")
                                      and isinstance(accessor, str) and accessor.isidentifier()
                                      and "__" not in accessor and not isinstance(column, ManyToManyColumn)) else None
        self.display = None
        if self.attribute:
            field = _tables_utils.Accessor(accessor).get_field(record)
            display = f"get_{accessor}_display"
            if getattr(field, "choices", ()) and getattr(record, display, None):
                self.display = display
        # Column.render gives the value back as it is: nothing to call for such a column.
        render = getattr(self.render, "__func__", None)
        self.plain = render is tables.Column.render
        # BooleanColumn.render looks the field up again for every cell; for a field without choices (the value is
        # the field's, not a label) its HTML depends on the value's truth alone: written once per table for each.
        self.booleans: dict[bool, Any] | None = {} if (
            render is tables.BooleanColumn.render and self.attribute and not self.display
            and _is_static(column.attrs.get("span", {}))) else None
        arguments, catch_all = _tables_utils.signature(self.render)
        self.arguments = None if catch_all else tuple(arguments)
        if self.arguments is not None and not set(self.arguments) <= _CELL_ARGUMENTS:
            self.attribute = None  # django-tables2 renders None for it: left to django-tables2

    @staticmethod
    def _static_td(table: tables.Table, bound_column: Any) -> SafeString | None:
        merged = {**table.attrs, **bound_column.column.attrs}
        td = merged.get("td", merged.get("cell", {}))
        if not _is_static(td) or type(table).get_column_class_names is not tables.Table.get_column_class_names:
            return None
        return bound_column.attrs["td"].as_html()

    @staticmethod
    def _static_link_attrs(link: Any) -> SafeString | None:
        if link is None or not _is_static(link.attrs or {}) or "href" in (link.attrs or {}):
            return None
        return _tables_utils.AttributeDict(link.attrs or {}).as_html()

    def value(self, row: BoundRow, record: Any) -> Any:
        """What ``row.get_cell(name)`` returns."""
        if self.attribute is None or type(record) is not self.model:
            return row.get_cell(self.name)
        if self.display:
            value = getattr(record, self.display)()
        else:
            try:
                value = getattr(record, self.attribute)
            except Exception:  # noqa: BLE001 - as django-tables2 does: a column of no field (rendered from the record)
                if self.link_text:
                    return row.get_cell(self.name)
                value = None
            if callable(value):  # called or not depending on alters_data and do_not_call_in_templates
                return row.get_cell(self.name)
        if value in self.empty_values:
            return self.bound_column.default
        if self.plain and self.link is None:
            return value
        if self.booleans is not None and self.link is None:
            truth = bool(value)
            written = self.booleans.get(truth)
            if written is None:
                written = self.booleans[truth] = self.render(value=value, record=record,
                                                             bound_column=self.bound_column)
            return written
        given = {"value": value, "record": record, "column": self.column, "bound_column": self.bound_column,
                 "bound_row": row, "table": row.table}
        content = self.render(**({name: given[name] for name in self.arguments} if self.arguments is not None
                                 else given))
        if self.link is None:
            return content
        if self.link_html is None:
            return self.link(content, **given)
        href = self.link.compose_url(**given)
        if href is None:
            return content
        attrs = f'{self.link_html} href="{conditional_escape(href)}"' if self.link_html else \
            f'href="{conditional_escape(href)}"'
        return mark_safe(f"<a {attrs}>{conditional_escape(content)}</a>")  # noqa: S308 - escaped as format_html would

    def html(self, row: BoundRow, record: Any, context: Any) -> str:
        """``<td attrs>cell</td>`` as the django-tables2 template writes it."""
        cell = self.value(row, record)
        if self.localize is None:
            text = value_text(cell, context)
        else:
            text = localize(cell) if self.localize else unlocalize(cell)
        td = self.td
        if td is None:  # its attributes are computed from the row: as BoundRow.items() leaves the column
            self.bound_column.current_value, self.bound_column.current_record = cell, record
            td = self.bound_column.attrs["td"].as_html()
        return f"<td {td}>{conditional_escape(text)}</td>"


class _RowWriter:
    def __init__(self, table: tables.Table, record: Any) -> None:
        self.columns = [_ColumnCells(table, bound_column, record) for bound_column in table.columns]
        # BoundRow.attrs depends on the record only through callables in row_attrs; else on even/odd alone.
        self.tr: dict[str, SafeString] | None = {} if _is_static(table.row_attrs or {}) else None

    def html(self, row: BoundRow, context: Any) -> SafeString:
        record = row.record
        if self.tr is None:
            tr = row.attrs.as_html()
        else:
            parity = row.get_even_odd_css_class()
            tr = self.tr.get(parity)
            if tr is None:
                tr = self.tr[parity] = row.attrs.as_html()
        cells = "".join([cell.html(row, record, context) for cell in self.columns])
        return mark_safe(f"<tr {tr}>{cells}</tr>")  # noqa: S308 - each part escaped as format_html would


def table_row_html(row: BoundRow, context: Any) -> SafeString:
    """``<tr attrs><td attrs>cell</td>…</tr>`` for one row, as django-tables2's template writes it."""
    table = row.table
    if type(row) is not BoundRow:  # pinned rows have their own attributes and cells
        return _reference_row_html(row, context)
    writer = table.__dict__.get("_portal_row_writer")
    if writer is None:
        writer = table.__dict__["_portal_row_writer"] = _RowWriter(table, row.record)
    return writer.html(row, context)


def _reference_row_html(row: Any, context: Any) -> SafeString:
    """The row through django-tables2's own cell and attribute code, cell by cell."""
    cells = []
    for column, cell in row.items():
        if column.localize is None:
            text = render_value_in_context(cell, context)
        else:
            text = localize(cell) if column.localize else unlocalize(cell)
        cells.append(format_html("<td {}>{}</td>", column.attrs["td"].as_html(), text))
    return format_html("<tr {}>{}</tr>", row.attrs.as_html(), mark_safe("".join(cells)))  # noqa: S308
