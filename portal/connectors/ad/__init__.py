"""ActiveDirectory: the portal's only way to talk to on-premises Active Directory (ldap3).

The connector is :class:`ActiveDirectory` (:mod:`.client`, on the connection, retry and error mapping
of :mod:`.connection`). Errors in :mod:`.errors`, DNs in :mod:`.dn`, LDAP filters in :mod:`.filters`,
the values it returns in :mod:`.types`, its settings in :mod:`.settings`; recipient queries for the DL
migration in :mod:`.recipients` and security descriptors in :mod:`.security` build on it. Everything
public is importable from this package, as it was from the single module it grew out of.

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

* Filters are :class:`Filter` objects, built only by the helper functions of :mod:`.filters`, which
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

from .client import ActiveDirectory
from .dn import Dn, child_dn, escape_dn_value, parse_dn, rdn, same_dn, validate_dn
from .errors import (
    AccessDenied,
    AdError,
    AlreadyExists,
    Ambiguous,
    ConstraintViolation,
    InvalidCredentials,
    InvalidDn,
    InvalidFilter,
    NoSuchValue,
    NotFound,
    OutcomeUnknown,
    ServerDown,
    TlsError,
    Unreachable,
    ValueExists,
)
from .filters import (
    KIND_FILTERS,
    MATCH_ALL,
    RECIPIENT_KINDS,
    Filter,
    all_of,
    any_of,
    bits_all,
    bits_any,
    contains,
    ends_with,
    eq,
    escape_filter_value,
    ge,
    in_chain,
    kind_filter,
    le,
    not_,
    object_class,
    present,
    starts_with,
)
from .settings import AdSettings
from .types import (
    BINARY_ATTRIBUTES,
    OPERATIONAL_ATTRIBUTES,
    CheckItem,
    CheckReport,
    DirectoryObject,
    NewEntry,
    sid_to_str,
)

__all__ = [
    "AccessDenied",
    "ActiveDirectory",
    "AdError",
    "AdSettings",
    "all_of",
    "AlreadyExists",
    "Ambiguous",
    "any_of",
    "BINARY_ATTRIBUTES",
    "bits_all",
    "bits_any",
    "CheckItem",
    "CheckReport",
    "child_dn",
    "ConstraintViolation",
    "contains",
    "DirectoryObject",
    "Dn",
    "ends_with",
    "eq",
    "escape_dn_value",
    "escape_filter_value",
    "Filter",
    "ge",
    "in_chain",
    "InvalidCredentials",
    "InvalidDn",
    "InvalidFilter",
    "kind_filter",
    "KIND_FILTERS",
    "le",
    "MATCH_ALL",
    "NewEntry",
    "NoSuchValue",
    "not_",
    "NotFound",
    "object_class",
    "OPERATIONAL_ATTRIBUTES",
    "OutcomeUnknown",
    "parse_dn",
    "present",
    "rdn",
    "RECIPIENT_KINDS",
    "same_dn",
    "ServerDown",
    "sid_to_str",
    "starts_with",
    "TlsError",
    "Unreachable",
    "validate_dn",
    "ValueExists",
]
