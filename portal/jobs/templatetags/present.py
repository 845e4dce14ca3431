"""Structured values (job results, log line data, audit before/after) shown as people read them:
key/value lists and field-level differences, never a Python repr."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()
MAX_DEPTH = 4
MAX_ITEMS = 50


def label(key: Any) -> str:
    """'post_create_errors' → 'Post create errors'; 'RecipientTypeDetails' stays as Exchange names it."""
    text = str(key)
    if "_" in text or text.islower():
        text = re.sub(r"_+", " ", text).strip()
        return text[:1].upper() + text[1:]
    return text


def _scalar(value: Any) -> SafeString:
    if value is None or value == "":
        return mark_safe("—")
    if isinstance(value, bool):
        return mark_safe("Yes" if value else "No")
    return format_html("{}", value)


def _render(value: Any, depth: int) -> SafeString:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # a settings or result value object reads as its fields (the Lab page's faults were its repr)
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if depth > MAX_DEPTH:
        return format_html("<code>{}</code>", json.dumps(value, default=str)[:2000])
    if isinstance(value, dict):
        if not value:
            return mark_safe("—")
        items = list(value.items())[:MAX_ITEMS]
        rows = format_html_join("", "<dt>{}</dt><dd>{}</dd>", ((label(k), _render(v, depth + 1)) for k, v in items))
        more = format_html('<dt class="muted">…</dt><dd class="muted">{} more</dd>', len(value) - MAX_ITEMS) \
            if len(value) > MAX_ITEMS else ""
        return format_html('<dl class="kv">{}{}</dl>', rows, more)
    if isinstance(value, (list, tuple)):
        if not value:
            return mark_safe("—")
        if all(not isinstance(v, (dict, list, tuple)) for v in value) and len(value) <= 8:
            return format_html_join(", ", "{}", ((_scalar(v),) for v in value))
        items = format_html_join("", "<li>{}</li>", ((_render(v, depth + 1),) for v in value[:MAX_ITEMS]))
        more = format_html('<li class="muted">… {} more</li>', len(value) - MAX_ITEMS) if len(value) > MAX_ITEMS \
            else ""
        return format_html('<ul class="kv-list">{}{}</ul>', items, more)
    return _scalar(value)


@register.filter
def kv(value: Any) -> SafeString:
    return _render(value, 0)


@register.filter
def changes(record: Any) -> list[tuple[str, Any, Any]]:
    """Field-level differences of an audit event: (field, before, after) for each field that differs."""
    before, after = getattr(record, "before", None), getattr(record, "after", None)
    if isinstance(before, dict) or isinstance(after, dict):
        before, after = before or {}, after or {}
        if not isinstance(before, dict) or not isinstance(after, dict):
            return [("value", before, after)]
        keys = list(dict.fromkeys([*before, *after]))
        return [(label(k), before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]
    return [("value", before, after)] if before != after else []
