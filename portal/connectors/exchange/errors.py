"""The errors the Exchange connectors raise, and how Exchange's own error text maps onto them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


class ExchangeError(Exception):
    """Base of every error the Exchange connectors raise; keeps what Exchange said."""

    def __init__(
        self,
        message: str,
        *,
        cmdlet: str | None = None,
        exception_type: str | None = None,
        server_message: str | None = None,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.cmdlet = cmdlet
        self.exception_type = exception_type
        self.server_message = (server_message or "").strip() or None
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [self.message]
        tag = " ".join(p for p in (f"HTTP {self.status}" if self.status else None, self.exception_type) if p)
        if tag:
            parts.append(f"[{tag}]")
        if self.server_message and self.server_message not in self.message:
            parts.append(self.server_message)
        if self.request_id:
            parts.append(f"(request-id {self.request_id})")
        return " ".join(parts)


class ObjectNotFound(ExchangeError):
    """ManagementObjectNotFoundException: no recipient/object with that identity."""


class AmbiguousObject(ExchangeError):
    """ManagementObjectAmbiguousException: the identity matches several objects."""


class AmbiguousIdentity(AmbiguousObject):
    """A look-up by identity answered with several objects. Acting on the first would act on an object
    nobody chose, so the portal stops and names them all (``matches``)."""

    def __init__(self, message: str, *, matches: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.matches = tuple(matches)


class UnknownCmdlet(ExchangeError):
    """CommandNotFoundException: the cmdlet does not exist, or is not in the app's Exchange roles."""


class InvalidParameter(ExchangeError, ValueError):
    """A parameter name or value was refused (here, before sending, or by Exchange's binder)."""


class InvalidFilter(InvalidParameter):
    """An OPATH filter could not be built (bad property name or value type)."""


class DirSyncedObject(ExchangeError):
    """The object is synchronized from on-premises: change it there, not in Exchange Online."""


class AlreadyExists(ExchangeError):
    """An object with that name/alias already exists."""


class AddressInUse(AlreadyExists):
    """An SMTP/proxy address is already held by another recipient."""


class MemberAlreadyExists(ExchangeError):
    """MemberAlreadyExistsException: the recipient is already a member."""


class MemberNotFound(ExchangeError):
    """The recipient is not a member of the group."""


class AccessDenied(ExchangeError):
    """401/403 with a reason, or an Exchange permission error (role, group ownership)."""


class Unauthorized(AccessDenied):
    """401: the token or the credentials were refused."""


class Throttled(ExchangeError):
    """429 (or 503 with Retry-After) still answered after every retry."""


class ServiceUnavailable(ExchangeError):
    """5xx still answered after every retry."""


class Unreachable(ExchangeError):
    """The service could not be reached (DNS, TCP, TLS, timeout before sending)."""


class OutcomeUnknown(Unreachable):
    """The connection broke after a write was sent: it may or may not have been applied."""


_EXCEPTION_ERRORS: dict[str, type[ExchangeError]] = {
    "ManagementObjectNotFoundException": ObjectNotFound,
    "ManagementObjectAmbiguousException": AmbiguousObject,
    "CommandNotFoundException": UnknownCmdlet,
    "ParameterBindingException": InvalidParameter,
    "ParameterBindingValidationException": InvalidParameter,
    "ParameterBindingArgumentTransformationException": InvalidParameter,
    "ArgumentException": InvalidParameter,
    "ArgumentNullException": InvalidParameter,
    "ArgumentOutOfRangeException": InvalidParameter,
    "InvalidFilterException": InvalidFilter,
    "DataValidationException": InvalidParameter,
    "ADObjectAlreadyExistsException": AlreadyExists,
    "ProxyAddressExistsException": AddressInUse,
    "MemberAlreadyExistsException": MemberAlreadyExists,
    "MemberNotFoundException": MemberNotFound,
    "OperationRequiresGroupManagerException": AccessDenied,
    "UnauthorizedAccessException": AccessDenied,
    "ThrottlingException": Throttled,
    "OverBudgetException": Throttled,
}
_GENERIC_EXCEPTIONS = frozenset({
    "Exception", "ODataServiceException", "RestApiException", "CmdletInvocationException", "RemoteException",
    "RuntimeException", "RecipientTaskException", "TaskException", "ManagementException", "ErrorRecordException",
})
_EXCEPTION_RE = re.compile(r"(?:[A-Za-z_][\w]*\.)*([A-Z]\w*Exception)\b")
_MESSAGE_RULES: tuple[tuple[re.Pattern[str], type[ExchangeError]], ...] = (
    (re.compile(r"synchroni[sz]ed from your on-premises organi[sz]ation", re.I), DirSyncedObject),
    (re.compile(r"is already (?:a member|being used|used by|present)|already exists", re.I), AlreadyExists),
    (re.compile(r"\b(?:isn't|is not) a member\b", re.I), MemberNotFound),
    (re.compile(r"couldn't be found|could not be found|wasn't found", re.I), ObjectNotFound),
    (re.compile(r"is not recognized as (?:the )?name of a cmdlet", re.I), UnknownCmdlet),
    (re.compile(r"A parameter cannot be found that matches parameter name", re.I), InvalidParameter),
)


def parse_exception_type(*texts: str | None) -> str | None:
    """The most specific .NET exception type named in Exchange's error text, short form."""
    found: list[str] = []
    for text in texts:
        found.extend(m.group(1) for m in _EXCEPTION_RE.finditer(text or ""))
    specific = [name for name in found if name not in _GENERIC_EXCEPTIONS]
    return (specific or found or [None])[0]


def human_message(text: str | None) -> str:
    """Exchange's ``Ex123|Microsoft...SomeException|The real message`` reduced to the message."""
    if not text:
        return ""
    parts = [p.strip() for p in text.split("|") if p.strip()]
    return parts[-1] if parts else text.strip()


def classify_error(exception_type: str | None, message: str | None) -> type[ExchangeError]:
    """The :class:`ExchangeError` subclass for an exception type and message."""
    text = message or ""
    # The dir-sync refusal comes as a generic task exception: the message decides first.
    if _MESSAGE_RULES[0][0].search(text):
        return DirSyncedObject
    if exception_type in _EXCEPTION_ERRORS:
        cls = _EXCEPTION_ERRORS[exception_type]
        if cls is AlreadyExists and re.search(r"proxy address|e-?mail address|already being used", text, re.I):
            return AddressInUse
        return cls
    for pattern, cls in _MESSAGE_RULES[1:]:
        if pattern.search(text):
            if cls is AlreadyExists:
                if re.search(r"already a member", text, re.I):
                    return MemberAlreadyExists
                if re.search(r"proxy address|e-?mail address|already being used", text, re.I):
                    return AddressInUse
            return cls
    return ExchangeError


class _CmdletNotAvailable(UnknownCmdlet, AccessDenied):
    """An empty 403 from InvokeCommand: unknown cmdlet, or one outside the app's roles."""
