"""OPATH filters (``-Filter``, ``-RecipientFilter``) built only by these helpers, every value quoted."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from .errors import InvalidFilter, InvalidParameter

_MAX_TEXT = 32768


# Every text that leaves for Exchange passes here: OPATH literals, and parameter values (params.py).
def _check_text(value: str, what: str) -> str:
    if len(value) > _MAX_TEXT:
        raise InvalidParameter(f"{what} is longer than {_MAX_TEXT} characters")
    if any(ord(ch) < 0x20 and ch not in "\t\r\n" for ch in value):
        raise InvalidParameter(f"{what} contains a control character")
    return value


class OpathFilter:
    """An Exchange OPATH filter built by this module's helpers, every value quoted.

    Combine with ``&``, ``|`` and ``~``. There is no way to build one from raw text.
    """

    __slots__ = ("_text",)

    def __init__(self, text: str, token: object) -> None:
        if token is not _OPATH_TOKEN:
            raise TypeError("build OPATH filters with the helper functions (opath_eq, opath_like, ...)")
        self._text = text

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"OpathFilter({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OpathFilter) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)

    def __and__(self, other: OpathFilter) -> OpathFilter:
        return opath_all(self, other)

    def __or__(self, other: OpathFilter) -> OpathFilter:
        return opath_any(self, other)

    def __invert__(self) -> OpathFilter:
        return opath_not(self)


_OPATH_TOKEN = object()
_OPATH_PROPERTY = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}\Z")


def _op(text: str) -> OpathFilter:
    return OpathFilter(text, _OPATH_TOKEN)


def opath_quote(value: str) -> str:
    """A text value as an OPATH literal: in single quotes, each embedded single quote doubled.

    Typographic quotes are doubled too: PowerShell treats ‘ ’ ‚ ‛ as single quotes.
    """
    if not isinstance(value, str):
        raise InvalidFilter(f"expected text, got {type(value).__name__}")
    _check_text(value, "an OPATH value")
    out = []
    for ch in value:
        out.append(ch * 2 if ch in "'\u2018\u2019\u201a\u201b" else ch)
    return "'" + "".join(out) + "'"


def _opath_value(value: str | bool | int | UUID | None) -> str:
    if value is None:
        return "$null"
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, UUID):
        return opath_quote(str(value))
    if isinstance(value, str):
        return opath_quote(value)
    raise InvalidFilter(f"unsupported OPATH value type {type(value).__name__}")


def _opath_property(name: str) -> str:
    if not isinstance(name, str) or not _OPATH_PROPERTY.match(name):
        raise InvalidFilter(f"{name!r} is not an OPATH property name")
    return name


def opath_eq(prop: str, value: str | bool | int | UUID | None) -> OpathFilter:
    return _op(f"{_opath_property(prop)} -eq {_opath_value(value)}")


def opath_ne(prop: str, value: str | bool | int | UUID | None) -> OpathFilter:
    return _op(f"{_opath_property(prop)} -ne {_opath_value(value)}")


def opath_like(prop: str, *, prefix: str = "", suffix: str = "") -> OpathFilter:
    """``Prop -like 'prefix*'`` (or ``'*suffix'``); ``*`` inside the values is refused (it has no escape)."""
    if "*" in prefix or "*" in suffix:
        raise InvalidFilter("'*' cannot be matched literally in an OPATH -like value")
    if bool(prefix) == bool(suffix):
        raise InvalidFilter("give exactly one of prefix or suffix")
    pattern = f"{prefix}*" if prefix else f"*{suffix}"
    return _op(f"{_opath_property(prop)} -like {opath_quote(pattern)}")


def opath_present(prop: str) -> OpathFilter:
    return _op(f"{_opath_property(prop)} -ne $null")


def opath_all(*filters: OpathFilter) -> OpathFilter:
    parts = _opath_parts(filters)
    return parts[0] if len(parts) == 1 else _op(" -and ".join(f"({p})" for p in parts))


def opath_any(*filters: OpathFilter) -> OpathFilter:
    parts = _opath_parts(filters)
    return parts[0] if len(parts) == 1 else _op(" -or ".join(f"({p})" for p in parts))


def opath_not(flt: OpathFilter) -> OpathFilter:
    return _op(f"-not ({_opath_parts((flt,))[0]})")


def _opath_parts(filters: Iterable[OpathFilter]) -> list[OpathFilter]:
    parts = list(filters)
    if not parts:
        raise InvalidFilter("a filter combination needs at least one filter")
    for part in parts:
        if not isinstance(part, OpathFilter):
            raise InvalidFilter(f"expected an OpathFilter, got {type(part).__name__}")
    return parts


def _checked_opath(value: Any) -> OpathFilter:
    if not isinstance(value, OpathFilter):
        raise InvalidFilter("filters must be OpathFilter objects built with the opath_* helpers, not text")
    return value
