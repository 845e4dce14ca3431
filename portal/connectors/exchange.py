"""Exchange connectors: ExchangeOnline (admin REST "InvokeCommand" + msal) and ExchangeOnPrem
(Exchange remote PowerShell), plus the PowerShell transports that ExchangeOnPrem and
:mod:`.sync` (Entra Connect) share.

No Django here: settings dataclasses in, typed dataclasses out (``connectors/registry.py`` builds
the settings).

Safety rules the API enforces:

* Cmdlets run with their parameters as data, never as script text. InvokeCommand sends
  ``{"CmdletInput": {"CmdletName": ..., "Parameters": {...}}}`` as JSON; the PSRP transport adds
  the cmdlet with ``PowerShell.add_cmdlet`` and each parameter with ``add_parameter``; the lab
  transport posts the same pair as JSON. Cmdlet and parameter names are checked against a strict
  pattern and every value is type-checked (:func:`check_parameters`) before it leaves.
* OPATH ``-Filter`` / ``-RecipientFilter`` values are :class:`OpathFilter` objects built only by
  this module's helpers, which quote every value as Exchange's OPATH grammar wants (single quotes,
  an embedded single quote doubled). No public method takes a raw filter string.
* Typed methods validate what they can (SMTP addresses, aliases, enum values, the parameters a
  ``Set-*`` cmdlet accepts) so that a typo fails here with a clear message, not half-way in Exchange.
* Errors surface as :class:`ExchangeError` subclasses that keep the exception type Exchange named
  (``ManagementObjectNotFoundException``...), its message, the HTTP status and the request id.
  Secrets never appear in an exception message.
* Throttling (429, and 503 with ``Retry-After``) is retried a bounded number of times, honouring
  ``Retry-After``; a write whose outcome is unknown (connection lost after sending) is not repeated.
"""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote, urlsplit
from uuid import UUID

import httpx

from .ad import CheckItem, InvalidDn, parse_dn
from .graph import AppCredentials, CloudCheckReport, TokenError, TokenSource, _retry_after, _scrub

EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
# The mailbox the Exchange Online module anchors app-only sessions to.
_APP_ANCHOR = "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"

# --------------------------------------------------------------------------------------------
# errors


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


# --------------------------------------------------------------------------------------------
# parameter values


class _Switch:
    """A switch parameter present with no value (``-IgnoreNamingPolicy``)."""

    _instance: _Switch | None = None

    def __new__(cls) -> _Switch:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SWITCH"


SWITCH = _Switch()


@dataclass(frozen=True)
class MultiValuedUpdate:
    """Add/remove values of a multi-valued property (``@{Add=...; Remove=...}``) without replacing it."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "add", tuple(self.add))
        object.__setattr__(self, "remove", tuple(self.remove))
        if not self.add and not self.remove:
            raise InvalidParameter("a MultiValuedUpdate needs values to add or remove")
        for value in (*self.add, *self.remove):
            _check_text(value, "a multi-valued update")


_CMDLET_RE = re.compile(r"[A-Z][a-z]+-[A-Za-z][A-Za-z0-9]{1,80}\Z")
_PARAM_RE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}\Z")
_MAX_TEXT = 32768


def _check_text(value: str, what: str) -> str:
    if len(value) > _MAX_TEXT:
        raise InvalidParameter(f"{what} is longer than {_MAX_TEXT} characters")
    if any(ord(ch) < 0x20 and ch not in "\t\r\n" for ch in value):
        raise InvalidParameter(f"{what} contains a control character")
    return value


def check_cmdlet(cmdlet: str) -> str:
    if not isinstance(cmdlet, str) or not _CMDLET_RE.match(cmdlet):
        raise InvalidParameter(f"{cmdlet!r} is not a cmdlet name (Verb-Noun)")
    return cmdlet


def check_parameters(cmdlet: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Validate names and value types; returns a copy. Raises :class:`InvalidParameter`."""
    check_cmdlet(cmdlet)
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for name, value in parameters.items():
        if not isinstance(name, str) or not _PARAM_RE.match(name):
            raise InvalidParameter(f"{cmdlet}: {name!r} is not a parameter name")
        if name.lower() in seen:
            raise InvalidParameter(f"{cmdlet}: parameter {name} given twice")
        seen.add(name.lower())
        out[name] = _check_value(f"{cmdlet} -{name}", value)
    return out


def _check_value(what: str, value: Any) -> Any:
    if value is None or value is SWITCH or isinstance(value, (bool, int, float, UUID, datetime, date)):
        return value
    if isinstance(value, str):
        return _check_text(value, what)
    if isinstance(value, (OpathFilter, MultiValuedUpdate)):
        return value
    if isinstance(value, (list, tuple)):
        items = list(value)
        if len(items) > 100_000:
            raise InvalidParameter(f"{what}: too many values")
        for item in items:
            if isinstance(item, (list, tuple, dict)) or item is None or item is SWITCH:
                raise InvalidParameter(f"{what}: a list holds only text, numbers, booleans or GUIDs")
            _check_value(what, item)
        return items
    raise InvalidParameter(f"{what}: unsupported value type {type(value).__name__}")


def _json_value(value: Any) -> Any:
    """A checked parameter value as InvokeCommand / the lab's JSON wants it."""
    if value is SWITCH:
        return True
    if isinstance(value, OpathFilter):
        return str(value)
    if isinstance(value, MultiValuedUpdate):
        table: dict[str, Any] = {"@odata.type": "#Exchange.GenericHashTable"}
        if value.add:
            table["Add"] = list(value.add)
        if value.remove:
            table["Remove"] = list(value.remove)
        return table
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# OPATH filters


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


ScalarValue = str | bool | int | float | UUID | datetime | date
ParamValue = ScalarValue | Sequence[ScalarValue] | MultiValuedUpdate | _Switch | OpathFilter | None

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


# --------------------------------------------------------------------------------------------
# validated values for typed methods

_SMTP_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z")
_ALIAS_RE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*\Z")
_PROXY_RE = re.compile(r"(?:[A-Za-z0-9]{1,9}):.+\Z", re.S)


def smtp_address(value: str) -> str:
    if not isinstance(value, str) or len(value) > 320 or not _SMTP_RE.match(value) or ".." in value:
        raise InvalidParameter(f"{value!r} is not an SMTP address")
    return value


