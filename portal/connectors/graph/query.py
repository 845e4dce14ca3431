"""OData ``$filter`` values as :class:`ODataFilter` objects, built only by these helpers, which quote
every literal; and ``$select`` lists checked property by property.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from uuid import UUID


class ODataFilter:
    """A Graph ``$filter`` built by this module's helpers, every literal quoted.

    Combine with ``&``, ``|`` and ``~``. Callers that need a filter from directory data or from a
    form use the helpers; a raw string is accepted by the methods only for text a programmer wrote.
    """

    __slots__ = ("_text",)

    def __init__(self, text: str, token: object) -> None:
        if token is not _ODATA_TOKEN:
            raise TypeError("build filters with the helper functions (odata_eq, odata_startswith, ...)")
        self._text = text

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"ODataFilter({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ODataFilter) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)

    def __and__(self, other: ODataFilter) -> ODataFilter:
        return _of(f"({self}) and ({_checked_filter(other)})")

    def __or__(self, other: ODataFilter) -> ODataFilter:
        return _of(f"({self}) or ({_checked_filter(other)})")

    def __invert__(self) -> ODataFilter:
        return _of(f"not ({self})")


_ODATA_TOKEN = object()
_ODATA_PROPERTY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*\Z")


def _of(text: str) -> ODataFilter:
    return ODataFilter(text, _ODATA_TOKEN)


def _checked_filter(value: object) -> ODataFilter:
    if not isinstance(value, ODataFilter):
        raise TypeError(f"expected an ODataFilter, got {type(value).__name__}")
    return value


def _odata_property(name: str) -> str:
    if not isinstance(name, str) or not _ODATA_PROPERTY.match(name):
        raise ValueError(f"{name!r} is not a Graph property name")
    return name


def odata_literal(value: str | bool | int | float | datetime | date | UUID | None) -> str:
    """A value as an OData literal: strings single-quoted with quotes doubled, the rest unquoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("a filter value cannot contain NUL")
        return "'" + value.replace("'", "''") + "'"
    raise ValueError(f"unsupported filter value type {type(value).__name__}")


def odata_eq(prop: str, value: str | bool | int | datetime | UUID | None) -> ODataFilter:
    return _of(f"{_odata_property(prop)} eq {odata_literal(value)}")


def odata_ne(prop: str, value: str | bool | int | datetime | UUID | None) -> ODataFilter:
    return _of(f"{_odata_property(prop)} ne {odata_literal(value)}")


def odata_ge(prop: str, value: str | int | datetime | date) -> ODataFilter:
    return _of(f"{_odata_property(prop)} ge {odata_literal(value)}")


def odata_le(prop: str, value: str | int | datetime | date) -> ODataFilter:
    return _of(f"{_odata_property(prop)} le {odata_literal(value)}")


def odata_startswith(prop: str, prefix: str) -> ODataFilter:
    return _of(f"startswith({_odata_property(prop)},{odata_literal(prefix)})")


def odata_any_eq(collection: str, value: str) -> ODataFilter:
    """``collection/any(x:x eq 'value')``, e.g. ``proxyAddresses``."""
    return _of(f"{_odata_property(collection)}/any(x:x eq {odata_literal(value)})")


def odata_in(prop: str, values: Iterable[str | int | UUID]) -> ODataFilter:
    items = [odata_literal(v) for v in values]
    if not items:
        raise ValueError("odata_in needs at least one value")
    return _of(f"{_odata_property(prop)} in ({','.join(items)})")


def _filter_text(value: ODataFilter | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, ODataFilter):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"filter must be an ODataFilter or text, not {type(value).__name__}")


def _select(fields: Iterable[str] | None) -> list[str] | None:
    if fields is None:
        return None
    out = [_odata_property(f) for f in fields]
    return out or None
