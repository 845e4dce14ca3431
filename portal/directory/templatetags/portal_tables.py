"""The cells of a table row in one call (includes/table.html): django_tables2/table.html interprets a loop, three
conditions and the column's attributes for every cell, a large part of a 50-row page's time under load."""

from django import template
from django.template.base import render_value_in_context
from django.templatetags.l10n import localize, unlocalize
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag(takes_context=True)
def table_cells(context: template.Context, row) -> SafeString:
    """``<td attrs>cell</td>`` for each column, as the django-tables2 template writes them: the value as
    ``{{ cell }}`` renders it (localized, escaped unless safe), or through the column's localize choice."""
    out = []
    for column, cell in row.items():
        if column.localize is None:
            text = render_value_in_context(cell, context)
        else:
            text = localize(cell) if column.localize else unlocalize(cell)
        out.append(format_html("<td {}>{}</td>", column.attrs["td"].as_html(), text))
    return mark_safe("".join(out))  # noqa: S308 - each part built by format_html
