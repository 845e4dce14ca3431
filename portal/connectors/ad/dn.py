"""Distinguished names (RFC 4514): parsing people's input, escaping values, building RDNs and children."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .errors import InvalidDn

_ATTR_DESCR = re.compile(r"[A-Za-z][A-Za-z0-9-]*\Z")
_ATTR_OID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+\Z")
_DN_SPECIAL = '"+,;<>\\'
_HEX = "0123456789abcdefABCDEF"


def _valid_attr_name(name: str) -> bool:
    return bool(_ATTR_DESCR.match(name) or _ATTR_OID.match(name))


@dataclass(frozen=True)
class Dn:
    """A parsed distinguished name: RDNs from the object up to the root, each a tuple of AVAs.

    Values are held unescaped; ``str()`` gives the RFC 4514 string, escaped again.
    """

    rdns: tuple[tuple[tuple[str, str], ...], ...]

    def __str__(self) -> str:
        return ",".join("+".join(f"{t}={_escape_ava(v)}" for t, v in rdn_) for rdn_ in self.rdns)

    @property
    def rdn(self) -> str:
        return "+".join(f"{t}={_escape_ava(v)}" for t, v in self.rdns[0])

    @property
    def rdn_type(self) -> str:
        return self.rdns[0][0][0]

    @property
    def rdn_value(self) -> str:
        return self.rdns[0][0][1]

    @property
    def parent(self) -> Dn:
        if len(self.rdns) < 2:
            raise InvalidDn(f"{self} has no parent")
        return Dn(self.rdns[1:])

    def child(self, attr: str, value: str) -> Dn:
        return Dn((((_checked_attr(attr), value),), *self.rdns))

    def normalized(self) -> str:
        """Case-folded form for comparisons (AD compares DN values case-insensitively)."""
        return ",".join(
            "+".join(sorted(f"{t.lower()}={_escape_ava(v).casefold()}" for t, v in rdn_)) for rdn_ in self.rdns
        )

    def is_within(self, ancestor: Dn | str) -> bool:
        other = ancestor if isinstance(ancestor, Dn) else parse_dn(ancestor)
        n = len(other.rdns)
        return n <= len(self.rdns) and Dn(self.rdns[len(self.rdns) - n :]).normalized() == other.normalized()


def _escape_ava(value: str) -> str:
    if isinstance(value, _HexValue):
        return str.__str__(value)
    return escape_dn_value(value)


def escape_dn_value(value: str) -> str:
    """Escape an attribute value for use in a DN (RFC 4514 section 2.4)."""
    if not isinstance(value, str):
        raise InvalidDn(f"DN values must be text, not {type(value).__name__}")
    out: list[str] = []
    last = len(value) - 1
    for i, ch in enumerate(value):
        # '=' is optional to escape in RFC 4514, but Samba (like AD's own output) requires it.
        if ch in _DN_SPECIAL or ch == "=":
            out.append("\\" + ch)
        elif ch == "\x00" or ord(ch) < 0x20 or ch == "\x7f":
            out.append("".join(f"\\{b:02x}" for b in ch.encode()))
        elif (i == 0 and ch in " #") or (i == last and ch == " "):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _checked_attr(attr: str) -> str:
    if not isinstance(attr, str) or not _valid_attr_name(attr):
        raise InvalidDn(f"{attr!r} is not a valid attribute name")
    return attr


def rdn(attr: str, value: str) -> str:
    """``CN=<value>`` with the value escaped, e.g. ``rdn("CN", "Smith, John")`` -> ``CN=Smith\\, John``."""
    if value == "":
        raise InvalidDn(f"an empty {attr} value cannot name an object")
    return f"{_checked_attr(attr)}={escape_dn_value(value)}"


def child_dn(parent: str | Dn, attr: str, value: str) -> str:
    """The DN of ``attr=value`` under ``parent``, value escaped: ``child_dn(ou, "CN", "a,b")``."""
    if value == "":
        raise InvalidDn(f"an empty {attr} value cannot name an object")
    base = parent if isinstance(parent, Dn) else parse_dn(parent)
    return str(base.child(attr, value))


def parse_dn(text: str) -> Dn:
    """Parse and validate a DN, e.g. one typed into a form. Raises InvalidDn saying what is wrong.

    Accepts RFC 4514 (and, as AD does, blanks around separators); rejects unescaped specials,
    empty values, dangling separators, bad escapes and invalid UTF-8 in hex escapes.
    """
    if not isinstance(text, str):
        raise InvalidDn(f"a DN must be text, not {type(text).__name__}")
    s = text.strip()
    if not s:
        raise InvalidDn("the DN is empty")
    if len(s) > 8192:
        raise InvalidDn("the DN is longer than 8192 characters")
    n = len(s)
    i = 0
    rdns: list[tuple[tuple[str, str], ...]] = []
    avas: list[tuple[str, str]] = []

    def fail(reason: str, at: int) -> InvalidDn:
        return InvalidDn(f"malformed DN {text!r}: {reason} at position {at + 1}")

    while True:
        while i < n and s[i] == " ":
            i += 1
        start = i
        while i < n and (s[i].isalnum() or s[i] in "-.") and s[i].isascii():
            i += 1
        attr = s[start:i]
        if not attr:
            raise fail("expected an attribute name such as CN, OU or DC", start)
        if not _valid_attr_name(attr):
            raise fail(f"{attr!r} is not a valid attribute name", start)
        while i < n and s[i] == " ":
            i += 1
        if i >= n or s[i] != "=":
            raise fail(f"expected '=' after {attr}", i)
        i += 1
        while i < n and s[i] == " ":
            i += 1
        value, i = _parse_dn_value(s, i, fail)
        if value == "":
            raise fail(f"empty value for {attr}", i)
        avas.append((attr, value))
        if i >= n:
            rdns.append(tuple(avas))
            break
        sep = s[i]
        i += 1
        if sep == ",":
            rdns.append(tuple(avas))
            avas = []
        if i >= n or s[i:].strip() == "":
            raise fail(f"the DN ends with {sep!r}", i - 1)
    return Dn(tuple(rdns))


def _parse_dn_value(s: str, i: int, fail: Callable[[str, int], InvalidDn]) -> tuple[str, int]:
    n = len(s)
    if i < n and s[i] == "#":  # hexstring form: BER of the value, kept verbatim
        j = i + 1
        while j < n and s[j] in _HEX:
            j += 1
        hexpart = s[i + 1 : j]
        if not hexpart or len(hexpart) % 2:
            raise fail("'#' must be followed by pairs of hex digits (escape a literal '#' as '\\#')", i)
        end = j
        while j < n and s[j] == " ":
            j += 1
        if j < n and s[j] not in ",+":
            raise fail("unexpected character after a hex value", j)
        return _HexValue(s[i:end]), j
    buf = bytearray()
    trailing_spaces = 0
    while i < n:
        ch = s[i]
        if ch in ",+":
            break
        if ch == "\\":
            if i + 1 >= n:
                raise fail("a backslash ends the DN", i)
            nxt = s[i + 1]
            if nxt in _HEX and i + 2 < n and s[i + 2] in _HEX:
                buf.append(int(s[i + 1 : i + 3], 16))
                i += 3
            elif nxt in _DN_SPECIAL + " #=":
                buf += nxt.encode()
                i += 2
            else:
                raise fail(f"'\\{nxt}' is not a valid escape", i)
            trailing_spaces = 0
            continue
        if ch in '";<>' or ch == "\x00":
            raise fail(f"special character {ch!r} must be escaped", i)
        if ch == " ":
            trailing_spaces += 1
        else:
            trailing_spaces = 0
        buf += ch.encode()
        i += 1
    if trailing_spaces:
        del buf[-trailing_spaces:]  # unescaped blanks before a separator are not part of the value
    try:
        return buf.decode("utf-8"), i
    except UnicodeDecodeError as exc:
        raise fail("hex escapes do not form valid UTF-8", i) from exc


class _HexValue(str):
    """A '#'-form (BER) value: printed back verbatim, never escaped."""


def validate_dn(text: str) -> str:
    """The canonical (re-escaped) form of a user-typed DN; raises InvalidDn if malformed."""
    return str(parse_dn(text))


def same_dn(a: str | Dn, b: str | Dn) -> bool:
    da = a if isinstance(a, Dn) else parse_dn(a)
    db = b if isinstance(b, Dn) else parse_dn(b)
    return da.normalized() == db.normalized()
