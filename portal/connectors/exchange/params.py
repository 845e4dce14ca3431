"""Cmdlet parameters: names and values checked before they leave, typed values for the Set-* cmdlets."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from ..ad.dn import parse_dn
from ..ad.errors import InvalidDn
from .errors import InvalidFilter, InvalidParameter
from .opath import OpathFilter, _check_text


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


ScalarValue = str | bool | int | float | UUID | datetime | date
ParamValue = ScalarValue | Sequence[ScalarValue] | MultiValuedUpdate | _Switch | OpathFilter | None


def _read_only(cmdlet: str) -> bool:
    return cmdlet.split("-", 1)[0] in ("Get", "Test", "Find", "Search")


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
SET_MAILBOX_PARAMETERS: dict[str, _Kind | tuple[str, ...]] = {
    "DisplayName": _TEXT, "Alias": "alias", "PrimarySmtpAddress": _SMTP, "WindowsEmailAddress": _SMTP,
    "EmailAddresses": _ADDRESSES, "HiddenFromAddressListsEnabled": _BOOL, "IsExchangeCloudManaged": _BOOL,
    **{f"CustomAttribute{i}": _TEXT for i in range(1, 16)},
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
