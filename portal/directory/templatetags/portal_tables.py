"""A table row in one call (includes/table.html): django_tables2/table.html interprets a loop, three conditions and
the column's attributes for every cell, and django-tables2 works out again for every cell what is the same for the
whole column (portal/tables.py table_row_html): most of a 50-row page's time under load."""

from django import template
from django.utils.safestring import SafeString

from portal.object_urls import object_url as _object_url
from portal.tables import table_row_html

register = template.Library()


@register.simple_tag(takes_context=True)
def table_row(context: template.Context, row) -> SafeString:
    """``<tr attrs><td attrs>cell</td>…</tr>``, as the django-tables2 template writes them: each value as
    ``{{ cell }}`` renders it (localized, escaped unless safe), or through the column's localize choice."""
    return table_row_html(row, context)


@register.simple_tag
def object_url(viewname: str, value) -> str:
    """``{% url viewname value %}`` for an object's page, without reverse() for every row (portal/object_urls.py)."""
    return _object_url(viewname, value)
