"""The vocabulary of the address rules: what a finding is, IdFix's error types and actions, severities."""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Unreadable(str):
    """A value the rules report instead of checking: it carries why it was refused."""

    reason: str

    def __new__(cls, shown: str, reason: str) -> Unreadable:
        obj = super().__new__(cls, shown)
        obj.reason = reason
        return obj


class ErrorType(enum.Flag):
    """IdFix's error types (Settings/Enums.cs, same bit values), so that an IdFix export and ours compare."""

    NONE = 0
    FORMAT = 1
    BLANK = 2
    DUPLICATE = 4
    CHARACTER = 8
    TOP_LEVEL_DOMAIN = 16
    DOMAIN_PART = 32
    LOCAL_PART = 64
    LENGTH = 128

    @property
    def labels(self) -> list[str]:
        """IdFix's names, lowest bit first (``["Character", "LocalPart"]``)."""
        return [_LABELS[flag] for flag in ErrorType if flag and flag in self]


_LABELS = {
    ErrorType.FORMAT: "Format", ErrorType.BLANK: "Blank", ErrorType.DUPLICATE: "Duplicate",
    ErrorType.CHARACTER: "Character", ErrorType.TOP_LEVEL_DOMAIN: "TopLevelDomain",
    ErrorType.DOMAIN_PART: "DomainPart", ErrorType.LOCAL_PART: "LocalPart", ErrorType.LENGTH: "Length",
}


def error_type_from_labels(labels: Iterable[str]) -> ErrorType:
    by_label = {label.lower(): flag for flag, label in _LABELS.items()}
    result = ErrorType.NONE
    for label in labels:
        result |= by_label[label.lower()]
    return result


class Action(enum.StrEnum):
    """IdFix's proposed actions: Edit (write the proposed value), Remove (delete the value; one value of a
    multi-valued attribute), Complete (keep the value as it is: nothing to write, the finding is
    acknowledged). NONE: the admin has to decide (IdFix leaves the action blank for a duplicate)."""

    NONE = ""
    EDIT = "Edit"
    REMOVE = "Remove"
    COMPLETE = "Complete"


class Severity(enum.StrEnum):
    ERROR = "error"  # the export fails or the value is quarantined
    WARNING = "warning"  # the sync succeeds but the cloud will not show what AD says
    INFO = "info"  # by design; explained so nobody opens a support case about it


class Category(enum.StrEnum):
    """Entra Connect Health's sync error categories, predicted before the export happens."""

    DUPLICATE_ATTRIBUTE = "Duplicate Attribute"
    DATA_MISMATCH = "Data Mismatch"
    DATA_VALIDATION_FAILURE = "Data Validation Failure"
    LARGE_ATTRIBUTE = "Large Attribute"
    NONE = ""


class Rule(enum.StrEnum):
    """Which rule raised a finding (stable codes: stored with findings and used by filters)."""

    IDFIX = "idfix"
    DUPLICATE = "duplicate"
    BAD_VALUE = "bad_value"
    MAIL_NOT_PRIMARY = "mail_not_primary"
    X500_ONLY = "x500_only"
    NO_PRIMARY = "no_primary"
    SEVERAL_PRIMARIES = "several_primaries"
    CLOUD_PRIMARY_DIFFERS = "cloud_primary_differs"
    UPN_SECONDARY = "upn_secondary"
    CERTIFICATE_USER_IDS = "certificate_user_ids"
    LARGE_ATTRIBUTE = "large_attribute"
    CLOUD_MANAGED = "cloud_managed"
    EXPORT_ERROR = "export_error"
    SOFT_MATCH = "soft_match"


@dataclass(frozen=True, kw_only=True)
class Fix:
    """A change to one attribute of one object: ``replace`` for a single value (None clears it), or values
    to ``add`` / ``remove`` for a multi-valued attribute. ``target`` says which directory takes it."""

    attribute: str
    replace: str | None = None
    clear: bool = False
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    target: str = "ad"  # "ad", or "exchange_online" for a cloud-managed object or a tenant contact
    identity: str | None = None  # the Entra object id of the recipient an Exchange Online fix changes

    def as_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "replace": self.replace, "clear": self.clear, "add": list(self.add),
                "remove": list(self.remove), "target": self.target, "identity": self.identity}


