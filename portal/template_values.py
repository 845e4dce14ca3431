"""What ``{{ value }}`` writes, for the values that need none of Django's detours.

Django's render_value_in_context passes every value through the time zone and the language's number format before
escaping it: for a text or a whole number (when numbers are not grouped) that changes nothing, yet it asked the active
language and three of its formats for every ``{{ n }}`` of a page (a quarter of the MFA readiness page's time under
load). value_text writes those as Django would and hands anything else to Django; install() makes it what every
template's ``{{ }}`` calls. tests/unit/test_request_costs.py compares both on texts, numbers, booleans, dates and lazy
texts, grouped or not, escaped or not."""

from __future__ import annotations

import html
from typing import Any

from django.conf import settings
from django.template import base
from django.utils.safestring import SafeString

_django_value_text = base.render_value_in_context


def value_text(value: Any, context: Any) -> str:
    kind = type(value)
    if context.autoescape:
        if kind is str:
            return SafeString(html.escape(value))
        if kind is SafeString:
            return value
    if kind is int and not settings.USE_THOUSAND_SEPARATOR:
        return str(value)
    return _django_value_text(value, context)


def install() -> None:
    """Every template's ``{{ }}`` (VariableNode) writes its value through value_text."""
    if base.render_value_in_context is _django_value_text:
        base.render_value_in_context = value_text
