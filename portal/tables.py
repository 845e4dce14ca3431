"""What every table of the portal shares (django-tables2): a page size the reader may choose, within bounds;
cells rendered in Python (a badge, a date) rather than by a template per cell."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_tables2 as tables
from django.core.paginator import Paginator
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django_tables2 import utils as _tables_utils

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


class LocalDateTimeColumn(tables.Column):
    """A date and time in the current time zone, formatted as the ``date`` filter formats it (what
    tables.DateTimeColumn does by compiling a template for every cell); the ISO form in exports."""

    def __init__(self, *, format: str, **kwargs: Any) -> None:  # noqa: A002 - the DateTimeColumn argument
        self.format = format
        super().__init__(**kwargs)

    def render(self, value: datetime) -> str:
        return date_format(timezone.localtime(value) if timezone.is_aware(value) else value, self.format)

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
