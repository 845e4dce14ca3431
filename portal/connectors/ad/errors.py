"""The AD connector's exceptions (each keeps the LDAP result code and message) and the mapping from
LDAP results and ldap3 exceptions to them.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from ldap3.core import exceptions as ldap_exc


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
