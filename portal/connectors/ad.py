"""ActiveDirectory: the portal's only way to talk to on-premises Active Directory (ldap3).

No Django here: the connector is configured by :class:`AdSettings` (built from Django settings by
``connectors/registry.py``) and returns plain dataclasses, never ldap3 entries.

Connection modes (:class:`AdSettings`):

* plain LDAP (389) with a simple bind, as the lab uses it on loopback;
* LDAPS (``use_ssl=True``, 636) or StartTLS (``start_tls=True``), certificate validated against
  ``ca_file`` (or the system store) unless ``validate_cert=False``; ``tls_server_name`` is the
  name checked in the certificate when the host is given as an IP address;
* Kerberos (``auth="gssapi"``): SASL/GSSAPI with the credentials of the process's Kerberos
  ticket cache (``kinit``, or a keytab via ``KRB5_CLIENT_KTNAME``); needs the ``gssapi`` Python
  package and a krb5.conf for the realm on the host. ``bind_dn``/``password`` are then unused.
  Not exercised by the lab (Samba is reached with simple binds). ldap3's NTLM is not offered: it
  fails against Samba and needs MD4, which this platform's hashlib lacks.

Safety rules the API enforces:

* Filters are :class:`Filter` objects, built only by the helper functions of this module, which
  escape every value (RFC 4515, including NUL). No public method takes a raw filter string.
* DNs typed by people go through :func:`parse_dn` (RFC 4514) and are rejected with
  :class:`InvalidDn` when malformed; RDNs are built with :func:`rdn`, which escapes the value.
* Searches are paged generators; large multi-valued attributes are read in explicit ranges
  (``member;range=0-1499``) by the connector itself, so neither a 100k-object OU nor a 50k-member
  group is ever held in memory at once, and Windows' 1500-value cap never truncates a result.
* Errors surface as :class:`AdError` subclasses carrying the LDAP result code and message.
* Transient failures (busy, unavailable, connection lost) are retried with backoff. A write whose
  request may have reached the server before the connection broke is not blindly repeated:
  :class:`OutcomeUnknown` is raised instead, so the caller can re-read and decide.

An instance holds one connection and is safe to share between threads (calls are serialised);
give each worker thread its own instance for parallelism.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from uuid import UUID

import ldap3
from ldap3 import BASE, LEVEL, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, SUBTREE
from ldap3.core import exceptions as ldap_exc

T = TypeVar("T")

# --------------------------------------------------------------------------------------------
# errors


class AdError(Exception):
    """Base of every error the connector raises. Keeps the LDAP result code and server message."""

    def __init__(
        self,
        message: str,
        *,
        result_code: int | None = None,
        description: str | None = None,
        ldap_message: str | None = None,
        dn: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.result_code = result_code
        self.description = description
        self.ldap_message = (ldap_message or "").strip() or None
        self.dn = dn

    def __str__(self) -> str:
        parts = [self.message]
        if self.result_code is not None:
            parts.append(f"[LDAP {self.result_code} {self.description or ''}]".replace(" ]", "]"))
        if self.ldap_message:
            parts.append(self.ldap_message)
        return " ".join(parts)


class NotFound(AdError):
    """No object at that DN / GUID / SID, or nothing matched where one object was expected."""


class Ambiguous(AdError):
    """Several objects matched where exactly one was expected."""

    def __init__(self, message: str, *, candidates: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.candidates = tuple(candidates)


class AccessDenied(AdError):
    """The bound account may not do this (or the server demands a stronger authentication)."""


class InvalidCredentials(AccessDenied):
    """The bind itself was refused."""


class ServerDown(AdError):
    """The directory could not be reached or stayed busy/unavailable through every retry."""


Unreachable = ServerDown


class OutcomeUnknown(ServerDown):
    """The connection broke after a write was sent: it may or may not have been applied."""


class TlsError(ServerDown):
    """The TLS handshake failed (untrusted or mismatching certificate, no TLS on the port)."""


class ConstraintViolation(AdError):
    """The directory refused the change (schema, constraint, naming, or 'unwilling to perform')."""


class ValueExists(ConstraintViolation):
    """A value being added is already present (LDAP 20)."""


class NoSuchValue(ConstraintViolation):
    """A value or attribute being deleted is not present (LDAP 16)."""


class AlreadyExists(AdError):
    """An object with that DN already exists."""


class InvalidDn(AdError, ValueError):
    """A DN (typically typed by a person) is malformed."""


class InvalidFilter(AdError, ValueError):
    """A filter could not be built (bad attribute name or value type)."""


_CODE_TO_ERROR: dict[int, type[AdError]] = {
    32: NotFound,
    10: NotFound,  # referral: the base is outside the partitions this DC holds
    49: InvalidCredentials,
    50: AccessDenied,
    8: AccessDenied,  # strongerAuthRequired
    13: AccessDenied,  # confidentialityRequired
    48: AccessDenied,  # inappropriateAuthentication
    16: NoSuchValue,
    20: ValueExists,
    17: ConstraintViolation,  # undefinedAttributeType
    18: ConstraintViolation,
    19: ConstraintViolation,
    21: ConstraintViolation,  # invalidAttributeSyntax
    53: ConstraintViolation,  # unwillingToPerform
    64: ConstraintViolation,  # namingViolation
    65: ConstraintViolation,  # objectClassViolation
    66: ConstraintViolation,  # notAllowedOnNonLeaf
    67: ConstraintViolation,  # notAllowedOnRDN
    69: ConstraintViolation,  # objectClassModsProhibited
    68: AlreadyExists,
    34: InvalidDn,
    87: InvalidFilter,
    51: ServerDown,  # busy
    52: ServerDown,  # unavailable
    80: ServerDown,  # other: Samba uses it when shutting down
    81: ServerDown,
    91: ServerDown,
}
_TRANSIENT_CODES = frozenset({51, 52})


def _error_from_result(action: str, result: Mapping[str, Any], dn: str | None = None) -> AdError:
    code = int(result.get("result", 80))
    cls = _CODE_TO_ERROR.get(code, AdError)
    message = str(result.get("message") or "")
    if code == 1 and re.search(r"without authentication|successful bind", message, re.IGNORECASE):
        cls = AccessDenied  # AD and Samba answer an unauthenticated write with operationsError
    return cls(
        f"{action} failed" + (f" for {dn}" if dn else ""),
        result_code=code,
        description=str(result.get("description") or ""),
        ldap_message=str(result.get("message") or ""),
        dn=dn,
    )


# ldap3 exceptions raised when the request cannot have reached the server (safe to repeat).
_BEFORE_SEND = (ldap_exc.LDAPSocketOpenError, ldap_exc.LDAPSocketSendError, ldap_exc.LDAPBindError)
# ... and when it may have (a write must not be repeated blindly).
_AFTER_SEND = (
    ldap_exc.LDAPSocketReceiveError,
    ldap_exc.LDAPSessionTerminatedByServerError,
    ldap_exc.LDAPResponseTimeoutError,
    ldap_exc.LDAPSocketCloseError,
    ldap_exc.LDAPCommunicationError,
    ConnectionError,
    socket.timeout,
)


class _Transient(Exception):
    def __init__(self, error: AdError, *, sent: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.sent = sent


# --------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class AdSettings:
    """How to reach one AD domain. The password never appears in repr() or logs."""

    host: str
    base_dn: str
    bind_dn: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int | None = None  # default 636 with use_ssl, else 389
    use_ssl: bool = False
    start_tls: bool = False
    validate_cert: bool = True
    ca_file: str | None = None
    tls_server_name: str | None = None
    auth: Literal["simple", "gssapi"] = "simple"
    gssapi_host: str | None = None  # host part of the ldap/<host> SPN when it differs from host
    connect_timeout: float = 5.0
    operation_timeout: int = 60
    page_size: int = 500
    range_step: int = 1500  # Windows' MaxValRange; the server may return fewer per step
    retries: int = 3
    retry_backoff: float = 0.3

    def __post_init__(self) -> None:
        if self.use_ssl and self.start_tls:
            raise ValueError("use_ssl (LDAPS) and start_tls are exclusive")
        if self.auth not in ("simple", "gssapi"):
            raise ValueError(f"unknown auth mode {self.auth!r}")
        if self.page_size < 1 or self.range_step < 1:
            raise ValueError("page_size and range_step must be positive")
        parse_dn(self.base_dn)

    @property
    def effective_port(self) -> int:
        return self.port or (636 if self.use_ssl else 389)

    @property
    def url(self) -> str:
        return f"{'ldaps' if self.use_ssl else 'ldap'}://{self.host}:{self.effective_port}"


# --------------------------------------------------------------------------------------------
# DNs (RFC 4514)

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


# --------------------------------------------------------------------------------------------
# filters (RFC 4515)

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


# --------------------------------------------------------------------------------------------
# results

# Returned as bytes; everything else is decoded as UTF-8 text (AD sends text as UTF-8).
BINARY_ATTRIBUTES = frozenset(
    a.lower()
    for a in (
        "objectGUID", "objectSid", "nTSecurityDescriptor", "msExchMailboxGuid", "msExchMailboxSecurityDescriptor",
        "mS-DS-ConsistencyGuid", "thumbnailPhoto", "jpegPhoto", "userCertificate", "userSMIMECertificate",
        "cACertificate", "tokenGroups", "sIDHistory", "msExchMasterAccountSid", "logonHours", "msDS-GenerationId",
        "unicodePwd", "dBCSPwd", "supplementalCredentials", "schemaIDGUID", "attributeSecurityGUID",
        "oMObjectClass", "msExchArchiveGUID", "msExchDisabledArchiveGUID", "replPropertyMetaData",
        "msDS-KeyCredentialLink-Raw", "securityIdentifier", "msDS-ManagedPasswordId",
    )
)

# Operational attributes a full read asks for explicitly (AD does not return them for '*').
OPERATIONAL_ATTRIBUTES = (
    "objectGUID", "objectSid", "whenCreated", "whenChanged", "uSNCreated", "uSNChanged", "memberOf",
    "distinguishedName", "objectCategory", "isDeleted", "canonicalName", "msDS-PrincipalName",
)


def sid_to_str(raw: bytes) -> str:
    """Binary SID (as in objectSid) to its S-1-5-21-... form."""
    if len(raw) < 8:
        raise ValueError("a SID is at least 8 bytes")
    revision, count = raw[0], raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack("<" + "I" * count, raw[8 : 8 + 4 * count])
    return "S-" + "-".join(str(x) for x in (revision, authority, *subs))


_SID_RE = re.compile(r"S-1-\d+(-\d+){1,15}\Z")


@dataclass(frozen=True)
class DirectoryObject:
    dn: str
    guid: UUID | None
    sid: str | None
    object_classes: tuple[str, ...]
    attributes: dict[str, list[Any]]

    def get(self, name: str) -> list[Any]:
        """All values of an attribute (case-insensitive name); [] when absent."""
        lower = name.lower()
        for key, values in self.attributes.items():
            if key.lower() == lower:
                return values
        return []

    def first(self, name: str, default: Any = None) -> Any:
        values = self.get(name)
        return values[0] if values else default

    def has_class(self, name: str) -> bool:
        return name.lower() in {c.lower() for c in self.object_classes}

    @property
    def kind(self) -> str:
        classes = {c.lower() for c in self.object_classes}
        for kind, cls in (
            ("computer", "computer"), ("user", "user"), ("group", "group"), ("contact", "contact"),
            ("dynamic-dl", "msexchdynamicdistributionlist"), ("ou", "organizationalunit"),
        ):
            if cls in classes:
                return kind
        return "other"

    @property
    def usn_changed(self) -> int | None:
        value = self.first("uSNChanged")
        return int(value) if value is not None else None


def _decode_values(name: str, values: Sequence[bytes] | None) -> list[Any]:
    if name.split(";", 1)[0].lower() in BINARY_ATTRIBUTES:
        return [bytes(v) for v in values or ()]
    return _decode_text(values or ())


def _decode_text(values: Sequence[bytes]) -> list[Any]:
    """UTF-8 text; a value that is not valid UTF-8 is kept as bytes (the rest still decoded)."""
    try:
        return [v.decode() for v in values]  # ldap3's raw values are bytes already
    except UnicodeDecodeError:
        out: list[Any] = []
        for v in values:
            try:
                out.append(v.decode())
            except UnicodeDecodeError:
                out.append(bytes(v))
        return out


def _to_object(dn: str, raw: Mapping[str, Sequence[bytes] | None]) -> DirectoryObject:
    """One pass over the raw attributes: each value is decoded once, and the GUID, SID and classes
    are taken from the values already converted (this runs for every object a scan yields)."""
    attributes: dict[str, list[Any]] = {}
    guid = sid = None
    classes: tuple[str, ...] = ()
    for name, values in raw.items():
        lower = name.lower()
        base = lower.split(";", 1)[0] if ";" in lower else lower
        if base in BINARY_ATTRIBUTES:
            decoded = [bytes(v) for v in values or ()]
            if lower == "objectguid" and decoded:
                guid = UUID(bytes_le=decoded[0])
            elif lower == "objectsid" and decoded:
                with contextlib.suppress(ValueError, struct.error):
                    sid = sid_to_str(decoded[0])
        else:
            decoded = _decode_text(values or ())
            if lower == "objectclass":
                classes = tuple(decoded)
        attributes[name] = decoded
    return DirectoryObject(dn=dn, guid=guid, sid=sid, object_classes=classes, attributes=attributes)


@dataclass(frozen=True)
class NewEntry:
    """One object for :meth:`ActiveDirectory.add_many`."""

    dn: str
    object_class: str | Sequence[str]
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckItem:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class CheckReport:
    ok: bool
    server: str
    naming_context: str | None
    items: tuple[CheckItem, ...]

    def failures(self) -> list[CheckItem]:
        return [item for item in self.items if not item.ok]


def _ldap_values(value: Any) -> list[Any]:
    """Python values to what ldap3 sends: text, bytes, TRUE/FALSE, decimal integers."""
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    out: list[Any] = []
    for item in items:
        if isinstance(item, bool):
            out.append("TRUE" if item else "FALSE")
        elif isinstance(item, int):
            out.append(str(item))
        elif isinstance(item, UUID):
            out.append(item.bytes_le)
        elif isinstance(item, Dn):
            out.append(str(item))
        elif isinstance(item, (str, bytes, bytearray)):
            out.append(item)
        else:
            raise ConstraintViolation(f"cannot send a {type(item).__name__} value to the directory")
    return out


def _outcome(conn: ldap3.Connection, status: Any) -> tuple[bool, dict, list]:
    """Status, result and response of the operation just run on a SYNC connection.

    The response is detached from the connection, so that the caller alone decides how long a
    search page stays in memory (the paged search frees each entry as it is yielded), and the next
    call, from whichever thread, cannot overwrite a page still being consumed outside the lock.
    """
    result, response = conn.result or {}, conn.response or []
    conn.response = None
    return bool(status), result, response


_SCOPES = {"base": BASE, "one": LEVEL, "subtree": SUBTREE}
_PAGED_OID = "1.2.840.113556.1.4.319"
_TREE_DELETE_OID = "1.2.840.113556.1.4.805"


# --------------------------------------------------------------------------------------------
# the connector


class ActiveDirectory:
    """One AD domain, reached with ldap3. See the module docstring for the safety rules."""

    def __init__(self, settings: AdSettings) -> None:
        self.settings = settings
        self._conn: ldap3.Connection | None = None
        self._lock = threading.RLock()

    # ---- lifecycle

    def __enter__(self) -> ActiveDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.unbind()

    # ---- connection handling

    def _tls(self) -> ldap3.Tls | None:
        s = self.settings
        if not (s.use_ssl or s.start_tls):
            return None
        return ldap3.Tls(
            validate=ssl.CERT_REQUIRED if s.validate_cert else ssl.CERT_NONE,
            ca_certs_file=s.ca_file,
            valid_names=[s.tls_server_name] if s.tls_server_name else None,
        )

    def _new_connection(self, strategy: str = ldap3.SYNC) -> ldap3.Connection:
        """A bound connection. SYNC, not SAFE_SYNC: calls are already serialised by ``self._lock``,
        and SAFE_SYNC deep-copies every result and response (each search page) to make them
        thread-safe, which cost a third of a 100k-object scan. ``_call`` reads the outcome from
        ``conn.result``/``conn.response`` under the lock instead."""
        s = self.settings
        server = ldap3.Server(
            s.host, port=s.effective_port, use_ssl=s.use_ssl, tls=self._tls(), get_info=ldap3.NONE,
            connect_timeout=s.connect_timeout,
        )
        common: dict[str, Any] = {
            "client_strategy": strategy,
            "receive_timeout": max(1, int(s.operation_timeout)),  # ldap3 needs an int here
            "raise_exceptions": False,
            "check_names": False,  # DNs are validated by parse_dn; ldap3's sanitiser mangles some
            "auto_range": False,  # ranges are followed explicitly by iter_values
            # With auto_range off and empty attributes on, ldap3 2.9.1 raises KeyError('member') on an
            # explicit range request (it deletes the plain name it never added).
            "return_empty_attributes": False,
            "read_only": False,
        }
        if s.auth == "gssapi":
            try:
                import gssapi  # noqa: F401  (ldap3 imports it lazily; fail early with a clear message)
            except ImportError as exc:
                raise AdError(
                    "auth='gssapi' needs the 'gssapi' Python package and a Kerberos ticket (kinit or a keytab)"
                ) from exc
            conn = ldap3.Connection(
                server, authentication=ldap3.SASL, sasl_mechanism=ldap3.KERBEROS,
                sasl_credentials=(s.gssapi_host,) if s.gssapi_host else None, **common,
            )
        elif s.bind_dn:
            conn = ldap3.Connection(server, user=s.bind_dn, password=s.password or "", **common)
        else:
            conn = ldap3.Connection(server, **common)
        try:
            conn.open()
            if s.start_tls and not conn.start_tls():
                raise TlsError(f"StartTLS with {s.host} failed", ldap_message=str(conn.result))
            if not conn.bind():
                raise _error_from_result(f"bind as {s.bind_dn or 'anonymous'} to {s.url}", conn.result or {})
        except (ldap_exc.LDAPStartTLSError, ssl.SSLError) as exc:
            self._discard(conn)
            raise TlsError(f"TLS with {s.url} failed: {exc}") from exc
        except ldap_exc.LDAPSocketOpenError as exc:
            self._discard(conn)
            if "certificate" in str(exc).lower() or "ssl" in str(exc).lower():
                raise TlsError(f"TLS with {s.url} failed: {exc}") from exc
            raise ServerDown(f"cannot connect to {s.url}: {exc}") from exc
        except ldap_exc.LDAPException as exc:
            self._discard(conn)
            raise ServerDown(f"cannot connect to {s.url}: {exc}") from exc
        except AdError:
            self._discard(conn)
            raise
        return conn

    @staticmethod
    def _discard(conn: ldap3.Connection) -> None:
        with contextlib.suppress(Exception):
            conn.unbind()

    def _connection(self) -> ldap3.Connection:
        conn = self._conn
        if conn is not None and (conn.closed or not self._socket_alive(conn)):
            self._discard(conn)
            conn = self._conn = None
        if conn is None:
            conn = self._conn = self._new_connection()
        return conn

    @staticmethod
    def _socket_alive(conn: ldap3.Connection) -> bool:
        """False when the server has closed an idle connection (restart, idle timeout).

        Checked before each request so that a write is not sent into a dead socket, where its
        outcome would look unknown although the server never saw it.
        """
        sock = getattr(conn, "socket", None)
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        if not readable:
            return True
        try:
            if isinstance(sock, ssl.SSLSocket):
                return sock.pending() > 0  # TLS records pending; plain EOF shows as readable+empty
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False

    def _call(self, action: str, fn: Callable[[ldap3.Connection], Any], *, write: bool, dn: str | None = None) -> Any:
        """Run one LDAP operation with the retry policy; returns (status, result, response).

        ``fn(conn)`` issues exactly one ldap3 operation on the (SYNC) connection and returns its
        status; the result and response are taken from the connection by :func:`_outcome`.
        """
        s = self.settings
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._lock:
                    try:
                        conn = self._connection()
                    except ServerDown as exc:
                        if isinstance(exc, TlsError):
                            raise
                        raise _Transient(exc, sent=False) from exc
                    try:
                        status, result, response = _outcome(conn, fn(conn))
                    except _BEFORE_SEND as exc:
                        self.close()
                        raise _Transient(ServerDown(f"{action}: {exc}", dn=dn), sent=False) from exc
                    except _AFTER_SEND as exc:
                        self.close()
                        raise _Transient(ServerDown(f"{action}: connection lost ({exc})", dn=dn), sent=True) from exc
                    except ldap_exc.LDAPException as exc:  # anything else ldap3 raises, e.g. a bad control
                        raise AdError(f"{action}: {exc}", dn=dn) from exc
                code = int((result or {}).get("result", 0))
                if code in _TRANSIENT_CODES:
                    raise _Transient(_error_from_result(action, result, dn), sent=False)
                if code in (80, 81, 91) and not status:
                    self.close()
                    raise _Transient(_error_from_result(action, result, dn), sent=True)
                return status, result, response
            except _Transient as transient:
                if write and transient.sent:
                    err = transient.error
                    raise OutcomeUnknown(
                        f"{action}: the connection broke after the request was sent; re-read before retrying",
                        result_code=err.result_code, description=err.description, ldap_message=err.ldap_message,
                        dn=dn,
                    ) from transient
                if attempt > s.retries:
                    err = transient.error
                    if isinstance(err, ServerDown):
                        state = (
                            f"still {err.description}" if err.result_code in _TRANSIENT_CODES else "unreachable"
                        )
                        raise ServerDown(
                            f"{action}: {s.url} {state} after {attempt} attempts ({err.message})",
                            result_code=err.result_code, description=err.description,
                            ldap_message=err.ldap_message, dn=dn,
                        ) from transient
                    raise err from transient
                time.sleep(s.retry_backoff * (2 ** (attempt - 1)))

    def _ok(self, action: str, outcome: tuple, dn: str | None = None) -> tuple:
        status, result, response = outcome
        if not status and int(result.get("result", 1)) != 0:
            raise _error_from_result(action, result, dn)
        return outcome

    # ---- reading

    def root_dse(self) -> dict[str, list[str]]:
        outcome = self._call(
            "read rootDSE",
            lambda c: c.search("", "(objectClass=*)", search_scope=BASE, attributes=["*", "+"]),
            write=False,
        )
        _, _, response = self._ok("read rootDSE", outcome)
        entries = [e for e in response or [] if e.get("type") == "searchResEntry"]
        if not entries:
            raise NotFound("the rootDSE returned nothing")
        return {k: _decode_values(k, v) for k, v in entries[0]["raw_attributes"].items()}

    def read(self, dn: str, *, attributes: Sequence[str] | None = None) -> DirectoryObject:
        """One object by DN. ``attributes=None`` reads everything (as :meth:`read_all`)."""
        return self._read_base(str(parse_dn(dn)), attributes, shown=dn)

    def read_all(self, dn: str) -> DirectoryObject:
        """Every attribute of an object, operational ones included, ranged values completed."""
        return self._read_base(str(parse_dn(dn)), None, shown=dn)

    def read_by_guid(self, guid: UUID | str, *, attributes: Sequence[str] | None = None) -> DirectoryObject:
        value = guid if isinstance(guid, UUID) else UUID(str(guid))
        return self._read_base(f"<GUID={value}>", attributes, shown=f"GUID {value}")

    def read_by_sid(self, sid: str, *, attributes: Sequence[str] | None = None) -> DirectoryObject:
        if not isinstance(sid, str) or not _SID_RE.match(sid):
            raise AdError(f"{sid!r} is not a SID in S-1-... form")
        return self._read_base(f"<SID={sid}>", attributes, shown=f"SID {sid}")

    def exists(self, dn: str) -> bool:
        try:
            self.read(dn, attributes=["objectClass"])
        except NotFound:
            return False
        return True

    def _read_base(self, base: str, attributes: Sequence[str] | None, *, shown: str) -> DirectoryObject:
        attrs = self._attribute_list(attributes)
        outcome = self._call(
            f"read {shown}",
            lambda c: c.search(base, str(MATCH_ALL), search_scope=BASE, attributes=attrs),
            write=False,
            dn=shown,
        )
        _, result, response = outcome
        entries = [e for e in response or [] if e.get("type") == "searchResEntry"]
        if int(result.get("result", 0)) != 0 or not entries:
            if int(result.get("result", 0)) in (0, 32, 10):
                raise NotFound(
                    f"no object {shown}", result_code=int(result.get("result", 32)),
                    description=str(result.get("description") or ""), ldap_message=str(result.get("message") or ""),
                    dn=shown,
                )
            raise _error_from_result(f"read {shown}", result, shown)
        return self._complete_ranges(entries[0])

    @staticmethod
    def _attribute_list(attributes: Sequence[str] | None) -> list[str]:
        if attributes is None:
            return ["*", *OPERATIONAL_ATTRIBUTES]
        names = list(attributes)
        for name in names:
            if name not in ("*", "+", "1.1") and not _valid_attr_name(name.split(";", 1)[0]):
                raise AdError(f"{name!r} is not a valid attribute name")
        if names == ["1.1"]:
            return names
        lower = {n.lower() for n in names}
        # Every DirectoryObject carries its GUID, SID and classes, whatever the caller asked for.
        names += [must for must in ("objectGUID", "objectSid", "objectClass") if must.lower() not in lower]
        return names

    def _complete_ranges(self, entry: Mapping[str, Any]) -> DirectoryObject:
        """Replace ``attr;range=a-b`` values (Windows caps at 1500) by every value of ``attr``."""
        raw = entry.get("raw_attributes") or {}
        ranged = [k for k in raw if ";" in k and ";range=" in k.lower()]
        if ranged:  # rare (only large multi-valued attributes): copy before completing
            raw = dict(raw)
            for key in ranged:
                name, _, spec = key.partition(";")
                low, _, high = spec.split("=", 1)[1].partition("-")
                values = list(raw.pop(key) or ())
                if high != "*":
                    values += [v.encode() if isinstance(v, str) else v for v in self._iter_raw_values(
                        entry["dn"], name, start=int(high) + 1)]
                raw[name] = values
        return _to_object(entry.get("dn", ""), raw)

    def search(
        self,
        *,
        filter: Filter,  # noqa: A002  (the LDAP term; shadowing the builtin is harmless here)
        base: str | None = None,
        attributes: Sequence[str] | None = None,
        scope: Literal["base", "one", "subtree"] = "subtree",
        page_size: int | None = None,
        limit: int | None = None,
    ) -> Iterator[DirectoryObject]:
        """Paged search as a generator: one page in memory at a time, whatever the result size.

        ``filter`` must be a :class:`Filter` from this module's helpers. ``limit`` stops after that
        many objects (client side; the server-side paging continues to be released properly).
        """
        if not isinstance(filter, Filter):
            raise InvalidFilter("filter must be a Filter built by the helper functions, not a string")
        search_base = str(parse_dn(base)) if base else str(parse_dn(self.settings.base_dn))
        if scope not in _SCOPES:
            raise AdError(f"scope must be one of {sorted(_SCOPES)}")
        attrs = self._attribute_list(attributes if attributes is not None else ["*"])
        size = page_size or self.settings.page_size
        return self._paged(search_base, str(filter), _SCOPES[scope], attrs, size, limit)

    def _paged(
        self, base: str, flt: str, scope: str, attrs: list[str], size: int, limit: int | None
    ) -> Iterator[DirectoryObject]:
        cookie: bytes | None = None
        yielded = 0
        first = True
        paging_conn: ldap3.Connection | None = None
        try:
            while True:
                current = cookie

                def page(c: ldap3.Connection, current: bytes | None = current) -> Any:
                    return c.search(base, flt, search_scope=scope, attributes=attrs, paged_size=size,
                                    paged_cookie=current)

                if first:
                    outcome = self._call(f"search under {base}", page, write=False, dn=base)
                else:
                    # Paging state lives in the server connection: a reconnect cannot resume it.
                    outcome = self._page_same_connection(page, base, yielded, paging_conn)
                _, result, response = outcome
                del outcome
                code = int(result.get("result", 0))
                if code == 32 and first:
                    raise NotFound(f"search base {base} does not exist", result_code=32,
                                   description=str(result.get("description") or ""),
                                   ldap_message=str(result.get("message") or ""), dn=base)
                if code not in (0, 4):  # 4: sizeLimitExceeded still carries entries
                    raise _error_from_result(f"search under {base}", result, base)
                if first:
                    paging_conn = self._conn
                first = False
                # Taken before yielding: if the caller stops early, `finally` abandons this page's
                # cookie, which is the server-side state still open.
                cookie = (
                    ((result.get("controls") or {}).get(_PAGED_OID) or {}).get("value", {}).get("cookie")
                ) or None
                # Entries are popped as they are yielded: a consumed entry is freed at once, and
                # nothing of this page is left alive while the next page is received and decoded.
                response.reverse()
                while response:
                    entry = response.pop()
                    if entry.get("type") != "searchResEntry":
                        continue
                    obj = self._complete_ranges(entry)
                    del entry
                    yield obj
                    yielded += 1
                    if limit is not None and yielded >= limit:
                        return
                if cookie is None:
                    return
        finally:
            if cookie and self._conn is paging_conn:
                self._abandon_paging(base, flt, scope, cookie)

    def _page_same_connection(
        self, fn: Callable[[ldap3.Connection], Any], base: str, yielded: int, expected: ldap3.Connection | None
    ) -> tuple:
        with self._lock:
            conn = self._conn
            if conn is None or conn.closed or conn is not expected:
                raise ServerDown(f"search under {base} interrupted after {yielded} objects: connection lost", dn=base)
            try:
                status, result, response = _outcome(conn, fn(conn))
            except (*_BEFORE_SEND, *_AFTER_SEND) as exc:
                self.close()
                raise ServerDown(
                    f"search under {base} interrupted after {yielded} objects: {exc}", dn=base
                ) from exc
        return status, result, response

    def _abandon_paging(self, base: str, flt: str, scope: str, cookie: bytes) -> None:
        """Tell the server to drop an unfinished paged search (page size 0 with the cookie)."""
        with self._lock, contextlib.suppress(Exception):
            conn = self._conn
            if conn is not None and not conn.closed:
                _outcome(conn, conn.search(base, flt, search_scope=scope, attributes=["1.1"], paged_size=0,
                                           paged_cookie=cookie))

    def find(
        self,
        *,
        name_or_mail_or_alias: str,
        kinds: Iterable[str] = RECIPIENT_KINDS,
        base: str | None = None,
        attributes: Sequence[str] | None = None,
        prefix: bool = False,
        anywhere: bool = False,
        limit: int | None = None,
    ) -> Iterator[DirectoryObject]:
        """Objects whose name, display name, account name, alias, UPN, mail or any proxy address
        equals the text (or starts with it when ``prefix``). The text is always matched literally.

        ``anywhere``: the text anywhere in the name, display name, surname, given name, account name,
        alias, UPN, mail or any proxy address (a person searching knows part of a name or address).
        """
        text = name_or_mail_or_alias.strip() if isinstance(name_or_mail_or_alias, str) else None
        if not text:
            raise InvalidFilter("give a name, mail address or alias to look for")
        if anywhere:
            terms = [contains(a, text) for a in ("cn", "displayName", "sn", "givenName", "sAMAccountName",
                                                 "mailNickname", "mail", "userPrincipalName", "proxyAddresses")]
            return self.search(filter=all_of(kind_filter(kinds), any_of(*terms)), base=base, attributes=attributes,
                               limit=limit)
        match = starts_with if prefix else eq
        terms = [
            match(a, text)
            for a in ("cn", "name", "displayName", "sAMAccountName", "mailNickname", "mail", "userPrincipalName")
        ]
        if re.match(r"^[A-Za-z0-9]{2,10}:", text):  # typed with its prefix: smtp:, SMTP:, X500:, sip:
            terms.append(match("proxyAddresses", text))
        elif "@" in text:
            terms.append(match("proxyAddresses", "smtp:" + text))  # AD matches case-insensitively
        flt = all_of(kind_filter(kinds), any_of(*terms))
        return self.search(filter=flt, base=base, attributes=attributes, limit=limit)

    def find_one(self, *, name_or_mail_or_alias: str, kinds: Iterable[str] = RECIPIENT_KINDS,
                 base: str | None = None, attributes: Sequence[str] | None = None) -> DirectoryObject:
        found = list(self.find(name_or_mail_or_alias=name_or_mail_or_alias, kinds=kinds, base=base,
                               attributes=attributes, limit=11))
        if not found:
            raise NotFound(f"nothing matches {name_or_mail_or_alias!r}")
        if len(found) > 1:
            raise Ambiguous(f"{len(found) if len(found) <= 10 else 'more than 10'} objects match "
                            f"{name_or_mail_or_alias!r}", candidates=[o.dn for o in found[:10]])
        return found[0]

    def iter_values(self, dn: str, attribute: str, *, step: int | None = None) -> Iterator[str]:
        """Every value of a (large) multi-valued attribute, read in explicit ranges.

        ``member;range=0-1499``, then from the server's upper bound + 1, until it answers with
        ``*`` as upper bound; each value is yielded exactly once and only one range is in memory.
        """
        if not _valid_attr_name(attribute):
            raise AdError(f"{attribute!r} is not a valid attribute name")
        for value in self._iter_raw_values(str(parse_dn(dn)), attribute, start=0, step=step):
            yield value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value

    def _iter_raw_values(self, dn: str, attribute: str, *, start: int, step: int | None = None) -> Iterator[bytes]:
        step = step or self.settings.range_step
        low = start
        prefix = attribute.lower() + ";range="
        while True:
            wanted = f"{attribute};range={low}-{low + step - 1}"
            outcome = self._call(
                f"read {attribute} of {dn}",
                lambda c, wanted=wanted: c.search(dn, str(MATCH_ALL), search_scope=BASE, attributes=[wanted]),
                write=False,
                dn=dn,
            )
            _, result, response = outcome
            code = int(result.get("result", 0))
            if code == 32:
                raise NotFound(f"no object {dn}", result_code=32, dn=dn,
                               ldap_message=str(result.get("message") or ""))
            if code != 0:
                raise _error_from_result(f"read {attribute} of {dn}", result, dn)
            entries = [e for e in response or [] if e.get("type") == "searchResEntry"]
            raw = entries[0]["raw_attributes"] if entries else {}
            key = next((k for k in raw if k.lower().startswith(prefix)), None)
            if key is None:
                plain = next((k for k in raw if k.lower() == attribute.lower()), None)
                if plain is not None and low == 0:
                    yield from raw[plain]  # a server that ignores ranges sends everything at once
                return
            yield from raw[key] or ()  # Samba answers a range past the end with an empty 'N-*'
            high = key.split("=", 1)[1].partition("-")[2]
            if high == "*":
                return
            next_low = int(high) + 1
            if next_low <= low:  # a server must always advance; guard against a loop
                raise AdError(f"the server returned range {key} for a request from {low}")
            low = next_low

    # ---- writing

    def add(self, dn: str, *, object_class: str | Sequence[str], attributes: Mapping[str, Any] | None = None) -> str:
        """Create an object; returns its canonical DN."""
        target = str(parse_dn(dn))
        classes = [object_class] if isinstance(object_class, str) else list(object_class)
        attrs = {k: _ldap_values(v) for k, v in (attributes or {}).items() if v is not None}
        attrs = {k: v for k, v in attrs.items() if v}
        for key in attrs:
            _check_attr_name(key)
        outcome = self._call(
            f"add {target}", lambda c: c.add(target, object_class=classes, attributes=attrs), write=True, dn=target
        )
        self._ok(f"add {target}", outcome, target)
        return target

    def add_many(self, entries: Iterable[NewEntry], *, window: int = 64) -> int:
        """Create many objects fast: requests are pipelined, ``window`` in flight at a time.

        Stops at the first failure and raises its error. Objects added before it stay, and the
        requests already in flight behind it (fewer than ``window``) may still be applied. Returns
        the number of objects created. Uses a dedicated connection, closed at the end.
        """
        conn = self._new_connection(ldap3.ASYNC)
        pending: list[tuple[int, str]] = []
        created = 0

        def collect(message_id: int, target: str) -> None:
            nonlocal created
            try:
                _, result = conn.get_response(message_id, get_request=False)
            except ldap_exc.LDAPOperationResult as exc:  # not raised with raise_exceptions=False
                result = {"result": exc.result, "description": exc.description, "message": exc.message}
            except (*_BEFORE_SEND, *_AFTER_SEND) as exc:
                raise OutcomeUnknown(f"bulk add interrupted at {target} after {created} objects: {exc}") from exc
            if int(result.get("result", 0)) != 0:
                raise _error_from_result(f"add {target}", result, target)
            created += 1

        try:
            for item in entries:
                target = str(parse_dn(item.dn))
                classes = [item.object_class] if isinstance(item.object_class, str) else list(item.object_class)
                attrs = {k: _ldap_values(v) for k, v in item.attributes.items() if v is not None}
                attrs = {k: v for k, v in attrs.items() if v}
                try:
                    message_id = conn.add(target, object_class=classes, attributes=attrs)
                except (*_BEFORE_SEND, *_AFTER_SEND) as exc:
                    raise OutcomeUnknown(f"bulk add interrupted at {target} after {created} objects: {exc}") from exc
                pending.append((message_id, target))
                if len(pending) >= window:
                    collect(*pending.pop(0))
            while pending:
                collect(*pending.pop(0))
        finally:
            # ldap3's receiver thread spins on a closed socket while a receive timeout is set: clear
            # it, close, and let the thread end, or the process crawls after every bulk add.
            receiver = getattr(conn.strategy, "receiver", None)
            conn.receive_timeout = None
            self._discard(conn)
            if receiver is not None:
                receiver.join(timeout=2)
        return created

    def modify(
        self,
        dn: str,
        *,
        replace: Mapping[str, Any] | None = None,
        add: Mapping[str, Any] | None = None,
        delete: Mapping[str, Any] | None = None,
    ) -> None:
        """Change attributes in one atomic modify.

        ``replace={"mail": "a@b"}`` sets values (``None``/``[]`` clears the attribute);
        ``add`` adds values; ``delete`` removes the given values (``None``/``[]``: all values).
        """
        target = str(parse_dn(dn))
        changes: dict[str, list[tuple[str, list[Any]]]] = {}
        for op, mapping in ((MODIFY_REPLACE, replace), (MODIFY_ADD, add), (MODIFY_DELETE, delete)):
            for name, value in (mapping or {}).items():
                _check_attr_name(name)
                values = _ldap_values(value)
                if op == MODIFY_ADD and not values:
                    continue
                changes.setdefault(name, []).append((op, values))
        if not changes:
            return
        outcome = self._call(f"modify {target}", lambda c: c.modify(target, changes), write=True, dn=target)
        self._ok(f"modify {target}", outcome, target)

    def add_values(self, dn: str, attribute: str, values: Iterable[Any], *, batch_size: int = 500) -> int:
        """Add many values (e.g. group members) in modifies of ``batch_size``; returns the count."""
        return self._batched(dn, attribute, values, batch_size, "add")

    def remove_values(self, dn: str, attribute: str, values: Iterable[Any], *, batch_size: int = 500) -> int:
        return self._batched(dn, attribute, values, batch_size, "delete")

    def _batched(self, dn: str, attribute: str, values: Iterable[Any], batch_size: int, op: str) -> int:
        total = 0
        batch: list[Any] = []
        for value in values:
            batch.append(value)
            if len(batch) >= batch_size:
                self.modify(dn, **{op: {attribute: batch}})
                total += len(batch)
                batch = []
        if batch:
            self.modify(dn, **{op: {attribute: batch}})
            total += len(batch)
        return total

    def move(self, dn: str, new_parent: str) -> str:
        """Move an object under another container, keeping its RDN; returns the new DN.

        Links (group membership, managedBy, delivery restrictions) follow the object.
        """
        source = parse_dn(dn)
        parent = parse_dn(new_parent)
        target = f"{source.rdn},{parent}"
        outcome = self._call(
            f"move {source}",
            lambda c: c.modify_dn(str(source), source.rdn, delete_old_dn=True, new_superior=str(parent)),
            write=True,
            dn=str(source),
        )
        self._ok(f"move {source} to {parent}", outcome, str(source))
        return target

    def rename(self, dn: str, new_name: str, *, attribute: str | None = None) -> str:
        """Give an object a new RDN value (``CN=new_name``) in the same container."""
        source = parse_dn(dn)
        new_rdn = rdn(attribute or source.rdn_type, new_name)
        target = f"{new_rdn},{source.parent}" if len(source.rdns) > 1 else new_rdn
        outcome = self._call(
            f"rename {source}",
            lambda c: c.modify_dn(str(source), new_rdn, delete_old_dn=True),
            write=True,
            dn=str(source),
        )
        self._ok(f"rename {source}", outcome, str(source))
        return target

    def delete(self, dn: str, *, recursive: bool = False) -> None:
        """Delete an object (``recursive``: with everything below it, via the tree-delete control)."""
        target = str(parse_dn(dn))
        controls = [(_TREE_DELETE_OID, True, None)] if recursive else None
        outcome = self._call(f"delete {target}", lambda c: c.delete(target, controls=controls), write=True,
                             dn=target)
        self._ok(f"delete {target}", outcome, target)

    # ---- typed creators

    def create_ou(self, *, parent: str, name: str, description: str | None = None) -> str:
        return self.add(child_dn(parent, "OU", name), object_class="organizationalUnit",
                        attributes={"description": description})

    def create_contact(
        self,
        *,
        parent: str,
        name: str,
        mail: str | None = None,
        alias: str | None = None,
        display_name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """A contact (mail contact when ``mail`` is given: targetAddress SMTP:<mail>)."""
        attrs: dict[str, Any] = {"displayName": display_name or name}
        if mail:
            attrs.update({"mail": mail, "targetAddress": f"SMTP:{mail}", "proxyAddresses": [f"SMTP:{mail}"]})
        if alias:
            attrs["mailNickname"] = alias
        attrs.update(attributes or {})
        return self.add(child_dn(parent, "CN", name), object_class="contact", attributes=attrs)

    def create_group(
        self,
        *,
        parent: str,
        name: str,
        sam_account_name: str | None = None,
        group_type: int = 8,  # universal distribution group
        mail: str | None = None,
        alias: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        attrs: dict[str, Any] = {"groupType": group_type, "sAMAccountName": sam_account_name or _sam_from(name),
                                 "displayName": name}
        if mail:
            attrs.update({"mail": mail, "proxyAddresses": [f"SMTP:{mail}"]})
        if alias:
            attrs["mailNickname"] = alias
        attrs.update(attributes or {})
        return self.add(child_dn(parent, "CN", name), object_class="group", attributes=attrs)

    def create_dynamic_distribution_list(
        self,
        *,
        parent: str,
        name: str,
        alias: str,
        recipient_filter: Filter,
        search_base: str | None = None,
        mail: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """An Exchange dynamic distribution list (msExchDynamicDistributionList).

        Its membership is ``recipient_filter`` (stored in msExchDynamicDLFilter) evaluated under
        ``search_base`` (msExchDynamicDLBaseDN, default the domain). As Exchange does, it is marked
        msExchRecipientDisplayType 3 and msExchRecipientTypeDetails 2048.
        """
        if not isinstance(recipient_filter, Filter):
            raise InvalidFilter("recipient_filter must be a Filter built by the helper functions")
        attrs: dict[str, Any] = {
            "displayName": name,
            "mailNickname": alias,
            "msExchDynamicDLFilter": str(recipient_filter),
            "msExchDynamicDLBaseDN": validate_dn(search_base or self.settings.base_dn),
            "msExchRecipientDisplayType": 3,
            "msExchRecipientTypeDetails": 2048,
        }
        if mail:
            attrs.update({"mail": mail, "proxyAddresses": [f"SMTP:{mail}"]})
        attrs.update(attributes or {})
        return self.add(child_dn(parent, "CN", name), object_class=["top", "msExchDynamicDistributionList"],
                        attributes=attrs)

    def dynamic_members(self, dl_dn: str, *, attributes: Sequence[str] | None = None) -> Iterator[DirectoryObject]:
        """The current members of a dynamic DL: its stored filter evaluated under its base."""
        dl = self.read(dl_dn, attributes=["msExchDynamicDLFilter", "msExchDynamicDLBaseDN"])
        stored = dl.first("msExchDynamicDLFilter")
        if not stored:
            raise ConstraintViolation(f"{dl_dn} has no msExchDynamicDLFilter")
        # The stored text was written by this connector (or by Exchange); it is the directory's
        # own data, sent back as-is, never text typed by a portal user.
        return self._paged(
            str(parse_dn(dl.first("msExchDynamicDLBaseDN") or self.settings.base_dn)),
            stored, SUBTREE, self._attribute_list(attributes or ["*"]), self.settings.page_size, None,
        )

    # ---- address repair: the objects Entra Connect exports (one self-contained method, easy to move)

    def iter_in_scope(
        self, *, bases: Sequence[str], kinds: Iterable[str] = ("user", "group", "contact"),
        attributes: Sequence[str] | None = None, page_size: int | None = None,
    ) -> Iterator[DirectoryObject]:
        """Every object of ``kinds`` under each of ``bases`` (the sync OUs), paged: one page in memory at a time.

        An OU nested in another listed one is read once (its objects come with the outer OU).
        """
        parsed = [parse_dn(b) for b in bases]
        outer = [b for b in parsed if not any(o.normalized() != b.normalized() and b.is_within(o) for o in parsed)]
        seen: set = set()
        flt = kind_filter(kinds)
        for base in outer:
            if base.normalized() in seen:
                continue
            seen.add(base.normalized())
            yield from self.search(filter=flt, base=str(base), attributes=attributes, page_size=page_size)

    # ---- connectivity check

    def check(self, *, required_ous: Sequence[str] = ()) -> CheckReport:
        """Connectivity check for the settings page and ``manage.py`` diagnostics; never raises.

        Items: connect and bind, naming context matches ``base_dn``, Exchange schema complete
        (exchange_schema.schema_missing), each of ``required_ous`` exists.
        """
        from portal.lab import exchange_schema

        s = self.settings
        items: list[CheckItem] = []
        naming: str | None = None
        mode = "LDAPS" if s.use_ssl else ("StartTLS" if s.start_tls else "plain LDAP")
        who = "Kerberos (GSSAPI)" if s.auth == "gssapi" else (s.bind_dn or "anonymous")
        try:
            dse = self.root_dse()
            items.append(CheckItem("bind", True, f"bound to {s.url} ({mode}) as {who}"))
        except AdError as exc:
            items.append(CheckItem("bind", False, f"{s.url} ({mode}) as {who}: {exc}"))
            return CheckReport(False, s.url, None, tuple(items))
        naming = (dse.get("defaultNamingContext") or [None])[0]
        contexts = dse.get("namingContexts") or []
        if any(same_dn(s.base_dn, c) or parse_dn(s.base_dn).is_within(c) for c in contexts):
            items.append(CheckItem("naming context", True, f"{s.base_dn} is served (default {naming})"))
        else:
            items.append(CheckItem("naming context", False, f"{s.base_dn} is not among {contexts}"))
        try:
            with self._lock:
                conn = self._connection()
                try:
                    missing = exchange_schema.schema_missing(conn)
                finally:
                    conn.response = None  # do not keep the schema entries alive on the connection
            items.append(CheckItem(
                "exchange schema", not missing,
                "all Exchange attributes present" if not missing else "missing: " + ", ".join(missing[:20])
                + (f" and {len(missing) - 20} more" if len(missing) > 20 else ""),
            ))
        except Exception as exc:  # the check reports, it does not fail
            items.append(CheckItem("exchange schema", False, f"cannot read the schema: {exc}"))
        for ou in required_ous:
            try:
                obj = self.read(ou, attributes=["objectClass"])
                items.append(CheckItem(f"OU {ou}", True, f"exists ({obj.kind})"))
            except AdError as exc:
                items.append(CheckItem(f"OU {ou}", False, str(exc)))
        return CheckReport(all(i.ok for i in items), s.url, naming, tuple(items))


def _check_attr_name(name: str) -> None:
    if not isinstance(name, str) or not _valid_attr_name(name):
        raise ConstraintViolation(f"{name!r} is not a valid attribute name")


def _sam_from(name: str) -> str:
    cleaned = re.sub(r'[\\/\[\]:;|=,+*?<>"@\s]', "", name)[:20]
    return cleaned or "grp" + str(abs(hash(name)) % 10**8)
