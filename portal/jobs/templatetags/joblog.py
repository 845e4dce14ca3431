from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from portal.tables import format_datetime
from portal.template_values import value_text

from .present import kv

register = template.Library()


@register.filter
def log_time(value) -> str:
    """HH:MM:SS.mmm: a log is read at the millisecond, Django's date filter stops at the second."""
    return f"{value:%H:%M:%S}.{value.microsecond // 1000:03d}" if value else ""


@register.filter
def epoch_ms(value) -> int:
    return int(value.timestamp() * 1000) if value else 0


@register.simple_tag(takes_context=True)
def log_lines(context: template.Context, lines: Iterable[Any]) -> SafeString:
    """Each line as ``<div class="line …">``, written in Python: a template included per line was most of a live
    log poll's time (every reader of a running job polls every second). tests/unit/test_job_log_lines.py compares
    it with the template it replaces."""
    out = []
    for line in lines:
        when = line.time
        stamp = "" if when in (None, "") else value_text(
            format_datetime(template_localtime(when, use_tz=context.use_tz), "c"), context)
        details = f"<details><summary>detail</summary>{kv(line.data)}</details>" if line.data else ""
        out.append(f'<div class="line lvl-{value_text(line.level, context)}" '
                   f'data-seq="{value_text(line.seq, context)}" '
                   f'data-logged="{value_text(epoch_ms(when), context)}"><time datetime="{stamp}">'
                   f'{value_text(log_time(when), context)}</time> <span class="lvl">'
                   f'{value_text(str(line.get_level_display()).upper(), context)}</span> <span class="text">'
                   f"{value_text(line.message, context)}</span>{details}</div>\n")
    return mark_safe("".join(out))  # noqa: S308 - every part escaped as the template escaped it
