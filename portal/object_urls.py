"""The URL of one object's page (a ``<int:pk>`` or ``<uuid:...>`` path), as every row of a table links to one.

Django's reverse() finds the pattern, converts the value, matches the result against the pattern's regex and quotes
it: about a tenth of a millisecond a call, 50 to 100 calls a table page. The page's URL is reversed once with a
stand-in value, and each object's value takes the stand-in's place: what reverse() writes for a non-negative
integer or a UUID, which converters and quoting leave as str() writes them. Anything else goes to reverse().
"""

from __future__ import annotations

import uuid

from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

_STAND_INS: dict[type, object] = {int: 9876543210123, uuid.UUID: uuid.UUID("f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9")}
_SECOND: dict[type, object] = {int: 1, uuid.UUID: uuid.UUID("00000000-0000-4000-8000-000000000001")}
_SPLIT: dict[tuple, tuple[str, str] | None] = {}


def _split(viewname: str, kind: type) -> tuple[str, str] | None:
    """The URL before and after the value, if the pattern takes any value of this kind as str() writes it."""
    stand_in, second = _STAND_INS[kind], _SECOND[kind]
    try:
        parts = reverse(viewname, args=[stand_in]).split(str(stand_in))
        if len(parts) != 2:
            return None
        before, after = parts
        # A pattern that takes only some values (a re_path with [0-9]{4}, say) is left to reverse().
        return (before, after) if reverse(viewname, args=[second]) == f"{before}{second}{after}" else None
    except NoReverseMatch:
        return None


def object_url(viewname: str, value: int | uuid.UUID) -> str:
    """``reverse(viewname, args=[value])``."""
    kind = type(value)
    if kind not in _STAND_INS or (kind is int and value < 0):
        return reverse(viewname, args=[value])
    key = (viewname, kind, get_script_prefix(), get_urlconf())
    try:
        parts = _SPLIT[key]
    except KeyError:
        parts = _SPLIT[key] = _split(viewname, kind)
    if parts is None:
        return reverse(viewname, args=[value])
    return f"{parts[0]}{value}{parts[1]}"
