"""LDAP filters (RFC 4515) as :class:`Filter` objects, built only by these helpers, which escape every value."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from .dn import Dn, _valid_attr_name, parse_dn
from .errors import InvalidFilter

_FILTER_TOKEN = object()


class Filter:
    """An LDAP filter built by this module's helpers; its text is always fully escaped.

    Combine with ``&``, ``|`` and ``~``. There is deliberately no way to build one from a raw
    string: callers use :func:`eq`, :func:`starts_with`, :func:`present`, ... .
    """

    __slots__ = ("_text",)

    def __init__(self, text: str, token: object) -> None:
        if token is not _FILTER_TOKEN:
            raise TypeError("build filters with the helper functions (eq, present, all_of, ...)")
        self._text = text

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Filter({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filter) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)

    def __and__(self, other: Filter) -> Filter:
        return all_of(self, other)

    def __or__(self, other: Filter) -> Filter:
        return any_of(self, other)

    def __invert__(self) -> Filter:
        return not_(self)


def _f(text: str) -> Filter:
    return Filter(text, _FILTER_TOKEN)


def escape_filter_value(value: str | bytes) -> str:
    """RFC 4515 escaping: ``* ( ) \\`` and NUL always; bytes values escape every octet."""
    if isinstance(value, (bytes, bytearray)):
        return "".join(f"\\{b:02x}" for b in value)
    out = []
    for ch in value:
        if ch in "*()\\\x00":
            out.append(f"\\{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def _attr(name: str) -> str:
    if not isinstance(name, str) or not _valid_attr_name(name):
        raise InvalidFilter(f"{name!r} is not a valid attribute name")
    return name


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, UUID):
        return escape_filter_value(value.bytes_le)
    if isinstance(value, (bytes, bytearray)):
        return escape_filter_value(bytes(value))
    if isinstance(value, Dn):
        return escape_filter_value(str(value))
    if isinstance(value, str):
        return escape_filter_value(value)
    raise InvalidFilter(f"unsupported filter value type {type(value).__name__}")


def eq(attr: str, value: str | int | bool | bytes | UUID | Dn) -> Filter:
    return _f(f"({_attr(attr)}={_value(value)})")


def ge(attr: str, value: str | int) -> Filter:
    return _f(f"({_attr(attr)}>={_value(value)})")


def le(attr: str, value: str | int) -> Filter:
    return _f(f"({_attr(attr)}<={_value(value)})")


def present(attr: str) -> Filter:
    return _f(f"({_attr(attr)}=*)")


def starts_with(attr: str, prefix: str) -> Filter:
    if not prefix:
        return present(attr)
    return _f(f"({_attr(attr)}={_value(prefix)}*)")


def ends_with(attr: str, suffix: str) -> Filter:
    if not suffix:
        return present(attr)
    return _f(f"({_attr(attr)}=*{_value(suffix)})")


def contains(attr: str, part: str) -> Filter:
    if not part:
        return present(attr)
    return _f(f"({_attr(attr)}=*{_value(part)}*)")


def bits_all(attr: str, mask: int) -> Filter:
    """All bits of ``mask`` set (LDAP_MATCHING_RULE_BIT_AND), e.g. disabled accounts."""
    return _f(f"({_attr(attr)}:1.2.840.113556.1.4.803:={int(mask)})")


def bits_any(attr: str, mask: int) -> Filter:
    """Any bit of ``mask`` set (LDAP_MATCHING_RULE_BIT_OR)."""
    return _f(f"({_attr(attr)}:1.2.840.113556.1.4.804:={int(mask)})")


def in_chain(attr: str, dn: str | Dn) -> Filter:
    """Transitive link match (LDAP_MATCHING_RULE_IN_CHAIN), e.g. nested group membership."""
    value = dn if isinstance(dn, Dn) else parse_dn(dn)
    return _f(f"({_attr(attr)}:1.2.840.113556.1.4.1941:={_value(value)})")


def all_of(*filters: Filter) -> Filter:
    parts = _filters(filters)
    return parts[0] if len(parts) == 1 else _f("(&" + "".join(map(str, parts)) + ")")


def any_of(*filters: Filter) -> Filter:
    parts = _filters(filters)
    return parts[0] if len(parts) == 1 else _f("(|" + "".join(map(str, parts)) + ")")


def not_(flt: Filter) -> Filter:
    return _f(f"(!{_filters((flt,))[0]})")


def _filters(filters: Iterable[Filter]) -> list[Filter]:
    parts = list(filters)
    if not parts:
        raise InvalidFilter("a filter combination needs at least one filter")
    for part in parts:
        if not isinstance(part, Filter):
            raise InvalidFilter(f"expected a Filter, got {type(part).__name__}")
    return parts


def object_class(name: str) -> Filter:
    return eq("objectClass", name)


MATCH_ALL = present("objectClass")

KIND_FILTERS: dict[str, Filter] = {
    "user": all_of(object_class("user"), not_(object_class("computer"))),
    "group": object_class("group"),
    "contact": object_class("contact"),
    "dynamic-dl": object_class("msExchDynamicDistributionList"),
    "computer": object_class("computer"),
    "ou": object_class("organizationalUnit"),
}
RECIPIENT_KINDS = frozenset({"user", "group", "contact", "dynamic-dl"})


def kind_filter(kinds: Iterable[str]) -> Filter:
    wanted = sorted(set(kinds))
    unknown = [k for k in wanted if k not in KIND_FILTERS]
    if unknown or not wanted:
        raise InvalidFilter(f"unknown kinds {unknown}; choose from {sorted(KIND_FILTERS)}")
    return any_of(*(KIND_FILTERS[k] for k in wanted))
