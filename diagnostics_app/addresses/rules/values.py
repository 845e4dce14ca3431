"""Directory data is untrusted input: turn raw attribute values into the strings the rules read, and say
what could not be read (bytes that are not UTF-8, lone UTF-16 surrogates, numbers, nested lists, ...)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .types import Entry, Unreadable

# C0/C1 control characters and DEL: no directory attribute the sync reads may hold them.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SURROGATE = re.compile(r"[\ud800-\udfff]")

__all__ = ["CONTROL", "SURROGATE", "Unreadable", "as_values", "entry", "most_specific_class", "printable", "text"]


def text(value: Any) -> str:
    """One raw value as text; an :class:`Unreadable` when it cannot be one."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return Unreadable(bytes(value)[:64].decode("utf-8", "replace"), "the bytes are not valid UTF-8")
    if isinstance(value, bool) or value is None:
        return Unreadable(repr(value), f"{type(value).__name__} is not a text value")
    if isinstance(value, int | float):
        return Unreadable(repr(value), "a number where text is expected")
    return Unreadable(repr(value)[:64], f"a {type(value).__name__} where text is expected")


def as_values(raw: Any) -> tuple[str, ...]:
    """An attribute's raw value (one value or a list of them, None for absent) as a tuple of text values."""
    if raw is None:
        return ()
    if isinstance(raw, list | tuple):
        return tuple(text(v) for v in raw if v is not None)
    return (text(raw),)


def printable(value: str, limit: int = 200) -> str:
    """A value fit for a log line or a table cell: control characters and surrogates shown as escapes."""
    shown = SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value[:limit])
    shown = CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", shown)
    return shown if len(value) <= limit else f"{shown}… ({len(value)} characters)"


def entry(*, dn: str, object_class: Any, attributes: Mapping[str, Any], anchor: str | None = None) -> Entry:
    """An :class:`Entry` from raw input (a connector's DirectoryObject attributes, or check_values' JSON)."""
    classes = [c for c in as_values(object_class) if not isinstance(c, Unreadable)]
    most_specific = most_specific_class(classes)
    return Entry(dn=dn, object_class=most_specific, anchor=anchor,
                 attributes={name.lower(): as_values(value) for name, value in attributes.items()})


def most_specific_class(classes: Iterable[str]) -> str:
    lowered = [c.lower() for c in classes]
    for kind in ("contact", "group", "computer", "inetorgperson", "user"):
        if kind in lowered:
            return "user" if kind == "inetorgperson" else kind
    return lowered[-1] if lowered else ""