@dataclass(frozen=True, kw_only=True)
class Finding:
    dn: str
    object_class: str
    attribute: str
    value: str
    rule: Rule
    severity: Severity
    explanation: str
    errors: ErrorType = ErrorType.NONE
    action: Action = Action.NONE
    proposed_value: str | None = None
    category: Category = Category.NONE
    # True where the portal checks more than IdFix's multi-tenant rule set does (said on the page).
    beyond_idfix: bool = False
    fix: Fix | None = None
    # The other holders of a duplicated value: DNs, or "cloud:<objectId>" for a tenant object.
    others: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The shape ``manage.py check_values`` prints."""
        return {
            "dn": self.dn, "object_class": self.object_class, "attribute": self.attribute, "value": self.value,
            "errors": self.errors.labels, "proposed_value": self.proposed_value,
            "proposed_action": str(self.action), "rule": str(self.rule), "severity": str(self.severity),
            "category": str(self.category), "explanation": self.explanation, "beyond_idfix": self.beyond_idfix,
            "others": list(self.others), "fix": self.fix.as_dict() if self.fix else None,
        }


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One on-premises object as the rules see it: attribute name (any case) -> list of string values."""

    dn: str
    object_class: str  # the most specific class: user, group, contact, ...
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The source anchor (base64 of mS-DS-ConsistencyGuid / objectGUID) to recognise its own cloud object.
    anchor: str | None = None

    # values, first and has look the name up themselves (the rules call them dozens of times per object), its
    # lower-cased form from a table: str.lower would build a new string, and hash it, at every call.
    def values(self, name: str) -> tuple[str, ...]:
        return self.attributes.get(_KEYS.get(name) or _key(name), ())

    def first(self, name: str) -> str | None:
        values = self.attributes.get(_KEYS.get(name) or _key(name))
        return values[0] if values else None

    def has(self, name: str) -> bool:
        return bool(self.attributes.get(_KEYS.get(name) or _key(name)))

    @functools.cached_property
    def addresses(self) -> AddressView:
        """The addresses the rules compare (the field-notes cases, ProxyCalc, the soft match, the UPN), read and
        lower-cased once per object instead of once per rule."""
        return _address_view(self)


_KEYS: dict[str, str] = {}


def _key(name: str) -> str:
    key = name.lower()
    if len(_KEYS) < 1024:  # attribute names: a few dozen, whatever the directory
        _KEYS[name] = key
    return key


class SmtpAddress(NamedTuple):
    value: str  # as listed in proxyAddresses: SMTP:… (the primary) or smtp:… (any case but SMTP)
    address: str  # without its prefix
    lower: str  # the address lower-cased: Exchange and Entra ID compare addresses without regard to case
    primary: bool


class AddressView(NamedTuple):
    """An object's readable address values (an :class:`Unreadable` value is left out, as the rules that read
    these leave it out)."""

    mail: str | None  # the first readable mail
    user_principal_name: str | None  # the first readable UPN
    proxy_addresses: tuple[str, ...]  # the readable proxyAddresses, in their order
    smtp: tuple[SmtpAddress, ...]  # those of type SMTP, in their order

    @property
    def primaries(self) -> list[SmtpAddress]:
        return [a for a in self.smtp if a.primary]


_TEXT = {str}
# One view per object and one SmtpAddress per address: built with tuple.__new__, which a NamedTuple's own __new__ (a
# Python function, keywords allowed) only wraps.
_new = tuple.__new__


def _address_view(entry: Entry) -> AddressView:
    attributes = entry.attributes
    proxies = attributes.get("proxyaddresses", ())
    if type(proxies) is not tuple or not {*map(type, proxies)} <= _TEXT:  # (an Unreadable is a str subclass)
        proxies = tuple(v for v in proxies if not isinstance(v, Unreadable))
    smtp = [_new(SmtpAddress, (v, v[5:], v[5:].lower(), v[:5] == "SMTP:")) for v in proxies if v[:5].lower() == "smtp:"]
    return _new(AddressView, (_first_readable(attributes.get("mail")),
                              _first_readable(attributes.get("userprincipalname")), proxies, tuple(smtp)))


def _first_readable(values: tuple[str, ...] | None) -> str | None:
    if not values:
        return None
    if type(values[0]) is str:
        return values[0]
    return next((v for v in values if not isinstance(v, Unreadable)), None)


@dataclass(frozen=True, kw_only=True)
class CloudObject:
    """One object of the tenant as Graph (and Exchange Online) shows it."""

    id: str
    kind: str = "user"  # user, group, contact
    display_name: str = ""
    user_principal_name: str | None = None
    mail: str | None = None
    mail_nickname: str | None = None
    proxy_addresses: tuple[str, ...] = ()
    certificate_user_ids: tuple[str, ...] = ()
    synced: bool = False  # onPremisesSyncEnabled
    immutable_id: str | None = None  # onPremisesImmutableId
    on_premises_dn: str | None = None  # onPremisesDistinguishedName
    # The source of authority moved to the cloud (onPremisesSyncBehavior.isCloudManaged), or a mailbox's
    # Exchange attributes are managed in Exchange Online (IsExchangeCloudManaged).
    cloud_managed: bool = False
    exchange_cloud_managed: bool = False
    # What it is in Exchange Online: "mailbox", "mail_enabled", or None (not a recipient / unknown).
    recipient: str | None = None
    unified: bool = False  # a Microsoft 365 group: lives in the cloud only, never soft-matched
    target_address: str | None = None  # a mail contact's ExternalEmailAddress
