"""What every table of the portal shares (django-tables2): a page size the reader may choose, within bounds."""

from __future__ import annotations

import django_tables2 as tables
from django.core.paginator import Paginator

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200


def clamp_per_page(value: object, default: int = DEFAULT_PER_PAGE) -> int:
    """``?per_page=`` as asked, at most MAX_PER_PAGE; anything but a positive whole number gives ``default``."""
    try:
        number = int(str(value))
    except ValueError:
        return default
    return min(number, MAX_PER_PAGE) if number > 0 else default


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