def alias_value(value: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not _ALIAS_RE.match(value):
        raise InvalidParameter(f"{value!r} is not a valid Exchange alias (letters, digits, !#$%&'*+-/=?^_`{{|}}~ "
                               "and inner dots, at most 64)")
    return value


def proxy_address(value: str) -> str:
    """``SMTP:a@b`` (primary), ``smtp:a@b``, ``X500:/o=...``: prefix checked, SMTP part validated."""
    if not isinstance(value, str) or not _PROXY_RE.match(value):
        raise InvalidParameter(f"{value!r} is not a proxy address (prefix:address)")
    prefix, _, rest = value.partition(":")
    if prefix.lower() == "smtp":
        smtp_address(rest)
    return _check_text(value, "a proxy address")


def _name(value: str, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter(f"{what} is required")
    if len(value) > limit:
        raise InvalidParameter(f"{what} is longer than {limit} characters")
    return _check_text(value, what)


def _identity(value: str | UUID) -> str:
    if isinstance(value, UUID):
        return str(value)
    return _name(value, "an identity", 1024)


def _identities(values: Iterable[str | UUID], what: str) -> list[str]:
    if isinstance(values, (str, UUID)):
        raise InvalidParameter(f"{what} must be a list of identities, not a single value")
    return [_identity(v) for v in values]


# The Set-* parameters the portal may change, with the kind of value each takes.
_Kind = str
_BOOL, _TEXT, _SMTP, _ADDRESSES, _RECIPIENTS, _INT = "bool", "text", "smtp", "addresses", "recipients", "int"
_JOIN = ("Open", "Closed", "ApprovalRequired")

SET_DISTRIBUTION_GROUP_PARAMETERS: dict[str, _Kind | tuple[str, ...]] = {
    "Name": _TEXT, "DisplayName": _TEXT, "Alias": "alias", "PrimarySmtpAddress": _SMTP, "EmailAddresses": _ADDRESSES,
    "ManagedBy": _RECIPIENTS, "AcceptMessagesOnlyFromSendersOrMembers": _RECIPIENTS,
    "AcceptMessagesOnlyFrom": _RECIPIENTS, "AcceptMessagesOnlyFromDLMembers": _RECIPIENTS,
    "RejectMessagesFromSendersOrMembers": _RECIPIENTS, "RejectMessagesFrom": _RECIPIENTS,
    "RejectMessagesFromDLMembers": _RECIPIENTS, "ModeratedBy": _RECIPIENTS,
    "BypassModerationFromSendersOrMembers": _RECIPIENTS, "GrantSendOnBehalfTo": _RECIPIENTS,
    "ModerationEnabled": _BOOL, "SendModerationNotifications": ("Always", "Internal", "Never"),
    "HiddenFromAddressListsEnabled": _BOOL, "RequireSenderAuthenticationEnabled": _BOOL,
    "MemberJoinRestriction": _JOIN, "MemberDepartRestriction": ("Open", "Closed"),
    "ReportToManagerEnabled": _BOOL, "ReportToOriginatorEnabled": _BOOL, "SendOofMessageToOriginatorEnabled": _BOOL,
    "BypassNestedModerationEnabled": _BOOL, "MailTip": _TEXT, "Description": _TEXT, "Notes": _TEXT,
    "SimpleDisplayName": _TEXT, "PhoneticDisplayName": _TEXT, "MaxSendSize": _TEXT, "MaxReceiveSize": _TEXT,
    **{f"CustomAttribute{i}": _TEXT for i in range(1, 16)},
    **{f"ExtensionCustomAttribute{i}": _ADDRESSES for i in range(1, 6)},
}
SET_MAIL_CONTACT_PARAMETERS: dict[str, _Kind | tuple[str, ...]] = {
    "Name": _TEXT, "DisplayName": _TEXT, "Alias": "alias", "ExternalEmailAddress": "proxy",
    "PrimarySmtpAddress": _SMTP, "EmailAddresses": _ADDRESSES, "EmailAddressPolicyEnabled": _BOOL,
    "HiddenFromAddressListsEnabled": _BOOL, "RequireSenderAuthenticationEnabled": _BOOL,
    "AcceptMessagesOnlyFromSendersOrMembers": _RECIPIENTS, "RejectMessagesFromSendersOrMembers": _RECIPIENTS,
    "ModeratedBy": _RECIPIENTS, "ModerationEnabled": _BOOL, "MailTip": _TEXT,
    **{f"CustomAttribute{i}": _TEXT for i in range(1, 16)},
    **{f"ExtensionCustomAttribute{i}": _ADDRESSES for i in range(1, 6)},
}
SET_DYNAMIC_DISTRIBUTION_GROUP_PARAMETERS: dict[str, _Kind | tuple[str, ...]] = {
    "Name": _TEXT, "DisplayName": _TEXT, "Alias": "alias", "PrimarySmtpAddress": _SMTP, "EmailAddresses": _ADDRESSES,
    "RecipientFilter": "opath", "RecipientContainer": "dn", "ManagedBy": _RECIPIENTS,
    "AcceptMessagesOnlyFromSendersOrMembers": _RECIPIENTS, "RejectMessagesFromSendersOrMembers": _RECIPIENTS,
    "ModeratedBy": _RECIPIENTS, "ModerationEnabled": _BOOL, "HiddenFromAddressListsEnabled": _BOOL,
    "RequireSenderAuthenticationEnabled": _BOOL, "EmailAddressPolicyEnabled": _BOOL, "MailTip": _TEXT,
    "Notes": _TEXT, **{f"CustomAttribute{i}": _TEXT for i in range(1, 16)},
}


def _typed_changes(cmdlet: str, schema: Mapping[str, _Kind | tuple[str, ...]], changes: Mapping[str, Any],
                   *, allow_null: bool) -> dict[str, Any]:
    """Changes for a Set-* cmdlet checked against its schema; ``None`` clears where the transport can."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        kind = schema.get(name)
        if kind is None:
            raise InvalidParameter(
                f"{cmdlet}: the portal does not change {name!r} (allowed: {', '.join(sorted(schema))})")
        what = f"{cmdlet} -{name}"
        if value is None:
            if kind == _BOOL or isinstance(kind, tuple):
                raise InvalidParameter(f"{what} cannot be cleared")
            out[name] = None if allow_null else ([] if kind in (_ADDRESSES, _RECIPIENTS) else "")
            continue
        if isinstance(kind, tuple):
            if value not in kind:
                raise InvalidParameter(f"{what} must be one of {', '.join(kind)}, not {value!r}")
            out[name] = value
        elif kind == _BOOL:
            if not isinstance(value, bool):
                raise InvalidParameter(f"{what} must be True or False")
            out[name] = value
        elif kind == _INT:
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidParameter(f"{what} must be a whole number")
            out[name] = value
        elif kind == _TEXT:
            if not isinstance(value, str):
                raise InvalidParameter(f"{what} must be text")
            out[name] = _check_text(value, what)
        elif kind == "alias":
            out[name] = alias_value(value)
        elif kind == _SMTP:
            out[name] = smtp_address(value)
        elif kind == "proxy":
            out[name] = proxy_address(value) if ":" in str(value) else smtp_address(value)
        elif kind == "dn":
            out[name] = _dn(value, what)
        elif kind == "opath":
            if not isinstance(value, OpathFilter):
                raise InvalidFilter(f"{what} must be an OpathFilter built with the opath_* helpers")
            out[name] = value
        elif kind == _ADDRESSES:
            if isinstance(value, MultiValuedUpdate):
                if name == "EmailAddresses":
                    for item in (*value.add, *value.remove):
                        proxy_address(item)
                out[name] = value
            else:
                if isinstance(value, str):
                    raise InvalidParameter(f"{what} must be a list")
                out[name] = [proxy_address(v) if name == "EmailAddresses" else _check_text(v, what) for v in value]
        elif kind == _RECIPIENTS:
            if isinstance(value, MultiValuedUpdate):
                out[name] = value
            else:
                out[name] = _identities(value, what)
    return out


def _dn(value: str, what: str) -> str:
    try:
        return str(parse_dn(value))
    except InvalidDn as exc:
        raise InvalidParameter(f"{what}: {exc}") from None


# --------------------------------------------------------------------------------------------
# results


def _text(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, dict):  # an object rendered with its name
        value = value.get("Name") or value.get("DisplayName") or value.get("ToString")
    return str(value)


def _texts(doc: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = doc.get(key)
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if v is not None and v != "")
    return (str(value),)


def _flag(doc: Mapping[str, Any], key: str) -> bool | None:
    value = doc.get(key)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return bool(value)


@dataclass(frozen=True)
class Recipient:
    """A mail recipient as Exchange shows it (Get-Recipient, group members, dependency searches)."""

    identity: str | None
    guid: str | None
    name: str | None
    display_name: str | None
    alias: str | None
    primary_smtp_address: str | None
    email_addresses: tuple[str, ...]
    recipient_type: str | None
    recipient_type_details: str | None
    external_directory_object_id: str | None
    distinguished_name: str | None
    is_dir_synced: bool | None
    hidden_from_address_lists_enabled: bool | None
    found_by: str | None = None  # the cmdlet that found it (dependency searches)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, found_by: str | None = None) -> Recipient:
        return cls(
            identity=_text(doc, "Identity"),
            guid=_text(doc, "Guid") or _text(doc, "ExchangeObjectId"),
            name=_text(doc, "Name"),
            display_name=_text(doc, "DisplayName"),
            alias=_text(doc, "Alias"),
            primary_smtp_address=_text(doc, "PrimarySmtpAddress"),
            email_addresses=_texts(doc, "EmailAddresses"),
            recipient_type=_text(doc, "RecipientType"),
            recipient_type_details=_text(doc, "RecipientTypeDetails"),
            external_directory_object_id=_text(doc, "ExternalDirectoryObjectId"),
            distinguished_name=_text(doc, "DistinguishedName"),
            is_dir_synced=_flag(doc, "IsDirSynced"),
            hidden_from_address_lists_enabled=_flag(doc, "HiddenFromAddressListsEnabled"),
            found_by=found_by,
            raw=dict(doc),
        )


@dataclass(frozen=True)
class DistributionGroup:
    """A distribution group with the properties a DL migration copies, checks and restores."""

    identity: str | None
    guid: str | None
    name: str | None
    display_name: str | None
    alias: str | None
    primary_smtp_address: str | None
    email_addresses: tuple[str, ...]
    recipient_type_details: str | None
    group_type: str | None
    external_directory_object_id: str | None
    distinguished_name: str | None
    legacy_exchange_dn: str | None
    managed_by: tuple[str, ...]
    accept_messages_only_from_senders_or_members: tuple[str, ...]
    reject_messages_from_senders_or_members: tuple[str, ...]
    moderated_by: tuple[str, ...]
    bypass_moderation_from_senders_or_members: tuple[str, ...]
    grant_send_on_behalf_to: tuple[str, ...]
    moderation_enabled: bool | None
    is_dir_synced: bool | None
    hidden_from_address_lists_enabled: bool | None
    require_sender_authentication_enabled: bool | None
    member_join_restriction: str | None
    member_depart_restriction: str | None
    custom_attributes: Mapping[int, str]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DistributionGroup:
        return cls(
            identity=_text(doc, "Identity"),
            guid=_text(doc, "Guid") or _text(doc, "ExchangeObjectId"),
            name=_text(doc, "Name"),
            display_name=_text(doc, "DisplayName"),
            alias=_text(doc, "Alias"),
            primary_smtp_address=_text(doc, "PrimarySmtpAddress"),
            email_addresses=_texts(doc, "EmailAddresses"),
            recipient_type_details=_text(doc, "RecipientTypeDetails"),
            group_type=_text(doc, "GroupType"),
            external_directory_object_id=_text(doc, "ExternalDirectoryObjectId"),
            distinguished_name=_text(doc, "DistinguishedName"),
            legacy_exchange_dn=_text(doc, "LegacyExchangeDN"),
            managed_by=_texts(doc, "ManagedBy"),
            accept_messages_only_from_senders_or_members=_texts(doc, "AcceptMessagesOnlyFromSendersOrMembers"),
            reject_messages_from_senders_or_members=_texts(doc, "RejectMessagesFromSendersOrMembers"),
            moderated_by=_texts(doc, "ModeratedBy"),
            bypass_moderation_from_senders_or_members=_texts(doc, "BypassModerationFromSendersOrMembers"),
            grant_send_on_behalf_to=_texts(doc, "GrantSendOnBehalfTo"),
            moderation_enabled=_flag(doc, "ModerationEnabled"),
            is_dir_synced=_flag(doc, "IsDirSynced"),
            hidden_from_address_lists_enabled=_flag(doc, "HiddenFromAddressListsEnabled"),
            require_sender_authentication_enabled=_flag(doc, "RequireSenderAuthenticationEnabled"),
            member_join_restriction=_text(doc, "MemberJoinRestriction"),
            member_depart_restriction=_text(doc, "MemberDepartRestriction"),
            custom_attributes={
                i: str(doc[f"CustomAttribute{i}"]) for i in range(1, 16) if doc.get(f"CustomAttribute{i}")},
            raw=dict(doc),
        )


@dataclass(frozen=True)
class DynamicDistributionGroup:
    identity: str | None
    guid: str | None
    name: str | None
    display_name: str | None
    alias: str | None
    primary_smtp_address: str | None
    email_addresses: tuple[str, ...]
    recipient_filter: str | None
    recipient_container: str | None
    distinguished_name: str | None
    managed_by: tuple[str, ...]
    hidden_from_address_lists_enabled: bool | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DynamicDistributionGroup:
        return cls(
            identity=_text(doc, "Identity"),
            guid=_text(doc, "Guid"),
            name=_text(doc, "Name"),
            display_name=_text(doc, "DisplayName"),
            alias=_text(doc, "Alias"),
            primary_smtp_address=_text(doc, "PrimarySmtpAddress"),
            email_addresses=_texts(doc, "EmailAddresses"),
            recipient_filter=_text(doc, "RecipientFilter"),
            recipient_container=_text(doc, "RecipientContainer"),
            distinguished_name=_text(doc, "DistinguishedName"),
            managed_by=_texts(doc, "ManagedBy"),
            hidden_from_address_lists_enabled=_flag(doc, "HiddenFromAddressListsEnabled"),
            raw=dict(doc),
        )


@dataclass(frozen=True)
class AcceptedDomain:
    name: str | None
    domain_name: str | None
    domain_type: str | None  # Authoritative, InternalRelay, ExternalRelay
    default: bool | None
    initial: bool | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AcceptedDomain:
        return cls(_text(doc, "Name"), _text(doc, "DomainName"), _text(doc, "DomainType"), _flag(doc, "Default"),
                   _flag(doc, "InitialDomain"), dict(doc))


@dataclass(frozen=True)
class OutboundConnector:
    name: str | None
    enabled: bool | None
    connector_type: str | None  # OnPremises, Partner
    smart_hosts: tuple[str, ...]
    recipient_domains: tuple[str, ...]
    use_mx_record: bool | None
    is_transport_rule_scoped: bool | None
    tls_settings: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> OutboundConnector:
        return cls(_text(doc, "Name"), _flag(doc, "Enabled"), _text(doc, "ConnectorType"), _texts(doc, "SmartHosts"),
                   _texts(doc, "RecipientDomains"), _flag(doc, "UseMXRecord"), _flag(doc, "IsTransportRuleScoped"),
                   _text(doc, "TlsSettings"), dict(doc))


@dataclass(frozen=True)
class RecipientPermission:
    identity: str | None
    trustee: str | None
    access_control_type: str | None
    access_rights: tuple[str, ...]
    is_inherited: bool | None

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> RecipientPermission:
        return cls(_text(doc, "Identity"), _text(doc, "Trustee"), _text(doc, "AccessControlType"),
                   _texts(doc, "AccessRights"), _flag(doc, "IsInherited"))


# Which cmdlets can filter on which link property (dependency searches).
_ALL_RECIPIENT_GETS = ("Get-Mailbox", "Get-MailUser", "Get-MailContact", "Get-DistributionGroup")
# Which cmdlets can filter on which link property (dependency searches).
DEPENDENCY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "ManagedBy": ("Get-DistributionGroup",),
    "AcceptMessagesOnlyFromSendersOrMembers": _ALL_RECIPIENT_GETS,
    "RejectMessagesFromSendersOrMembers": _ALL_RECIPIENT_GETS,
    "ModeratedBy": _ALL_RECIPIENT_GETS,
    "BypassModerationFromSendersOrMembers": _ALL_RECIPIENT_GETS,
    "GrantSendOnBehalfTo": _ALL_RECIPIENT_GETS,
    "ForwardingAddress": ("Get-Mailbox",),
    "MemberOfGroup": _ALL_RECIPIENT_GETS,
}


# --------------------------------------------------------------------------------------------
# Exchange Online


@dataclass(frozen=True)
class ExchangeOnlineSettings:
    """How to reach Exchange Online's admin API for one tenant."""

    credentials: AppCredentials
    base_url: str = "https://outlook.office365.com"
    tenant: str | None = None  # URL segment; default credentials.tenant_id (a domain works too)
    organization: str | None = None  # e.g. contoso.onmicrosoft.com: anchors the session like the EXO module
    scope: str = EXCHANGE_SCOPE
    timeout: float = 120.0
    max_retries: int = 4
    max_retry_wait: float = 120.0  # a longer Retry-After ends in Throttled at once
    retry_backoff: float = 1.0  # wait before a retry when the answer has no Retry-After (doubles each time)
    page_size: int = 1000

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must be an absolute URL")
        if self.max_retries < 0 or self.page_size < 1:
            raise ValueError("max_retries must be >= 0 and page_size positive")

    @property
    def invoke_url(self) -> str:
        tenant = quote(self.tenant or self.credentials.tenant_id, safe="")
        return f"{self.base_url.rstrip('/')}/adminapi/beta/{tenant}/InvokeCommand"


def _read_only(cmdlet: str) -> bool:
    return cmdlet.split("-", 1)[0] in ("Get", "Test", "Find", "Search")


class ExchangeOnline:
    """Exchange Online through the admin REST ``InvokeCommand`` endpoint. See the module docstring.

    A synchronous httpx client; safe to share between threads. ``token_source``, ``transport`` and
    ``sleep`` replace msal, the network and waiting (tests).
    """

    def __init__(
        self,
        settings: ExchangeOnlineSettings,
        *,
        token_source: TokenSource | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._tokens = token_source or TokenSource(settings.credentials)
        self._sleep = sleep
        c = settings.credentials
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=c.ca_file) if c.ca_file else True
        args: dict[str, Any] = {
            "timeout": httpx.Timeout(settings.timeout, connect=min(settings.timeout, 15.0)),
            "verify": verify,
            "trust_env": False,  # no environment CA bundle or proxy overriding the settings
        }
        if c.proxy:
            args["proxy"] = c.proxy
        if transport is not None:
            args["transport"] = transport
        self._http = httpx.Client(**args)
        self._allowed_host = urlsplit(settings.base_url).netloc.lower()

    def __enter__(self) -> ExchangeOnline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ---- low level

    def _headers(self, cmdlet: str, *, fresh_token: bool = False) -> dict[str, str]:
        if fresh_token:
            self._tokens.invalidate()
        try:
            token = self._tokens.token(self.settings.scope)
        except TokenError as exc:
            cls = Unreachable if exc.unreachable else Unauthorized
            raise cls(f"{cmdlet}: {exc.message}", cmdlet=cmdlet, code=exc.code, request_id=exc.correlation_id) from None
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
            "X-CmdletName": cmdlet,
            "X-ClientApplication": "DirOpsPortal",
            "Prefer": f"odata.maxpagesize={self.settings.page_size}",
        }
        if self.settings.organization:
            headers["X-AnchorMailbox"] = _APP_ANCHOR + self.settings.organization
        return headers

    def _post(self, url: str, body: Mapping[str, Any], cmdlet: str) -> dict[str, Any]:
        """One POST with the retry policy; returns the JSON answer or raises an ExchangeError."""
        s = self.settings
        if urlsplit(url).netloc.lower() != self._allowed_host:
            raise ExchangeError(f"{cmdlet}: refusing to send the token to {urlsplit(url).netloc}", cmdlet=cmdlet)
        read_only = _read_only(cmdlet)
        attempt = 0
        refreshed = refresh_now = False
        secrets = s.credentials.secrets
        while True:
            attempt += 1
            try:
                response = self._http.post(url, json=body, headers=self._headers(cmdlet, fresh_token=refresh_now))
                refresh_now = False
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError) as exc:
                if attempt <= s.max_retries:
                    self._sleep(s.retry_backoff * 2 ** (attempt - 1))
                    continue
                detail = _scrub(str(exc) or type(exc).__name__, secrets)
                tls = "certificate" in detail.lower() or "ssl" in detail.lower()
                raise Unreachable(f"{cmdlet}: cannot reach {s.base_url}" + (" (TLS failed)" if tls else "")
                                  + f": {detail}", cmdlet=cmdlet) from None
            except httpx.TransportError as exc:
                detail = _scrub(str(exc) or type(exc).__name__, secrets)
                if read_only and attempt <= s.max_retries:
                    self._sleep(s.retry_backoff * 2 ** (attempt - 1))
                    continue
                if read_only:
                    raise Unreachable(f"{cmdlet}: connection to {s.base_url} failed: {detail}", cmdlet=cmdlet) from None
                raise OutcomeUnknown(f"{cmdlet}: the connection broke after the request was sent; re-read before "
                                     f"retrying ({detail})", cmdlet=cmdlet) from None
            status = response.status_code
            if status == 401 and not refreshed:
                refreshed = refresh_now = True  # a cached token the service no longer accepts: get a new one once
                continue
            retry_after = _retry_after(response.headers)
            retryable = status == 429 or (status == 503 and (retry_after is not None or read_only)) or (
                status == 504 and read_only)
            if retryable and attempt <= s.max_retries:
                wait = retry_after if retry_after is not None else s.retry_backoff * 2 ** (attempt - 1)
                if wait <= s.max_retry_wait:
                    self._sleep(wait)
                    continue
            if 200 <= status < 300:
                if not response.content:
                    return {}
                try:
                    doc = response.json()
                except ValueError:
                    raise ExchangeError(f"{cmdlet}: the service answered with something that is not JSON",
                                        cmdlet=cmdlet, status=status) from None
                return doc if isinstance(doc, dict) else {"value": doc}
            raise self._error(cmdlet, response, retry_after)

    def _error(self, cmdlet: str, response: httpx.Response, retry_after: float | None) -> ExchangeError:
        status = response.status_code
        request_id = response.headers.get("request-id") or response.headers.get("x-ms-request-id")
        try:
            doc = response.json() if response.content else {}
        except ValueError:
            doc = {"error": {"message": response.text[:2000]}}
        error = doc.get("error") if isinstance(doc, dict) else None
        error = error if isinstance(error, dict) else {}
        code = error.get("code")
        raw_message = str(error.get("message") or "")
        texts = [raw_message]
        for detail in error.get("details") or ():
            if isinstance(detail, dict):
                texts.append(str(detail.get("message") or ""))
        inner = error.get("innererror") or error.get("innerError") or {}
        if isinstance(inner, dict):
            texts.extend(str(inner.get(k) or "") for k in ("message", "type", "internalexception"))
        exception_type = parse_exception_type(*texts, str(code or ""))
        # The top-level message is often generic ("Error executing cmdlet"); the cmdlet's own text
        # travels in details[].message as "<id>|<exception type>|<text>".
        specific = next((t for t in texts[1:] if t and "|" in t), None) or next((t for t in texts[1:] if t), None)
        message = human_message(specific) if specific else human_message(raw_message)
        secrets = self.settings.credentials.secrets
        message = _scrub(message, secrets)
        kwargs: dict[str, Any] = {"cmdlet": cmdlet, "exception_type": exception_type, "server_message": message,
                                  "status": status, "code": code, "request_id": request_id,
                                  "retry_after": retry_after}
        if status == 429:
            return Throttled(f"{cmdlet}: still throttled after {self.settings.max_retries} retries"
                             + (f" (asked to wait {retry_after:.0f}s)" if retry_after else ""), **kwargs)
        if status == 403 and not response.content:
            return _CmdletNotAvailable(
                f"{cmdlet}: the service answered an empty 403: the cmdlet does not exist or is not in the Exchange "
                "roles assigned to the app", **kwargs)
        cls = classify_error(exception_type, message)
        if cls is ExchangeError:
            if status == 401:
                cls = Unauthorized
            elif status == 403:
                cls = AccessDenied
            elif status == 404 and not exception_type:
                cls = ObjectNotFound
            elif status >= 500:
                cls = ServiceUnavailable
        return cls(f"{cmdlet} failed" + (f": {message}" if message else f" with HTTP {status}"), **kwargs)

    def iter_invoke(self, cmdlet: str, /, **params: Any) -> Iterator[dict[str, Any]]:
        """Run a cmdlet and yield its output objects, following ``@odata.nextLink`` page by page.

        The first page is fetched at the call, so errors surface there.
        """
        checked = check_parameters(cmdlet, params)
        body = {"CmdletInput": {"CmdletName": cmdlet,
                                "Parameters": {k: _json_value(v) for k, v in checked.items()}}}
        first = self._post(self.settings.invoke_url, body, cmdlet)
        return self._follow(first, body, cmdlet)

    def _follow(self, page: dict[str, Any], body: Mapping[str, Any], cmdlet: str) -> Iterator[dict[str, Any]]:
        while True:
            for item in page.get("value") or ():
                if isinstance(item, dict):
                    yield {k: v for k, v in item.items() if not k.startswith("@odata.")}
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            if not str(next_link).startswith(("https://", "http://")):
                next_link = self.settings.base_url.rstrip("/") + "/" + str(next_link).lstrip("/")
            page = self._post(str(next_link), body, cmdlet)

    def invoke(self, cmdlet: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run a cmdlet with validated parameters; every output object (all pages) as dicts."""
        return list(self.iter_invoke(cmdlet, **params))

    # ---- recipients and groups

    def get_recipient(self, identity: str | UUID) -> Recipient:
        found = self.invoke("Get-Recipient", Identity=_identity(identity))
        if not found:
            raise ObjectNotFound(f"Get-Recipient: no recipient {identity}", cmdlet="Get-Recipient")
        return Recipient.from_dict(found[0])

    def iter_recipients(
        self, *, filter: OpathFilter | None = None, recipient_type_details: Sequence[str] = ()  # noqa: A002
    ) -> Iterator[Recipient]:
        params: dict[str, Any] = {"ResultSize": "Unlimited"}
        if filter is not None:
            params["Filter"] = _checked_opath(filter)
        if recipient_type_details:
            params["RecipientTypeDetails"] = [_name(t, "a recipient type", 64) for t in recipient_type_details]
        return (Recipient.from_dict(d) for d in self.iter_invoke("Get-Recipient", **params))

    def get_distribution_group(self, identity: str | UUID) -> DistributionGroup:
        found = self.invoke("Get-DistributionGroup", Identity=_identity(identity))
        if not found:
            raise ObjectNotFound(f"Get-DistributionGroup: no group {identity}", cmdlet="Get-DistributionGroup")
        return DistributionGroup.from_dict(found[0])

    def iter_distribution_groups(self, *, filter: OpathFilter | None = None) -> Iterator[DistributionGroup]:  # noqa: A002
        params: dict[str, Any] = {"ResultSize": "Unlimited"}
        if filter is not None:
            params["Filter"] = _checked_opath(filter)
        return (DistributionGroup.from_dict(d) for d in self.iter_invoke("Get-DistributionGroup", **params))

    def iter_distribution_group_members(self, identity: str | UUID) -> Iterator[Recipient]:
        docs = self.iter_invoke("Get-DistributionGroupMember", Identity=_identity(identity), ResultSize="Unlimited")
        return (Recipient.from_dict(d) for d in docs)

    def get_distribution_group_members(self, identity: str | UUID) -> list[Recipient]:
        return list(self.iter_distribution_group_members(identity))

    def new_distribution_group(
        self,
        *,
        name: str,
        alias: str,
        primary_smtp_address: str,
        display_name: str | None = None,
        managed_by: Sequence[str] = (),
        members: Sequence[str] = (),
        group_type: Literal["Distribution", "Security"] = "Distribution",
        member_join_restriction: Literal["Open", "Closed", "ApprovalRequired"] = "Closed",
        member_depart_restriction: Literal["Open", "Closed"] = "Closed",
        require_sender_authentication_enabled: bool = True,
        notes: str | None = None,
        room_list: bool = False,
        ignore_naming_policy: bool = True,
    ) -> DistributionGroup:
        """Create a cloud-only distribution group; further properties with :meth:`set_distribution_group`."""
        if group_type not in ("Distribution", "Security"):
            raise InvalidParameter(f"group_type must be Distribution or Security, not {group_type!r}")
        if member_join_restriction not in _JOIN or member_depart_restriction not in ("Open", "Closed"):
            raise InvalidParameter("member_join_restriction/member_depart_restriction: unknown value")
        params: dict[str, Any] = {
            "Name": _name(name, "Name", 64),
            "Alias": alias_value(alias),
            "PrimarySmtpAddress": smtp_address(primary_smtp_address),
            "DisplayName": _name(display_name or name, "DisplayName", 256),
            "Type": group_type,
            "MemberJoinRestriction": member_join_restriction,
            "MemberDepartRestriction": member_depart_restriction,
            "RequireSenderAuthenticationEnabled": bool(require_sender_authentication_enabled),
        }
        if managed_by:
            params["ManagedBy"] = _identities(managed_by, "managed_by")
        if members:
            params["Members"] = _identities(members, "members")
        if notes:
            params["Notes"] = _check_text(notes, "Notes")
        if room_list:
            params["RoomList"] = SWITCH
        if ignore_naming_policy:
            params["IgnoreNamingPolicy"] = SWITCH
        created = self.invoke("New-DistributionGroup", **params)
        if created:
            return DistributionGroup.from_dict(created[0])
        return self.get_distribution_group(params["PrimarySmtpAddress"])

    def set_distribution_group(
        self,
        identity: str | UUID,
        *,
        changes: Mapping[str, Any],
        bypass_security_group_manager_check: bool = False,
    ) -> None:
        """Change properties, named as Exchange names them: ``{"ManagedBy": [...], "ModerationEnabled": True}``.

        Only the parameters in :data:`SET_DISTRIBUTION_GROUP_PARAMETERS` are accepted, each checked
        for its kind; ``None`` clears a text or list property.
        """
        params = _typed_changes("Set-DistributionGroup", SET_DISTRIBUTION_GROUP_PARAMETERS, changes, allow_null=True)
        if not params:
            return
        params["Identity"] = _identity(identity)
        if bypass_security_group_manager_check:
            params["BypassSecurityGroupManagerCheck"] = SWITCH
        self.invoke("Set-DistributionGroup", **params)

    def remove_distribution_group(
        self, identity: str | UUID, *, bypass_security_group_manager_check: bool = False
    ) -> None:
        params: dict[str, Any] = {"Identity": _identity(identity), "Confirm": False}
        if bypass_security_group_manager_check:
            params["BypassSecurityGroupManagerCheck"] = SWITCH
        self.invoke("Remove-DistributionGroup", **params)

    def update_distribution_group_member(
        self, identity: str | UUID, *, members: Sequence[str], bypass_security_group_manager_check: bool = False
    ) -> None:
        """Replace the whole member list (Update-DistributionGroupMember)."""
        params: dict[str, Any] = {"Identity": _identity(identity), "Members": _identities(members, "members"),
                                  "Confirm": False}
        if bypass_security_group_manager_check:
            params["BypassSecurityGroupManagerCheck"] = SWITCH
        self.invoke("Update-DistributionGroupMember", **params)

    def add_distribution_group_member(
        self, identity: str | UUID, *, member: str, bypass_security_group_manager_check: bool = False
    ) -> bool:
        """Add one member; False when it already was one."""
        params: dict[str, Any] = {"Identity": _identity(identity), "Member": _identity(member)}
        if bypass_security_group_manager_check:
            params["BypassSecurityGroupManagerCheck"] = SWITCH
        try:
            self.invoke("Add-DistributionGroupMember", **params)
        except MemberAlreadyExists:
            return False
        return True

    def remove_distribution_group_member(
        self, identity: str | UUID, *, member: str, bypass_security_group_manager_check: bool = False
    ) -> bool:
        """Remove one member; False when it was not one."""
        params: dict[str, Any] = {"Identity": _identity(identity), "Member": _identity(member), "Confirm": False}
        if bypass_security_group_manager_check:
            params["BypassSecurityGroupManagerCheck"] = SWITCH
        try:
            self.invoke("Remove-DistributionGroupMember", **params)
        except MemberNotFound:
            return False
        return True

    # ---- organisation

    def get_accepted_domains(self) -> list[AcceptedDomain]:
        return [AcceptedDomain.from_dict(d) for d in self.invoke("Get-AcceptedDomain")]

    def get_outbound_connectors(self) -> list[OutboundConnector]:
        return [OutboundConnector.from_dict(d) for d in self.invoke("Get-OutboundConnector")]

    def get_recipient_permission(
        self, identity: str | UUID, *, trustee: str | None = None, access_rights: str = "SendAs"
    ) -> list[RecipientPermission]:
        params: dict[str, Any] = {"Identity": _identity(identity), "AccessRights": _perm(access_rights)}
        if trustee:
            params["Trustee"] = _identity(trustee)
        return [RecipientPermission.from_dict(d) for d in self.invoke("Get-RecipientPermission", **params)]

    def add_recipient_permission(self, identity: str | UUID, *, trustee: str, access_rights: str = "SendAs") -> None:
        self.invoke("Add-RecipientPermission", Identity=_identity(identity), Trustee=_identity(trustee),
                    AccessRights=_perm(access_rights), Confirm=False)

    def remove_recipient_permission(self, identity: str | UUID, *, trustee: str, access_rights: str = "SendAs") -> None:
        self.invoke("Remove-RecipientPermission", Identity=_identity(identity), Trustee=_identity(trustee),
                    AccessRights=_perm(access_rights), Confirm=False)

    # ---- dependency searches

    def find_recipients_with(self, *, attribute: str, dn_or_id: str) -> list[Recipient]:
        """Every recipient whose ``attribute`` (ManagedBy, ModeratedBy, GrantSendOnBehalfTo, ...) names the object.

        Link properties are filtered by distinguished name, so an identity that is not a DN is
        resolved with Get-Recipient first. Each result says which cmdlet found it.
        """
        cmdlets = DEPENDENCY_ATTRIBUTES.get(attribute)
        if cmdlets is None:
            raise InvalidParameter(f"{attribute!r} is not a dependency attribute "
                                   f"(choose from {', '.join(sorted(DEPENDENCY_ATTRIBUTES))})")
        dn = self._as_dn(dn_or_id)
        flt = opath_eq(attribute, dn)
        seen: set[str] = set()
        out: list[Recipient] = []
        for cmdlet in cmdlets:
            for doc in self.iter_invoke(cmdlet, Filter=flt, ResultSize="Unlimited"):
                recipient = Recipient.from_dict(doc, found_by=cmdlet)
                key = (recipient.guid or recipient.identity or recipient.distinguished_name or "").lower()
                if key and key in seen:
                    continue
                seen.add(key)
                out.append(recipient)
        return out

    def _as_dn(self, dn_or_id: str) -> str:
        if not isinstance(dn_or_id, str) or not dn_or_id.strip():
            raise InvalidParameter("dn_or_id is required")
        if "=" in dn_or_id:
            with contextlib.suppress(InvalidDn):
                return str(parse_dn(dn_or_id))
        recipient = self.get_recipient(dn_or_id)
        if not recipient.distinguished_name:
            raise ExchangeError(f"Get-Recipient {dn_or_id} returned no DistinguishedName to filter on")
        return recipient.distinguished_name

    # ---- connectivity check

    def check(self) -> CloudCheckReport:
        """Token obtained (with Exchange.ManageAsApp), one cheap cmdlet (Get-AcceptedDomain); never raises."""
        s = self.settings
        items: list[CheckItem] = []
        details: dict[str, Any] = {"endpoint": s.invoke_url, "client_id": s.credentials.client_id}
        try:
            access = self._tokens.acquire(s.scope)
        except TokenError as exc:
            items.append(CheckItem("token", False, exc.message))
            return CloudCheckReport(False, "Exchange Online", s.invoke_url, tuple(items), details)
        roles = sorted(str(r) for r in access.claims.get("roles") or ())
        details["roles"] = roles
        details["tenant_id"] = access.claims.get("tid")
        if roles and "Exchange.ManageAsApp" not in roles:
            items.append(CheckItem("token", False, f"token obtained, but the app lacks Exchange.ManageAsApp "
                                                   f"(roles: {', '.join(roles)})"))
        else:
            items.append(CheckItem("token", True,
                                   f"token for {s.scope}" + (f"; roles: {', '.join(roles)}" if roles else "")))
        try:
            domains = self.get_accepted_domains()
            default = next((d.domain_name for d in domains if d.default), None)
            details["default_domain"] = default
            items.append(CheckItem("Get-AcceptedDomain", True,
                                   f"{len(domains)} accepted domain(s)" + (f", default {default}" if default else "")))
        except ExchangeError as exc:
            items.append(CheckItem("Get-AcceptedDomain", False, str(exc)))
        return CloudCheckReport(all(i.ok for i in items), "Exchange Online", s.invoke_url, tuple(items), details)


class _CmdletNotAvailable(UnknownCmdlet, AccessDenied):
    """An empty 403 from InvokeCommand: unknown cmdlet, or one outside the app's roles."""


def _checked_opath(value: Any) -> OpathFilter:
    if not isinstance(value, OpathFilter):
        raise InvalidFilter("filters must be OpathFilter objects built with the opath_* helpers, not text")
    return value


def _perm(access_rights: str) -> str:
    if access_rights not in ("SendAs",):
        raise InvalidParameter(f"access_rights must be SendAs, not {access_rights!r}")
    return access_rights


# --------------------------------------------------------------------------------------------
# PowerShell transports (Exchange on-premises, Entra Connect)


@dataclass(frozen=True)
class PSErrorRecord:
    """One record of a cmdlet's error stream, reduced to what people and code need."""

    message: str
    exception_type: str | None = None
    fully_qualified_error_id: str | None = None
    category: str | None = None
    target: str | None = None


class PowerShellError(Exception):
    """A cmdlet failed or could not be run. ``records`` holds the error stream."""

    def __init__(self, message: str, *, cmdlet: str | None = None, records: Sequence[PSErrorRecord] = (),
                 output: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.cmdlet = cmdlet
        self.records = tuple(records)
        self.output = tuple(output)

    def __str__(self) -> str:
        return self.message

    @property
    def exception_type(self) -> str | None:
        return next((r.exception_type for r in self.records if r.exception_type), None)


class CmdletFailed(PowerShellError):
    """The cmdlet ran and wrote errors (or its pipeline failed)."""


class RemotingUnreachable(PowerShellError):
    """The PowerShell endpoint could not be reached (DNS, TCP, TLS, WinRM fault)."""


class RemotingAuthFailed(PowerShellError):
    """The PowerShell endpoint refused the credentials."""


class RemotingOutcomeUnknown(RemotingUnreachable):
    """The connection broke after a write was sent: it may or may not have been applied."""


class PowerShellTransport(Protocol):
    """Runs one cmdlet with named parameters; returns its output objects as dicts.

    Implementations never build script text: the cmdlet and each parameter travel separately.
    Errors raise :class:`PowerShellError` subclasses.
    """

    endpoint: str

    def run(self, cmdlet: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


# Exchange types whose value is their string form (ADObjectId, addresses, sizes...).
_SCALAR_TYPE_NAMES = frozenset({
    "ADObjectId", "SmtpAddress", "ProxyAddress", "SmtpProxyAddress", "X500ProxyAddress", "CustomProxyAddress",
    "ProxyAddressTemplate", "ByteQuantifiedSize", "EnhancedTimeSpan", "OrganizationId", "ExchangeObjectVersion",
    "SecurityIdentifier", "Fqdn", "SmtpDomain", "SmtpDomainWithSubdomains", "RecipientIdParameter", "Version",
    "ADObjectIdWithString", "SmtpX509Identifier", "TimeSpan", "Uri", "Unlimited",
})


def _type_short(name: str) -> str:
    name = name.removeprefix("Deserialized.")
    name = name.split("`", 1)[0].split("[", 1)[0]
    return name.rsplit(".", 1)[-1]


def ps_to_python(value: Any, *, depth: int = 0) -> Any:
    """A deserialized PSRP value as plain Python (dicts, lists, text, numbers, datetimes)."""
    from pypsrp.complex_objects import ComplexObject, GenericComplexObject

    if depth > 8:
        return str(value)
    if value is None or isinstance(value, (str, bool, int, float, datetime, bytes)):
        return value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (list, tuple, set)):
        return [ps_to_python(v, depth=depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): ps_to_python(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, GenericComplexObject):
        types = [_type_short(t) for t in value.types or ()]
        named = {**value.adapted_properties, **value.extended_properties}
        if "Enum" in types and value.to_string is not None:
            return value.to_string
        if any(t in _SCALAR_TYPE_NAMES for t in types) and value.to_string is not None:
            return value.to_string
        if not named and value.property_sets:
            inner = value.property_sets[0] if len(value.property_sets) == 1 else value.property_sets
            if isinstance(inner, list) or value.to_string is None:
                return ps_to_python(inner, depth=depth + 1)
            return value.to_string
        if named:
            return {str(k): ps_to_python(v, depth=depth + 1) for k, v in named.items()}
        return value.to_string
    if isinstance(value, ComplexObject):
        return str(value)
    return str(value)


def _psrp_value(value: Any) -> Any:
    """A checked parameter value as pypsrp serializes it; SWITCH becomes a value-less parameter."""
    if isinstance(value, OpathFilter):
        return str(value)
    if isinstance(value, MultiValuedUpdate):
        table: dict[str, Any] = {}
        if value.add:
            table["Add"] = list(value.add)
        if value.remove:
            table["Remove"] = list(value.remove)
        return table
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, list):
        return [_psrp_value(v) for v in value]
    return value


@dataclass(frozen=True)
class PsrpSettings:
    """A WinRM/PSRP endpoint: Exchange (``https://<server>/PowerShell``, Microsoft.Exchange) or a
    Windows server with the ADSync module (``https://<server>:5986/wsman``, Microsoft.PowerShell).

    ``auth``: kerberos (the process's ticket; needs pyspnego's Kerberos extras), ntlm, negotiate,
    credssp, basic or certificate. The password never appears in repr() or an error message.
    """

    server: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    auth: Literal["kerberos", "ntlm", "negotiate", "credssp", "basic", "certificate"] = "kerberos"
    port: int | None = None
    path: str = "wsman"
    ssl: bool = True
    configuration_name: str = "Microsoft.PowerShell"
    ca_file: str | None = None
    cert_validation: bool = True
    certificate_pem: str | None = None  # auth=certificate: paths of the client certificate and key
    certificate_key_pem: str | None = None
    operation_timeout: int = 60
    connection_timeout: int = 30
    read_timeout: int = 120
    reconnection_retries: int = 2
    encryption: Literal["auto", "always", "never"] = "auto"

    def __post_init__(self) -> None:
        if not self.server:
            raise ValueError("server is required")
        if self.read_timeout <= self.operation_timeout:
            raise ValueError("read_timeout must be longer than operation_timeout")
        if self.auth in ("ntlm", "credssp", "basic") and not (self.username and self.password):
            raise ValueError(f"auth={self.auth} needs username and password")

    @classmethod
    def exchange(cls, server: str, **kwargs: Any) -> PsrpSettings:
        """Exchange on-premises remote PowerShell: ``https://<server>/PowerShell``, Microsoft.Exchange."""
        kwargs.setdefault("path", "PowerShell")
        kwargs.setdefault("port", 443 if kwargs.get("ssl", True) else 80)
        kwargs.setdefault("configuration_name", "Microsoft.Exchange")
        return cls(server=server, **kwargs)

    @property
    def endpoint(self) -> str:
        port = self.port or (5986 if self.ssl else 5985)
        return f"{'https' if self.ssl else 'http'}://{self.server}:{port}/{self.path.lstrip('/')}"


class PsrpTransport:
    """Runs cmdlets over PSRP (pypsrp): one runspace pool, opened on first use and reused.

    Each call adds the cmdlet with ``add_cmdlet`` and each parameter with ``add_parameter``; no
    script text is ever built. Calls are serialised (one pool, one pipeline at a time).
    """

    def __init__(self, settings: PsrpSettings) -> None:
        self.settings = settings
        self.endpoint = settings.endpoint
        self._pool: Any = None
        self._lock = threading.Lock()

    def _secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.settings.password,) if s)

    def _clean(self, exc: BaseException) -> str:
        return _scrub(f"{type(exc).__name__}: {exc}", self._secrets())

    def _open(self) -> Any:
        from pypsrp.powershell import RunspacePool
        from pypsrp.wsman import WSMan

        s = self.settings
        kwargs: dict[str, Any] = {}
        if s.auth == "certificate":
            kwargs.update(certificate_pem=s.certificate_pem, certificate_key_pem=s.certificate_key_pem)
        cert_validation: bool | str = s.ca_file if (s.ca_file and s.cert_validation) else s.cert_validation
        wsman = WSMan(
            s.server, port=s.port, path=s.path, ssl=s.ssl, username=s.username, password=s.password, auth=s.auth,
            cert_validation=cert_validation,  # a path here is not overridden by REQUESTS_CA_BUNDLE
            operation_timeout=s.operation_timeout, connection_timeout=s.connection_timeout,
            read_timeout=s.read_timeout, reconnection_retries=s.reconnection_retries, encryption=s.encryption,
            no_proxy=True, **kwargs,
        )
        pool = RunspacePool(wsman, configuration_name=s.configuration_name)
        pool.open()
        return pool

    def _pool_or_open(self, cmdlet: str) -> Any:
        if self._pool is None:
            try:
                self._pool = self._open()
            except Exception as exc:  # noqa: BLE001 - every failure leaves as a PowerShellError
                raise self._transport_error(cmdlet, exc, sent=False) from None
        return self._pool

    def _transport_error(self, cmdlet: str, exc: BaseException, *, sent: bool) -> PowerShellError:
        from pypsrp.exceptions import AuthenticationError, WinRMTransportError

        detail = self._clean(exc)
        where = f"{self.endpoint} ({self.settings.configuration_name})"
        if isinstance(exc, AuthenticationError) or (isinstance(exc, WinRMTransportError) and exc.code == 401):
            return RemotingAuthFailed(f"{cmdlet}: {where} refused the credentials of "
                                      f"{self.settings.username or 'this process'}: {detail}", cmdlet=cmdlet)
        if sent:
            return RemotingOutcomeUnknown(f"{cmdlet}: the connection to {where} broke after the command was sent; "
                                          f"re-read before retrying ({detail})", cmdlet=cmdlet)
        return RemotingUnreachable(f"{cmdlet}: cannot reach {where}: {detail}", cmdlet=cmdlet)

    def run(self, cmdlet: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        from pypsrp.powershell import PowerShell

        checked = check_parameters(cmdlet, parameters)
        for name, value in checked.items():
            if value is None:
                raise InvalidParameter(f"{cmdlet} -{name}: PSRP cannot send $null as a value (it would be a switch); "
                                       "send '' or [] to clear")
        with self._lock:
            for attempt in (1, 2):
                pool = self._pool_or_open(cmdlet)
                ps = PowerShell(pool)
                ps.add_cmdlet(cmdlet)
                for name, value in checked.items():
                    if value is SWITCH:
                        ps.add_parameter(name)
                    else:
                        ps.add_parameter(name, _psrp_value(value))
                try:
                    output = ps.invoke()
                except Exception as exc:  # noqa: BLE001
                    self._discard()
                    if attempt == 1 and _read_only(cmdlet):
                        continue  # a read is safe to repeat on a fresh pool
                    raise self._transport_error(cmdlet, exc, sent=True) from None
                break
        result = [self._as_dict(item) for item in output or ()]
        errors = [self._record(r) for r in getattr(ps.streams, "error", ()) or ()]
        if errors or ps.had_errors:
            if not errors:
                errors = [PSErrorRecord(message=f"{cmdlet} failed (pipeline state {ps.state})")]
            first = errors[0]
            raise CmdletFailed(f"{cmdlet} failed: {first.message}", cmdlet=cmdlet, records=errors, output=result)
        return result

    def _as_dict(self, item: Any) -> dict[str, Any]:
        value = ps_to_python(item)
        return value if isinstance(value, dict) else {"Value": value}

    def _record(self, record: Any) -> PSErrorRecord:
        message = _scrub(str(record) if record is not None else "", self._secrets())
        exception = getattr(record, "exception", None)
        exception_types = [_type_short(t) for t in getattr(exception, "types", None) or ()]
        exception_type = next((t for t in exception_types if t.endswith("Exception") and t not in _GENERIC_EXCEPTIONS),
                              None)
        fq = getattr(record, "fq_error", None)
        reason = getattr(record, "reason", None)
        exception_type = exception_type or (reason if reason and reason.endswith("Exception") else None) \
            or parse_exception_type(fq, message)
        target = getattr(record, "target_name", None)
        return PSErrorRecord(message=human_message(message) or message, exception_type=exception_type,
                             fully_qualified_error_id=fq, category=reason, target=target)

    def _discard(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.close()

    def close(self) -> None:
        with self._lock:
            self._discard()


class LabPowerShellTransport:
    """The lab's PowerShell-shaped endpoint: POST ``{"cmdlet", "parameters"}`` as JSON over HTTPS
    with HTTP Basic credentials, answered with ``{"output": [...], "errors": [...]}``.

    Same validation as the PSRP transport; 429/503 answers are retried after their ``Retry-After``
    (bounded), as pypsrp's HTTP layer retries them.
    """

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = url
        self._secrets = tuple(s for s in (password,) if s)
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
        args: dict[str, Any] = {"timeout": httpx.Timeout(timeout, connect=min(timeout, 15.0)), "verify": verify,
                                "trust_env": False}
        if username is not None:
            args["auth"] = httpx.BasicAuth(username, password or "")
        if transport is not None:
            args["transport"] = transport
        self._http = httpx.Client(**args)
        self._username = username
        self._max_retries = max_retries
        self._max_retry_wait = max_retry_wait
        self._sleep = sleep

    def run(self, cmdlet: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        checked = check_parameters(cmdlet, parameters)
        body = {"cmdlet": cmdlet, "parameters": {k: _json_value(v) for k, v in checked.items()}}
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.post(self.endpoint, json=body, headers={"Accept": "application/json"})
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise RemotingUnreachable(f"{cmdlet}: cannot reach {self.endpoint}: {_scrub(str(exc), self._secrets)}",
                                          cmdlet=cmdlet) from None
            except httpx.TransportError as exc:
                cls = RemotingUnreachable if _read_only(cmdlet) else RemotingOutcomeUnknown
                raise cls(f"{cmdlet}: connection to {self.endpoint} broke: {_scrub(str(exc), self._secrets)}",
                          cmdlet=cmdlet) from None
            if response.status_code in (429, 503) and attempt <= self._max_retries:
                wait = _retry_after(response.headers)
                wait = 2.0 ** (attempt - 1) if wait is None else wait
                if wait <= self._max_retry_wait:
                    self._sleep(wait)
                    continue
            break
        if response.status_code in (401, 403):
            raise RemotingAuthFailed(f"{cmdlet}: {self.endpoint} refused the credentials of "
                                     f"{self._username or 'this client'} (HTTP {response.status_code})", cmdlet=cmdlet)
        try:
            doc = response.json()
        except ValueError:
            raise RemotingUnreachable(f"{cmdlet}: {self.endpoint} answered HTTP {response.status_code} without JSON",
                                      cmdlet=cmdlet) from None
        if not isinstance(doc, dict):
            doc = {"output": doc}
        output = [o if isinstance(o, dict) else {"Value": o} for o in doc.get("output") or ()]
        errors = [self._record(e) for e in doc.get("errors") or ()]
        if not errors and response.status_code >= 400:
            message = doc.get("error") or doc.get("message") or doc.get("detail") or f"HTTP {response.status_code}"
            if isinstance(message, dict):
                message = message.get("message") or json.dumps(message)[:500]
            errors = [PSErrorRecord(message=str(message), exception_type=parse_exception_type(str(message)))]
        if errors:
            if response.status_code in (429, 503):
                raise RemotingUnreachable(f"{cmdlet}: {self.endpoint} stayed busy (HTTP {response.status_code}): "
                                          f"{errors[0].message}", cmdlet=cmdlet, records=errors)
            raise CmdletFailed(f"{cmdlet} failed: {errors[0].message}", cmdlet=cmdlet, records=errors, output=output)
        return output

    def _record(self, error: Any) -> PSErrorRecord:
        if not isinstance(error, dict):
            text = _scrub(str(error), self._secrets)
            return PSErrorRecord(message=human_message(text) or text, exception_type=parse_exception_type(text))
        message = _scrub(str(error.get("message") or error.get("Message") or ""), self._secrets)
        declared = error.get("exception_type") or error.get("exceptionType") or error.get("reason") or ""
        fq = error.get("fq_error_id") or error.get("fully_qualified_error_id") or error.get("FullyQualifiedErrorId")
        exception_type = parse_exception_type(str(declared), str(fq or ""), message)
        return PSErrorRecord(
            message=human_message(message) or message,
            exception_type=exception_type,
            fully_qualified_error_id=str(fq) if fq else None,
            category=error.get("category") or error.get("CategoryInfo"),
            target=error.get("target_name") or error.get("TargetObject") or None,
        )

    def close(self) -> None:
        self._http.close()


# --------------------------------------------------------------------------------------------
# Exchange on-premises


def exchange_error_from(exc: PowerShellError) -> ExchangeError:
    """A PowerShell failure as the ExchangeError subclass its exception type or message calls for."""
    if isinstance(exc, RemotingAuthFailed):
        return Unauthorized(exc.message, cmdlet=exc.cmdlet)
    if isinstance(exc, RemotingOutcomeUnknown):
        return OutcomeUnknown(exc.message, cmdlet=exc.cmdlet)
    if isinstance(exc, RemotingUnreachable):
        return Unreachable(exc.message, cmdlet=exc.cmdlet)
    record = exc.records[0] if exc.records else PSErrorRecord(message=exc.message)
    cls = classify_error(record.exception_type, record.message)
    return cls(exc.message, cmdlet=exc.cmdlet, exception_type=record.exception_type, server_message=record.message)


class ExchangeOnPrem:
    """Exchange on-premises through a :class:`PowerShellTransport` (PSRP in production, the lab's
    endpoint in the lab). Only the cmdlets the portal needs, each with typed, checked parameters.
    """

    def __init__(self, transport: PowerShellTransport) -> None:
        self.transport = transport

    def __enter__(self) -> ExchangeOnPrem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def _run(self, cmdlet: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        try:
            return self.transport.run(cmdlet, params)
        except PowerShellError as exc:
            raise exchange_error_from(exc) from None

    def update_recipient(self, identity: str) -> None:
        """Update-Recipient: let the Recipient Update Service stamp addresses (e.g. after attribute writes)."""
        self._run("Update-Recipient", {"Identity": _identity(identity), "Confirm": False})

    def set_mail_contact(self, identity: str, *, changes: Mapping[str, Any]) -> None:
        params = _typed_changes("Set-MailContact", SET_MAIL_CONTACT_PARAMETERS, changes, allow_null=False)
        if params:
            self._run("Set-MailContact", {"Identity": _identity(identity), **params})

    def get_dynamic_distribution_group(self, identity: str) -> DynamicDistributionGroup:
        found = self._run("Get-DynamicDistributionGroup", {"Identity": _identity(identity)})
        if not found:
            raise ObjectNotFound(f"Get-DynamicDistributionGroup: no group {identity}",
                                 cmdlet="Get-DynamicDistributionGroup")
        return DynamicDistributionGroup.from_dict(found[0])

    def new_dynamic_distribution_group(
        self,
        *,
        name: str,
        alias: str,
        recipient_filter: OpathFilter,
        organizational_unit: str | None = None,
        recipient_container: str | None = None,
        primary_smtp_address: str | None = None,
        display_name: str | None = None,
    ) -> DynamicDistributionGroup:
        """A dynamic DL whose members are ``recipient_filter`` (an OPATH filter) under ``recipient_container``."""
        params: dict[str, Any] = {
            "Name": _name(name, "Name", 64),
            "Alias": alias_value(alias),
            "RecipientFilter": _checked_opath(recipient_filter),
            "DisplayName": _name(display_name or name, "DisplayName", 256),
        }
        if organizational_unit:
            params["OrganizationalUnit"] = _dn(organizational_unit, "OrganizationalUnit")
        if recipient_container:
            params["RecipientContainer"] = _dn(recipient_container, "RecipientContainer")
        if primary_smtp_address:
            params["PrimarySmtpAddress"] = smtp_address(primary_smtp_address)
        created = self._run("New-DynamicDistributionGroup", params)
        if created:
            return DynamicDistributionGroup.from_dict(created[0])
        return self.get_dynamic_distribution_group(params["Alias"])

    def set_dynamic_distribution_group(self, identity: str, *, changes: Mapping[str, Any]) -> None:
        params = _typed_changes("Set-DynamicDistributionGroup", SET_DYNAMIC_DISTRIBUTION_GROUP_PARAMETERS, changes,
                                allow_null=False)
        if params:
            self._run("Set-DynamicDistributionGroup", {"Identity": _identity(identity), **params})

    def remove_dynamic_distribution_group(self, identity: str) -> None:
        self._run("Remove-DynamicDistributionGroup", {"Identity": _identity(identity), "Confirm": False})

    def check(self) -> CloudCheckReport:
        """The endpoint answers and runs one cheap cmdlet (Get-AcceptedDomain); never raises."""
        items: list[CheckItem] = []
        details: dict[str, Any] = {}
        try:
            domains = [AcceptedDomain.from_dict(d) for d in self.transport.run("Get-AcceptedDomain", {})]
            default = next((d.domain_name for d in domains if d.default), None)
            details["default_domain"] = default
            items.append(CheckItem("Get-AcceptedDomain", True,
                                   f"{len(domains)} accepted domain(s)" + (f", default {default}" if default else "")))
        except PowerShellError as exc:
            items.append(CheckItem("Get-AcceptedDomain", False, str(exchange_error_from(exc))))
        except ExchangeError as exc:
            items.append(CheckItem("Get-AcceptedDomain", False, str(exc)))
        return CloudCheckReport(all(i.ok for i in items), "Exchange on-premises", self.transport.endpoint,
                                tuple(items), details)


__all__ = [
    "DEPENDENCY_ATTRIBUTES", "SET_DISTRIBUTION_GROUP_PARAMETERS", "SET_DYNAMIC_DISTRIBUTION_GROUP_PARAMETERS",
    "SET_MAIL_CONTACT_PARAMETERS", "SWITCH", "AcceptedDomain", "AccessDenied", "AddressInUse", "AlreadyExists",
    "AmbiguousObject", "CmdletFailed", "DirSyncedObject", "DistributionGroup", "DynamicDistributionGroup",
    "ExchangeError", "ExchangeOnPrem", "ExchangeOnline", "ExchangeOnlineSettings", "InvalidFilter",
    "InvalidParameter", "LabPowerShellTransport", "MemberAlreadyExists", "MemberNotFound", "MultiValuedUpdate",
    "ObjectNotFound", "OpathFilter", "OutboundConnector", "OutcomeUnknown", "PSErrorRecord", "PowerShellError",
    "PowerShellTransport", "PsrpSettings", "PsrpTransport", "Recipient", "RecipientPermission",
    "RemotingAuthFailed", "RemotingOutcomeUnknown", "RemotingUnreachable", "ServiceUnavailable", "Throttled",
    "Unauthorized", "UnknownCmdlet", "Unreachable", "alias_value", "check_parameters", "classify_error",
    "exchange_error_from", "human_message", "opath_all", "opath_any", "opath_eq", "opath_like", "opath_ne",
    "opath_not", "opath_present", "opath_quote", "parse_exception_type", "proxy_address", "ps_to_python",
    "smtp_address",
]
