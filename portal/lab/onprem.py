"""The rehearsal lab's Exchange on-premises: the runner behind the lab cloud's ``/powershell/exchange-onprem``.

The lab cloud (``portal/lab/cloud/connect.py``) hands every call of that endpoint to ``run(cmdlet,
parameters)``, named to the service as ``portal.lab.onprem:run``, and returns what it gives back as
the pypsrp-shaped answer ``{"output": [...], "errors": [...], "warnings": [...]}``. Exchange
on-premises keeps its recipients in Active Directory, so every cmdlet here reads and writes the
lab's Samba AD DC through the portal's own AD connector (``portal/connectors/ad/``); nothing is
kept anywhere else. The AD address and password come from the Django settings via
``portal.connectors.registry``, configured on the first call (the runner lives in the lab cloud
process, which has no Django of its own).

Cmdlets (parameters as on learn.microsoft.com; the lab's subset is listed in ``_CMDLETS``):

- ``Get-AcceptedDomain [-Identity]``: the on-premises organisation's domains (``layout.py``).
- ``Get-Recipient [-Identity] [-Filter] [-OrganizationalUnit] [-ResultSize]``.
- ``Update-Recipient -Identity``: stamps what the Recipient Update Service would (legacyExchangeDN,
  a primary SMTP address from ``mail``, the recipient type values) where they are missing.
- ``Set-MailContact``, ``Set-DistributionGroup``, ``Set-DynamicDistributionGroup``: addresses,
  alias, names, hiding, custom attributes; the dynamic group's filter and container.
- ``New-``, ``Get-``, ``Remove-DynamicDistributionGroup``.

Errors are error records shaped as app.py's own (``exception_type``, ``message``, ``fq_error_id``,
``category``, ...), with the .NET types and wording Exchange uses where they are known; where the
wording could not be confirmed the comment says so. A parameter the real cmdlet has but the lab
does not implement is refused with a NotSupportedException naming it, never ignored.

Filters: ``-RecipientFilter``/``-Filter`` are OPATH; they are parsed here and translated to an
LDAP filter with the connector's filter helpers (no filter text is assembled by hand). The lab's
Exchange schema has no msExchQueryFilter, so the OPATH text is not stored: ``RecipientFilter`` is
rendered back from the stored LDAP filter (msExchDynamicDLFilter), in Exchange's normal form with
every statement in parentheses.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from portal.connectors import ad
from portal.connectors.ad import ActiveDirectory, AdError, DirectoryObject, Filter
from portal.lab import layout

# --------------------------------------------------------------------------------------------
# errors


class CmdletError(Exception):
    """A cmdlet failure as Exchange reports it: the .NET exception type and its message."""

    def __init__(self, exception: str, message: str, *, category: str = "NotSpecified", target: str = "",
                 fq_error_id: str | None = None) -> None:
        super().__init__(message)
        self.exception = exception
        self.message = message
        self.category = category
        self.target = target
        self.fq_error_id = fq_error_id


_NOT_FOUND = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
_AMBIGUOUS = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException"
_BINDING = "System.Management.Automation.ParameterBindingException"
_TRANSFORMATION = "System.Management.Automation.ParameterBindingArgumentTransformationException"
_DATA_VALIDATION = "Microsoft.Exchange.Data.DataValidationException"
# The message is Exchange's ErrorProxyAddressAlreadyExists string; the namespace of the type was not
# confirmed (public scripts name Microsoft.Exchange.Data.* variants), the short name is certain.
_PROXY_EXISTS = "Microsoft.Exchange.Data.Directory.ProxyAddressExistsException"
_ALREADY_EXISTS = "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"
_AD_OPERATION = "Microsoft.Exchange.Data.Directory.ADOperationException"
_AD_TRANSIENT = "Microsoft.Exchange.Data.Directory.ADTransientException"
_INVALID_OPERATION = "System.InvalidOperationException"

_ALIAS_RULE = (
    "Valid values are: Strings formed with characters from A to Z (uppercase or lowercase), digits from 0 to 9, !, "
    "#, $, %, &, ', *, +, -, /, =, ?, ^, _, `, {, |, } or ~. One or more periods may be embedded in an alias, but "
    "each period should be preceded and followed by at least one of the other characters."
)
_MORE_RESULTS = ("There are more results available than are currently displayed. To view them, increase the value "
                 "for the ResultSize parameter.")


def _parameter_not_found(name: str) -> CmdletError:
    return CmdletError(_BINDING, f"A parameter cannot be found that matches parameter name '{name}'.",
                       category="InvalidArgument", fq_error_id="NamedParameterNotFound")


def _conversion(parameter: str, value: Any, target_type: str, detail: str = "") -> CmdletError:
    extra = f' Error: "{detail}"' if detail else ""
    return CmdletError(_TRANSFORMATION, f"Cannot process argument transformation on parameter '{parameter}'. Cannot "
                       f'convert value "{value}" to type "{target_type}".{extra}', category="InvalidData",
                       fq_error_id="ParameterArgumentTransformationError")


def _bad_smtp(parameter: str, value: Any) -> CmdletError:
    return _conversion(parameter, value, "Microsoft.Exchange.Data.SmtpAddress",
                       f'The email address "{value}" isn\'t correct. Please use this format: user name, the @ sign, '
                       "followed by the domain name. For example, tonysmith@contoso.com or tony.smith@contoso.com.")


def _parameter_set() -> CmdletError:
    return CmdletError(_BINDING, "Parameter set cannot be resolved using the specified named parameters.",
                       category="InvalidArgument", fq_error_id="AmbiguousParameterSet")


def _filter_error(parameter: str, text: str, detail: str) -> CmdletError:
    # Exchange's wording around its OPATH parser (as quoted in Microsoft Q&A threads).
    return CmdletError(_BINDING, f"Cannot bind parameter '{parameter}' to the target. Exception setting "
                       f'"{parameter}": "{detail}"', category="InvalidArgument",
                       fq_error_id="ParameterBindingFailed", target=text)


def _not_implemented(cmdlet: str, what: str) -> CmdletError:
    # Lab wording: the real cmdlet has this parameter or form, the lab does not emulate it.
    return CmdletError("System.NotSupportedException",
                       f"{cmdlet}: the rehearsal lab's Exchange does not implement {what}.",
                       category="NotImplemented")


# --------------------------------------------------------------------------------------------
# Exchange's recipient types

# msExchRecipientTypeDetails values (Exchange 2013+; the seed writes the same numbers).
RECIPIENT_TYPE_DETAILS: dict[str, int] = {
    "UserMailbox": 1, "LinkedMailbox": 2, "SharedMailbox": 4, "LegacyMailbox": 8, "RoomMailbox": 16,
    "EquipmentMailbox": 32, "MailContact": 64, "MailUser": 128, "MailUniversalDistributionGroup": 256,
    "MailNonUniversalGroup": 512, "MailUniversalSecurityGroup": 1024, "DynamicDistributionGroup": 2048,
    "PublicFolder": 4096, "SystemAttendantMailbox": 8192, "SystemMailbox": 16384, "MailForestContact": 32768,
    "User": 65536, "Contact": 131072, "UniversalDistributionGroup": 262144, "UniversalSecurityGroup": 524288,
    "NonUniversalGroup": 1048576, "DisabledUser": 2097152, "MicrosoftExchange": 4194304,
    "ArbitrationMailbox": 8388608, "MailboxPlan": 16777216, "LinkedUser": 33554432, "RoomList": 268435456,
    "DiscoveryMailbox": 536870912, "RoleGroup": 1073741824, "RemoteUserMailbox": 2147483648,
    "Computer": 4294967296, "RemoteRoomMailbox": 8589934592, "RemoteEquipmentMailbox": 17179869184,
    "RemoteSharedMailbox": 34359738368,
}
_DETAILS_BY_VALUE = {value: name for name, value in RECIPIENT_TYPE_DETAILS.items()}
# RecipientType -> the RecipientTypeDetails it covers (mail-enabled types only: Get-Recipient's world).
RECIPIENT_TYPES: dict[str, frozenset[str]] = {
    "UserMailbox": frozenset({"UserMailbox", "LinkedMailbox", "SharedMailbox", "LegacyMailbox", "RoomMailbox",
                              "EquipmentMailbox", "ArbitrationMailbox", "DiscoveryMailbox"}),
    "MailUser": frozenset({"MailUser", "RemoteUserMailbox", "RemoteRoomMailbox", "RemoteEquipmentMailbox",
                           "RemoteSharedMailbox"}),
    "MailContact": frozenset({"MailContact", "MailForestContact"}),
    "MailUniversalDistributionGroup": frozenset({"MailUniversalDistributionGroup", "RoomList"}),
    "MailUniversalSecurityGroup": frozenset({"MailUniversalSecurityGroup"}),
    "MailNonUniversalGroup": frozenset({"MailNonUniversalGroup"}),
    "DynamicDistributionGroup": frozenset({"DynamicDistributionGroup"}),
    "PublicFolder": frozenset({"PublicFolder"}),
}
_TYPE_OF_DETAILS = {details: rtype for rtype, members in RECIPIENT_TYPES.items() for details in members}
# msExchRecipientDisplayType Update-Recipient stamps per RecipientTypeDetails (values as the seed uses).
_DISPLAY_TYPES = {"MailContact": 6, "MailUser": 6, "MailUniversalDistributionGroup": 1,
                  "MailUniversalSecurityGroup": 1073741833, "DynamicDistributionGroup": 3}
# -IncludedRecipients values -> the RecipientTypeDetails each stands for.
INCLUDED_RECIPIENTS: dict[str, frozenset[str]] = {
    "MailboxUsers": RECIPIENT_TYPES["UserMailbox"] - {"RoomMailbox", "EquipmentMailbox"},
    "Resources": frozenset({"RoomMailbox", "EquipmentMailbox"}),
    "MailContacts": RECIPIENT_TYPES["MailContact"],
    "MailGroups": RECIPIENT_TYPES["MailUniversalDistributionGroup"] | RECIPIENT_TYPES["MailUniversalSecurityGroup"]
    | RECIPIENT_TYPES["MailNonUniversalGroup"] | RECIPIENT_TYPES["DynamicDistributionGroup"],
    "MailUsers": RECIPIENT_TYPES["MailUser"],
}
_CONDITIONALS = {"ConditionalDepartment": "Department", "ConditionalCompany": "Company",
                 "ConditionalStateOrProvince": "StateOrProvince",
                 **{f"ConditionalCustomAttribute{i}": f"CustomAttribute{i}" for i in range(1, 16)}}

GROUP_SECURITY_BIT = 0x80000000

# What a recipient read fetches (msExchQueryFilter is absent from the lab schema: see the docstring).
_RECIPIENT_ATTRIBUTES = (
    "objectClass", "objectGUID", "name", "cn", "displayName", "mailNickname", "mail", "proxyAddresses",
    "targetAddress", "legacyExchangeDN", "msExchRecipientTypeDetails", "msExchRecipientDisplayType",
    "msExchHideFromAddressLists", "msExchRequireAuthToSendTo", "groupType", "managedBy", "msExchDynamicDLFilter",
    "msExchDynamicDLBaseDN", "msDS-ExternalDirectoryObjectId", "whenCreated", "whenChanged", "sAMAccountName",
    "userPrincipalName", "description", *(f"extensionAttribute{i}" for i in range(1, 16)),
)

# --------------------------------------------------------------------------------------------
# value checks (every value is checked here before it reaches LDAP)

_SMTP_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_SMTP_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                          r"[A-Za-z0-9])?\Z")
_ALIAS = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00a1-\u00ff]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
                    r"\u00a1-\u00ff]+)*\Z")
_PREFIX = re.compile(r"([A-Za-z0-9]{1,9}):(.+)\Z", re.S)


def _no_controls(value: str) -> bool:
    return not any(ord(ch) < 0x20 or ch == "\x7f" for ch in value)


def is_smtp(value: str) -> bool:
    if not isinstance(value, str) or len(value) > 320 or value.count("@") != 1:
        return False
    local, domain = value.split("@")
    return 0 < len(local) <= 64 and bool(_SMTP_LOCAL.match(local)) and bool(_SMTP_DOMAIN.match(domain))


@dataclass(frozen=True)
class Proxy:
    """One proxy address: ``SMTP:a@b`` (primary), ``smtp:a@b``, ``X500:/o=...``."""

    prefix: str
    address: str

    @property
    def is_smtp(self) -> bool:
        return self.prefix.lower() == "smtp"

    @property
    def is_primary(self) -> bool:
        return self.prefix == "SMTP"

    @property
    def key(self) -> tuple[str, str]:
        return self.prefix.lower(), self.address.lower()

    def __str__(self) -> str:
        # A stored value without a prefix (malformed, but AD holds what it was given) prints as it was.
        return f"{self.prefix}:{self.address}" if self.prefix else self.address

    def as_primary(self, primary: bool) -> Proxy:
        return Proxy("SMTP" if primary else "smtp", self.address) if self.is_smtp else self


def parse_proxy(value: Any, *, parameter: str) -> Proxy:
    """A proxy address given to a cmdlet: no prefix means SMTP (secondary), SMTP parts validated."""
    if not isinstance(value, str) or not value.strip() or not _no_controls(value) or len(value) > 1123:
        raise _conversion(parameter, value, "Microsoft.Exchange.Data.ProxyAddress")
    text = value.strip()
    match = _PREFIX.match(text)
    prefix, address = (match.group(1), match.group(2)) if match else ("smtp", text)
    if prefix.lower() == "smtp":
        if not is_smtp(address):
            raise _bad_smtp(parameter, address)
        prefix = "SMTP" if prefix == "SMTP" else "smtp"
    elif prefix.lower() == "x500" and not address.startswith("/"):
        raise _conversion(parameter, value, "Microsoft.Exchange.Data.ProxyAddress",
                          f'The X500 address "{address}" isn\'t valid.')  # lab wording
    return Proxy(prefix, address)


def stored_proxies(values: Iterable[Any]) -> list[Proxy]:
    """proxyAddresses as AD holds them (data written by anyone: malformed values are kept, not judged)."""
    out: list[Proxy] = []
    for value in values:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        prefix, sep, address = text.partition(":")
        out.append(Proxy(prefix, address) if sep else Proxy("", text))
    return out


def _smtp_value(value: Any, parameter: str) -> str:
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.lower().startswith("smtp:"):
        text = text[5:]
    if not isinstance(text, str) or not is_smtp(text):
        raise _bad_smtp(parameter, value)
    return text


def _alias_value(value: Any, parameter: str = "Alias") -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not _ALIAS.match(value):
        raise CmdletError(_DATA_VALIDATION, f'Property expression "{value}" isn\'t valid. {_ALIAS_RULE}',
                          category="InvalidData", target=str(value))
    return value


def _name_value(value: Any, parameter: str, limit: int = 64) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CmdletError(_BINDING, f"Cannot validate argument on parameter '{parameter}'. The argument is null or "
                          "empty. Provide an argument that is not null or empty, and then try the command again.",
                          category="InvalidData", fq_error_id="ParameterArgumentValidationError")
    if len(value) > limit or not _no_controls(value):
        raise CmdletError(_DATA_VALIDATION, f"The length of the property is too long. The maximum length is {limit} "
                          f"and the length of the value provided is {len(value)}." if len(value) > limit else
                          f"The value of {parameter} contains a control character.",  # second: lab wording
                          category="InvalidData")
    return value.strip()


def _text_value(value: Any, parameter: str, limit: int) -> str | None:
    """A clearable text property: None or '' clears."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _no_controls(value.replace("\r", "").replace("\n", "")):
        raise _conversion(parameter, value, "System.String")
    if len(value) > limit:
        raise CmdletError(_DATA_VALIDATION, f"The length of the property is too long. The maximum length is {limit} "
                          f"and the length of the value provided is {len(value)}.", category="InvalidData")
    return value


def _bool_value(value: Any, parameter: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower().lstrip("$") in {"true", "false", "1", "0"}:
        return value.strip().lower().lstrip("$") in {"true", "1"}
    # PowerShell's wording for a non-Boolean value bound to a Boolean parameter.
    raise CmdletError(_TRANSFORMATION, f"Cannot process argument transformation on parameter '{parameter}'. Cannot "
                      f'convert value "{value}" to type "System.Boolean". Boolean parameters accept only Boolean '
                      "values and numbers, such as $True, $False, 1 or 0.", category="InvalidData",
                      fq_error_id="ParameterArgumentTransformationError")


def _identity_value(value: Any, parameter: str = "Identity") -> str:
    if isinstance(value, dict):  # a piped object: its Identity, DistinguishedName or Guid
        value = value.get("DistinguishedName") or value.get("Guid") or value.get("Identity")
    if isinstance(value, UUID):
        return str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > 1024 or not _no_controls(value):
        raise _conversion(parameter, value, "Microsoft.Exchange.Configuration.Tasks.RecipientIdParameter")
    return value.strip()


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


@dataclass(frozen=True)
class MultiValued:
    """A multi-valued parameter: a list replaces; ``@{Add=...; Remove=...}`` edits."""

    replace: list[Any] | None = None
    add: list[Any] = field(default_factory=list)
    remove: list[Any] = field(default_factory=list)


def _multi_value(value: Any, parameter: str) -> MultiValued:
    if isinstance(value, dict):
        known = {k.lower(): v for k, v in value.items() if not str(k).startswith("@")}
        unknown = set(known) - {"add", "remove"}
        if unknown:
            raise _conversion(parameter, value, "Microsoft.Exchange.Data.MultiValuedProperty",
                              f"The hash table key {sorted(unknown)[0]} isn't Add or Remove.")  # lab wording
        return MultiValued(add=_as_list(known.get("add")), remove=_as_list(known.get("remove")))
    if isinstance(value, str) and "," in value:  # "a,b" as PowerShell's binder splits an unquoted list
        return MultiValued(replace=[v.strip() for v in value.split(",") if v.strip()])
    return MultiValued(replace=_as_list(value))


# --------------------------------------------------------------------------------------------
# DNs and canonical names


def domain_name(base_dn: str) -> str:
    return ".".join(v for rdn in ad.parse_dn(base_dn).rdns for t, v in rdn if t.lower() == "dc")


def canonical_name(dn: str) -> str:
    """``CN=X,OU=Groups,DC=lab,DC=example`` -> ``lab.example/Groups/X`` (how Exchange shows an identity)."""
    rdns = ad.parse_dn(dn).rdns
    domain: list[str] = []
    rest = list(rdns)
    while rest and rest[-1][0][0].lower() == "dc":
        domain.insert(0, rest.pop()[0][1])
    path = [rdn[0][1].replace("/", "\\/") for rdn in reversed(rest)]
    return "/".join([".".join(domain), *path])


def _split_canonical(text: str) -> list[str]:
    parts = re.split(r"(?<!\\)/", text)
    return [p.replace("\\/", "/") for p in parts]


# --------------------------------------------------------------------------------------------
# OPATH: parsed here, translated with the connector's filter helpers


@dataclass(frozen=True)
class OpathTerm:
    prop: str
    op: str  # eq ne like notlike gt ge lt le
    value: Any  # str | bool | None


@dataclass(frozen=True)
class OpathBool:
    op: str  # and | or
    items: tuple[Any, ...]


@dataclass(frozen=True)
class OpathNot:
    item: Any


OpathNode = OpathTerm | OpathBool | OpathNot


@dataclass(frozen=True)
class _Prop:
    name: str
    attribute: str
    kind: str = "text"  # text | proxy | bool | dn | guid | details | rtype


_PROPS: tuple[_Prop, ...] = (
    _Prop("Alias", "mailNickname"), _Prop("Name", "name"), _Prop("DisplayName", "displayName"),
    _Prop("FirstName", "givenName"), _Prop("LastName", "sn"), _Prop("Department", "department"),
    _Prop("Company", "company"), _Prop("Title", "title"), _Prop("Office", "physicalDeliveryOfficeName"),
    _Prop("City", "l"), _Prop("StateOrProvince", "st"), _Prop("PostalCode", "postalCode"), _Prop("Notes", "info"),
    # Exchange keeps mail equal to the primary SMTP address; the first name given for an attribute is
    # the one a stored filter is rendered back with.
    _Prop("PrimarySmtpAddress", "mail"), _Prop("WindowsEmailAddress", "mail"),
    _Prop("EmailAddresses", "proxyAddresses", "proxy"), _Prop("ExternalEmailAddress", "targetAddress", "proxy"),
    _Prop("LegacyExchangeDN", "legacyExchangeDN"), _Prop("UserPrincipalName", "userPrincipalName"),
    _Prop("SamAccountName", "sAMAccountName"), _Prop("ExternalDirectoryObjectId", "msDS-ExternalDirectoryObjectId"),
    *(_Prop(f"CustomAttribute{i}", f"extensionAttribute{i}") for i in range(1, 16)),
    _Prop("HiddenFromAddressListsEnabled", "msExchHideFromAddressLists", "bool"),
    _Prop("RequireSenderAuthenticationEnabled", "msExchRequireAuthToSendTo", "bool"),
    _Prop("DistinguishedName", "distinguishedName", "dn"), _Prop("ManagedBy", "managedBy", "dn"),
    _Prop("MemberOfGroup", "memberOf", "dn"), _Prop("Manager", "manager", "dn"),
    _Prop("Guid", "objectGUID", "guid"), _Prop("RecipientTypeDetails", "msExchRecipientTypeDetails", "details"),
    _Prop("RecipientType", "msExchRecipientTypeDetails", "rtype"), _Prop("ObjectClass", "objectClass"),
)
_PROP_BY_NAME = {p.name.lower(): p for p in _PROPS}
_PROP_BY_ATTRIBUTE: dict[str, _Prop] = {}
for _p in _PROPS:
    if _p.kind != "rtype":
        _PROP_BY_ATTRIBUTE.setdefault(_p.attribute.lower(), _p)
del _p

_OPATH_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\u2018\u2019]|['\u2018\u2019]{2})*'|"(?:[^"]|"")*")
  | (?P<var>\$(?:true|false|null)\b)
  | (?P<op>-(?:and|or|not|eq|ne|like|notlike|gt|ge|lt|le|ieq|ine|ilike|inotlike)\b)
  | (?P<punct>[()])
  | (?P<word>[^\s()'"$]+)
""", re.VERBOSE | re.IGNORECASE)


class OpathError(ValueError):
    pass


def parse_opath(text: str) -> OpathNode:
    """An OPATH filter as a tree. ``-and`` and ``-or`` have equal precedence and group left to right
    (PowerShell's rule); parentheses decide otherwise. Raises OpathError with Exchange's wording."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):  # the script-block form: { ... }
        body = body[1:-1]
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(body):
        match = _OPATH_TOKEN.match(body, pos)
        if not match:
            raise OpathError(_syntax(text, pos))
        if match.lastgroup != "ws":
            tokens.append((match.lastgroup or "", match.group(), pos))
        pos = match.end()
    if not tokens:
        raise OpathError(_syntax(text, 0))
    index = 0

    def peek() -> tuple[str, str, int] | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> tuple[str, str, int]:
        nonlocal index
        if index >= len(tokens):
            raise OpathError(_syntax(text, len(body)))
        index += 1
        return tokens[index - 1]

    def expression() -> OpathNode:
        left = unary()
        while (tok := peek()) and tok[0] == "op" and tok[1].lower() in {"-and", "-or"}:
            take()
            op = tok[1].lower()[1:]
            right = unary()
            items = (*left.items, right) if isinstance(left, OpathBool) and left.op == op else (left, right)
            left = OpathBool(op, items)
        return left

    def unary() -> OpathNode:
        tok = peek()
        if tok and tok[0] == "op" and tok[1].lower() == "-not":
            take()
            return OpathNot(unary())
        return primary()

    def primary() -> OpathNode:
        kind, value, at = take()
        if value == "(":
            inner = expression()
            if take()[1] != ")":
                raise OpathError(_syntax(text, at))
            return inner
        if kind != "word":
            raise OpathError(_syntax(text, at))
        prop = _PROP_BY_NAME.get(value.lower())
        if prop is None:
            raise OpathError(f'"{value}" is not a recognized filterable property. For a description of the '
                             f'filterable properties see the command help.\n"{text}" at position {at + 1}.')
        op_kind, op, op_at = take()
        if op_kind != "op" or op.lower() in {"-and", "-or", "-not"}:
            raise OpathError(_syntax(text, op_at))
        val_kind, raw, val_at = take()
        if val_kind == "str":
            quote = raw[0]
            inner_text = raw[1:-1]
            literal: Any = re.sub(r"(['\u2018\u2019])\1", r"\1", inner_text) if quote != '"' else \
                inner_text.replace('""', '"')
        elif val_kind == "var":
            literal = {"$true": True, "$false": False, "$null": None}[raw.lower()]
        elif val_kind == "word":
            literal = raw
        else:
            raise OpathError(_syntax(text, val_at))
        name = op.lower()[1:]
        name = name[1:] if name.startswith("i") and name != "inotlike" else name
        name = "notlike" if name == "inotlike" else name
        return OpathTerm(prop.name, name, literal)

    tree = expression()
    if index != len(tokens):
        raise OpathError(_syntax(text, tokens[index][2]))
    return tree


def _syntax(text: str, position: int) -> str:
    return ("Invalid filter syntax. For a description of the filter parameter syntax see the command help.\n"
            f'"{text}" at position {position + 1}.')


def render_opath(node: OpathNode) -> str:
    """Exchange's normal form: every statement in parentheses, values quoted with ' doubled."""
    if isinstance(node, OpathTerm):
        return f"({node.prop} -{node.op} {_opath_literal(node.value)})"
    if isinstance(node, OpathNot):
        return f"(-not{render_opath(node.item)})"
    return "(" + f" -{node.op} ".join(render_opath(item) for item in node.items) + ")"


def _opath_literal(value: Any) -> str:
    if value is None:
        return "$null"
    if isinstance(value, bool):
        return "$true" if value else "$false"
    return "'" + re.sub(r"(['\u2018\u2019])", r"\1\1", str(value)) + "'"


def opath_to_ldap(node: OpathNode) -> Filter:
    """The OPATH tree as an LDAP filter, built with the connector's helpers only."""
    if isinstance(node, OpathBool):
        parts = [opath_to_ldap(item) for item in node.items]
        return ad.all_of(*parts) if node.op == "and" else ad.any_of(*parts)
    if isinstance(node, OpathNot):
        return ad.not_(opath_to_ldap(node.item))
    return _term_to_ldap(node)


def _term_to_ldap(term: OpathTerm) -> Filter:
    prop = _PROP_BY_NAME[term.prop.lower()]
    op, value = term.op, term.value
    attr = prop.attribute
    if value is None:
        if op in ("eq", "ne"):
            return ad.not_(ad.present(attr)) if op == "eq" else ad.present(attr)
        raise OpathError(f"The operator -{op} cannot be used with $null.")  # lab wording
    if prop.kind == "bool":
        flag = _opath_bool(value, term.prop)
        if op not in ("eq", "ne"):
            raise OpathError(f"The operator -{op} cannot be used with the Boolean property {term.prop}.")
        positive = flag if op == "eq" else not flag
        # An absent flag reads as $false, as Exchange shows it.
        return ad.eq(attr, True) if positive else ad.not_(ad.eq(attr, True))
    if prop.kind in ("details", "rtype"):
        if op not in ("eq", "ne"):
            raise OpathError(f"The operator -{op} cannot be used with {term.prop}.")
        details = _details_names(str(value), prop)
        flt = ad.any_of(*(ad.eq(attr, RECIPIENT_TYPE_DETAILS[d]) for d in sorted(
            details, key=lambda d: RECIPIENT_TYPE_DETAILS[d])))
        return flt if op == "eq" else ad.not_(flt)
    if prop.kind == "guid":
        if op not in ("eq", "ne"):
            raise OpathError(f"The operator -{op} cannot be used with {term.prop}.")
        try:
            flt = ad.eq(attr, UUID(str(value)))
        except ValueError:
            raise OpathError(f'"{value}" is not a GUID.') from None  # lab wording
        return flt if op == "eq" else ad.not_(flt)
    if prop.kind == "dn":
        if op not in ("eq", "ne"):
            raise OpathError(f"The operator -{op} cannot be used with {term.prop}.")
        try:
            flt = ad.eq(attr, ad.parse_dn(str(value)))
        except ad.InvalidDn as exc:
            raise OpathError(f"{term.prop}: {exc.message}") from None
        return flt if op == "eq" else ad.not_(flt)
    text = str(value)
    if not _no_controls(text):
        raise OpathError(f"The value for {term.prop} contains a control character.")  # lab wording
    if op in ("like", "notlike"):
        flt = _like(attr, text, prop)
        return flt if op == "like" else ad.not_(flt)
    if prop.kind == "proxy" and not _PREFIX.match(text):
        text = f"smtp:{text}"  # AD compares proxy addresses case-insensitively
    if op == "eq":
        return ad.eq(attr, text)
    if op == "ne":
        return ad.not_(ad.eq(attr, text))
    if op == "ge":
        return ad.ge(attr, text)
    if op == "le":
        return ad.le(attr, text)
    if op == "gt":
        return ad.all_of(ad.ge(attr, text), ad.not_(ad.eq(attr, text)))
    return ad.all_of(ad.le(attr, text), ad.not_(ad.eq(attr, text)))


def _like(attr: str, pattern: str, prop: _Prop) -> Filter:
    parts = pattern.split("*")
    if len(parts) == 1:
        return ad.eq(attr, pattern)
    if all(p == "" for p in parts):
        return ad.present(attr)
    if len(parts) == 2 and parts[1] == "":
        return ad.starts_with(attr, parts[0])
    if len(parts) == 2 and parts[0] == "":
        return ad.ends_with(attr, parts[1])
    if len(parts) == 3 and parts[0] == "" and parts[2] == "":
        return ad.contains(attr, parts[1])
    # The connector has no general substring helper; the lab refuses rather than approximating.
    raise OpathError(f"The rehearsal lab supports '*' only at the start and/or end of a -like value, not in "
                     f"'{pattern}' ({prop.name}).")


def _opath_bool(value: Any, prop: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower().lstrip("$") in ("true", "false"):
        return value.lower().lstrip("$") == "true"
    raise OpathError(f'The value "{value}" of {prop} is not $true or $false.')  # lab wording


def _details_names(value: str, prop: _Prop) -> frozenset[str]:
    lowered = value.lower()
    if prop.kind == "rtype":
        for name, members in RECIPIENT_TYPES.items():
            if name.lower() == lowered:
                return members
        raise OpathError(f'"{value}" is not a valid RecipientType value.')  # lab wording
    for name in RECIPIENT_TYPE_DETAILS:
        if name.lower() == lowered:
            return frozenset({name})
    raise OpathError(f'"{value}" is not a valid RecipientTypeDetails value.')  # lab wording


# ---- the stored LDAP filter, rendered back as OPATH


class _Unrenderable(ValueError):
    """A stored LDAP filter with a part OPATH cannot express; RecipientFilter stays empty."""


def _parse_ldap(text: str) -> Any:
    """RFC 4515 text as a tree of tuples (reading what the directory holds, never building filters)."""
    position = 0

    def node() -> Any:
        nonlocal position
        if position >= len(text) or text[position] != "(":
            raise _Unrenderable(text)
        position += 1
        head = text[position] if position < len(text) else ""
        if head in "&|":
            position += 1
            items = []
            while position < len(text) and text[position] == "(":
                items.append(node())
            _close()
            return ("and" if head == "&" else "or", items)
        if head == "!":
            position += 1
            item = node()
            _close()
            return ("not", item)
        end = text.find(")", position)
        if end < 0:
            raise _Unrenderable(text)
        item = text[position:end]
        position = end + 1
        return _item(item)

    def _close() -> None:
        nonlocal position
        if position >= len(text) or text[position] != ")":
            raise _Unrenderable(text)
        position += 1

    tree = node()
    if position != len(text):
        raise _Unrenderable(text)
    return tree


def _item(item: str) -> Any:
    match = re.match(r"([A-Za-z0-9.;-]+)(>=|<=|~=|=)(.*)\Z", item, re.S)
    if not match or ":" in match.group(1):
        raise _Unrenderable(item)
    attr, op, raw = match.group(1).split(";")[0], match.group(2), match.group(3)
    if op == "~=":
        raise _Unrenderable(item)
    if op in (">=", "<="):
        return ("ge" if op == ">=" else "le", attr, _unescape(raw))
    if raw == "*":
        return ("present", attr)
    if "*" in raw:
        return ("sub", attr, [_unescape(p) for p in raw.split("*")])
    return ("eq", attr, _unescape(raw))


def _unescape(raw: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == "\\" and re.fullmatch(r"[0-9A-Fa-f]{2}", raw[i + 1:i + 3]):
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out += raw[i].encode()
            i += 1
    return bytes(out)


def ldap_to_opath(text: str) -> OpathNode:
    """The OPATH tree a stored LDAP filter stands for; _Unrenderable when some part has no OPATH form."""
    return _to_opath(_parse_ldap(text))


def _to_opath(tree: Any) -> OpathNode:
    kind = tree[0]
    if kind in ("and", "or"):
        items = [_to_opath(t) for t in tree[1]]
        if not items:
            raise _Unrenderable(kind)
        if kind == "or":
            rtype = _as_recipient_type(tree[1])
            if rtype is not None:
                return rtype
        return items[0] if len(items) == 1 else OpathBool(kind, tuple(items))
    if kind == "not":
        inner = tree[1]
        if inner[0] == "present":
            return OpathTerm(_prop_for(inner[1]).name, "eq", None)
        if inner[0] in ("eq", "sub"):
            positive = _to_opath(inner)
            if not isinstance(positive, OpathTerm):
                return OpathNot(positive)
            prop = _PROP_BY_NAME[positive.prop.lower()]
            if prop.kind == "bool" and positive.value is True:
                return OpathTerm(positive.prop, "eq", False)
            return OpathTerm(positive.prop, "ne" if positive.op == "eq" else "notlike", positive.value)
        if inner[0] == "or":
            rtype = _as_recipient_type(inner[1])
            if rtype is not None:
                return OpathTerm(rtype.prop, "ne", rtype.value)
        return OpathNot(_to_opath(inner))
    prop = _prop_for(tree[1])
    if kind == "present":
        return OpathTerm(prop.name, "ne", None)
    if kind == "sub":
        return OpathTerm(prop.name, "like", "*".join(_decoded(p, prop) for p in tree[2]))
    value = _decoded(tree[2], prop)
    if prop.kind == "details":
        try:
            value = _DETAILS_BY_VALUE[int(value)]
        except (ValueError, KeyError):
            raise _Unrenderable(value) from None
    elif prop.kind == "bool":
        value = value.upper() == "TRUE"
    return OpathTerm(prop.name, kind, value)


def _prop_for(attr: str) -> _Prop:
    prop = _PROP_BY_ATTRIBUTE.get(attr.lower())
    if prop is None:
        raise _Unrenderable(attr)
    return prop


def _decoded(raw: bytes, prop: _Prop) -> str:
    if prop.kind == "guid":
        if len(raw) != 16:
            raise _Unrenderable(prop.name)
        return str(UUID(bytes_le=raw))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Unrenderable(prop.name) from None


def _as_recipient_type(items: Sequence[Any]) -> OpathTerm | None:
    """``(|(msExchRecipientTypeDetails=a)(...=b))`` covering exactly one RecipientType, as written for it."""
    values: set[str] = set()
    for item in items:
        if item[0] != "eq" or item[1].lower() != "msexchrecipienttypedetails":
            return None
        try:
            values.add(_DETAILS_BY_VALUE[int(item[2].decode())])
        except (ValueError, KeyError):
            return None
    for name, members in RECIPIENT_TYPES.items():
        if len(members) > 1 and values == set(members):
            return OpathTerm("RecipientType", "eq", name)
    return None


# --------------------------------------------------------------------------------------------
# the directory side

_setup_lock = threading.Lock()
_server_names: dict[str, str] = {}


def _ensure_django() -> None:
    """The lab cloud process has no Django: configure it on the first call (settings say where the lab AD is)."""
    with _setup_lock:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
        from django.apps import apps

        if not apps.ready:
            import django

            django.setup()


@dataclass
class _Session:
    """One cmdlet call: a connection to the lab AD and where things are."""

    directory: ActiveDirectory
    base_dn: str
    server: str = ""

    # ---- errors that name the server

    def not_found(self, identity: str) -> CmdletError:
        return CmdletError(_NOT_FOUND, f"The operation couldn't be performed because object '{identity}' couldn't be "
                           f"found on '{self.server}'.", target=identity)

    def ambiguous(self, identity: str) -> CmdletError:
        return CmdletError(_AMBIGUOUS, f"The operation couldn't be performed because '{identity}' matches multiple "
                           "entries.", target=identity)

    # ---- identities

    def resolve(self, identity: str, *, kinds: Iterable[str], shown: str | None = None) -> DirectoryObject:
        """A recipient by GUID, DN, canonical name, name, alias, email/proxy address, LegacyExchangeDN,
        sAMAccountName or UPN (RecipientIdParameter's forms); only mail-enabled objects are recipients."""
        wanted = set(kinds)
        shown = shown or identity
        candidate = self._by_reference(identity)
        if candidate is not None:
            if candidate.kind in wanted and candidate.first("mailNickname"):
                return candidate
            raise self.not_found(shown)
        terms = [ad.eq(a, identity) for a in ("name", "mailNickname", "sAMAccountName")]
        if "@" in identity:
            proxy = identity if _PREFIX.match(identity) else f"smtp:{identity}"
            terms += [ad.eq("proxyAddresses", proxy), ad.eq("userPrincipalName", identity)]
            if not _PREFIX.match(identity):
                terms.append(ad.eq("mail", identity))
        elif _PREFIX.match(identity):
            terms.append(ad.eq("proxyAddresses", identity))
        if identity.lower().startswith("/o="):
            terms.append(ad.eq("legacyExchangeDN", identity))
        flt = ad.all_of(ad.kind_filter(wanted), ad.present("mailNickname"), ad.any_of(*terms))
        found = list(self.directory.search(filter=flt, base=self.base_dn, attributes=_RECIPIENT_ATTRIBUTES, limit=2))
        if not found:
            raise self.not_found(shown)
        if len(found) > 1:
            raise self.ambiguous(shown)
        return found[0]

    def _by_reference(self, identity: str) -> DirectoryObject | None:
        """GUID, DN or canonical name: None when the text is none of those forms."""
        text = identity.strip("{}") if identity.startswith("{") else identity
        try:
            guid = UUID(text)
        except ValueError:
            guid = None
        try:
            if guid is not None and len(text) in (32, 36):
                return self.directory.read_by_guid(guid, attributes=_RECIPIENT_ATTRIBUTES)
            if "=" in identity:
                try:
                    dn = ad.parse_dn(identity)
                except ad.InvalidDn:
                    return None
                # '=' is also legal in an alias: only a DN inside this domain is taken as one.
                if not dn.is_within(self.base_dn):
                    return None
                return self.directory.read(str(dn), attributes=_RECIPIENT_ATTRIBUTES)
            dn_text = self.dn_from_canonical(identity)
            if dn_text is not None:
                return self.directory.read(dn_text, attributes=_RECIPIENT_ATTRIBUTES)
        except ad.NotFound:
            raise self.not_found(identity) from None
        return None

    def dn_from_canonical(self, text: str) -> str | None:
        """``lab.example/Contoso/Synced`` -> its DN (each step an OU or a container), or None."""
        if "/" not in text:
            return None
        parts = _split_canonical(text)
        if parts[0].lower() != domain_name(self.base_dn).lower() or any(not p for p in parts[1:]):
            return None
        current = self.base_dn
        for part in parts[1:]:
            for attr in ("OU", "CN"):
                child = ad.child_dn(current, attr, part)
                if self.directory.exists(child):
                    current = child
                    break
            else:
                raise self.not_found(text)
        return current

    def organizational_unit(self, value: Any, parameter: str) -> str:
        """OrganizationalUnitIdParameter: DN, canonical name, GUID or name of an OU, container or the domain."""
        text = _identity_value(value, parameter)
        obj: DirectoryObject | None = None
        try:
            if "=" in text:
                try:
                    dn = ad.parse_dn(text)
                except ad.InvalidDn as exc:
                    raise _conversion(parameter, text, "Microsoft.Exchange.Configuration.Tasks."
                                      "OrganizationalUnitIdParameter", exc.message) from None
                obj = self.directory.read(str(dn), attributes=["objectClass"])
            elif (dn_text := self.dn_from_canonical(text)) is not None:
                obj = self.directory.read(dn_text, attributes=["objectClass"])
            elif text.lower() == domain_name(self.base_dn).lower():
                obj = self.directory.read(self.base_dn, attributes=["objectClass"])
            else:
                try:
                    obj = self.directory.read_by_guid(UUID(text.strip("{}")), attributes=["objectClass"])
                except ValueError:
                    flt = ad.all_of(ad.object_class("organizationalUnit"), ad.eq("ou", text))
                    found = list(self.directory.search(filter=flt, base=self.base_dn, attributes=["objectClass"],
                                                       limit=2))
                    if len(found) > 1:
                        raise self.ambiguous(text) from None
                    obj = found[0] if found else None
        except ad.NotFound:
            obj = None
        if obj is None or not any(obj.has_class(c) for c in ("organizationalUnit", "container", "domainDNS",
                                                             "builtinDomain")):
            raise self.not_found(text)
        return str(ad.parse_dn(obj.dn))

    # ---- addresses

    def check_addresses_free(self, proxies: Iterable[Proxy], *, owner_dn: str | None) -> None:
        """Exchange refuses an address another object holds as a proxy address (or an X500 one as its
        LegacyExchangeDN)."""
        for proxy in proxies:
            if proxy.is_smtp:
                flt = ad.eq("proxyAddresses", f"smtp:{proxy.address}")
            elif proxy.prefix.lower() == "x500":
                flt = ad.any_of(ad.eq("proxyAddresses", str(proxy)), ad.eq("legacyExchangeDN", proxy.address))
            else:
                flt = ad.eq("proxyAddresses", str(proxy))
            for holder in self.directory.search(filter=flt, base=self.base_dn, attributes=["objectClass"], limit=2):
                if owner_dn is not None and ad.same_dn(holder.dn, owner_dn):
                    continue
                raise CmdletError(_PROXY_EXISTS, f'The proxy address "{proxy}" is already being used by the proxy '
                                  f'addresses or LegacyExchangeDN of "{canonical_name(holder.dn)}". Please choose '
                                  "another proxy address.", target=str(proxy))

    def legacy_dn(self, alias: str) -> str:
        return (f"/o={layout.EXCHANGE_ORG}/ou={layout.ADMIN_GROUP}/cn=Recipients/cn={uuid.uuid4().hex}-"
                f"{alias[:11]}")


# --------------------------------------------------------------------------------------------
# recipients as Exchange shows them


def _details(obj: DirectoryObject) -> str | None:
    value = obj.first("msExchRecipientTypeDetails")
    if value is not None:
        try:
            return _DETAILS_BY_VALUE.get(int(value), str(value))
        except ValueError:
            return str(value)
    return _inferred_details(obj)


def _inferred_details(obj: DirectoryObject) -> str | None:
    """What Exchange would make of a mail-enabled object nobody stamped yet (Update-Recipient stamps it)."""
    kind = obj.kind
    if kind == "contact":
        return "MailContact"
    if kind == "dynamic-dl":
        return "DynamicDistributionGroup"
    if kind == "group":
        group_type = int(obj.first("groupType", "0") or 0)
        return "MailUniversalSecurityGroup" if group_type & GROUP_SECURITY_BIT else "MailUniversalDistributionGroup"
    if kind == "user" and obj.first("targetAddress"):
        return "MailUser"
    return None


def _primary(proxies: Sequence[Proxy], obj: DirectoryObject) -> str:
    primary = next((p.address for p in proxies if p.is_primary), None)
    return primary or obj.first("mail") or ""


def _when(value: Any) -> str | None:
    if not value:
        return None
    try:
        moment = datetime.strptime(str(value).split(".")[0].rstrip("Z"), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def _flag(obj: DirectoryObject, attribute: str) -> bool:
    return str(obj.first(attribute, "")).upper() == "TRUE"


def render_recipient(obj: DirectoryObject) -> dict[str, Any]:
    """A recipient with the properties Exchange on-premises shows (PascalCase, as PSRP deserializes them)."""
    proxies = stored_proxies(obj.get("proxyAddresses"))
    details = _details(obj)
    name = obj.first("name") or obj.first("cn") or ad.parse_dn(obj.dn).rdn_value
    identity = canonical_name(obj.dn)
    doc: dict[str, Any] = {
        "Name": name,
        "DisplayName": obj.first("displayName") or name,
        "Alias": obj.first("mailNickname"),
        "Identity": identity,
        "Id": identity,
        "DistinguishedName": obj.dn,
        "Guid": str(obj.guid) if obj.guid else None,
        "OrganizationalUnit": canonical_name(str(ad.parse_dn(obj.dn).parent)),
        "PrimarySmtpAddress": _primary(proxies, obj),
        "WindowsEmailAddress": obj.first("mail") or "",
        "EmailAddresses": [str(p) for p in proxies],
        "RecipientType": _TYPE_OF_DETAILS.get(details or "", details),
        "RecipientTypeDetails": details,
        "LegacyExchangeDN": obj.first("legacyExchangeDN") or "",
        "HiddenFromAddressListsEnabled": _flag(obj, "msExchHideFromAddressLists"),
        "RequireSenderAuthenticationEnabled": _flag(obj, "msExchRequireAuthToSendTo"),
        "ExternalDirectoryObjectId": obj.first("msDS-ExternalDirectoryObjectId") or "",
        # On-premises objects are the source, never synchronized into Exchange on-premises.
        "IsDirSynced": False,
        "EmailAddressPolicyEnabled": False,
        "ObjectClass": list(obj.object_classes),
        "WhenCreatedUTC": _when(obj.first("whenCreated")),
        "WhenChangedUTC": _when(obj.first("whenChanged")),
    }
    for i in range(1, 16):
        doc[f"CustomAttribute{i}"] = obj.first(f"extensionAttribute{i}") or ""
    if obj.kind in ("contact", "user"):
        doc["ExternalEmailAddress"] = obj.first("targetAddress") or None
    if obj.kind == "user":
        doc["UserPrincipalName"] = obj.first("userPrincipalName") or ""
        doc["SamAccountName"] = obj.first("sAMAccountName") or ""
    if obj.kind in ("group", "dynamic-dl"):
        doc["ManagedBy"] = [canonical_name(v) for v in obj.get("managedBy")]
    if obj.kind == "group":
        group_type = int(obj.first("groupType", "0") or 0)
        doc["GroupType"] = "Universal, SecurityEnabled" if group_type & GROUP_SECURITY_BIT else "Universal"
        doc["SamAccountName"] = obj.first("sAMAccountName") or ""
    if obj.kind == "dynamic-dl":
        doc.update(_filter_view(obj))
    return doc


def _filter_view(obj: DirectoryObject) -> dict[str, Any]:
    ldap_text = obj.first("msExchDynamicDLFilter") or ""
    base = obj.first("msExchDynamicDLBaseDN")
    try:
        opath = render_opath(ldap_to_opath(ldap_text)) if ldap_text else ""
        filter_type = "Custom"
    except _Unrenderable:
        # Exchange shows a filter it cannot express in OPATH (an Exchange 2003 one) as Legacy.
        opath, filter_type = "", "Legacy"
    return {
        "RecipientFilter": opath,
        "LdapRecipientFilter": ldap_text,
        "RecipientFilterType": filter_type,
        "IncludedRecipients": None,
        "RecipientContainer": canonical_name(base) if base else None,
        "ExpansionServer": "",
    }


# --------------------------------------------------------------------------------------------
# binding


_COMMON = frozenset({
    "ErrorAction", "WarningAction", "InformationAction", "ErrorVariable", "WarningVariable", "InformationVariable",
    "OutVariable", "OutBuffer", "PipelineVariable", "Verbose", "Debug", "Confirm", "WhatIf", "DomainController",
})
_CUSTOM = tuple(f"CustomAttribute{i}" for i in range(1, 16))
# Real parameters of these cmdlets the lab does not emulate (refused by name, not as unknown).
_UNSUPPORTED_SET = frozenset({
    "AcceptMessagesOnlyFrom", "AcceptMessagesOnlyFromDLMembers", "AcceptMessagesOnlyFromSendersOrMembers",
    "ArbitrationMailbox", "BypassModerationFromSendersOrMembers", "CreateDTMFMap", "EmailAddressPolicyEnabled",
    *(f"ExtensionCustomAttribute{i}" for i in range(1, 6)), "ForceUpgrade", "GrantSendOnBehalfTo",
    "IgnoreDefaultScope", "MailTip", "MailTipTranslations", "MaxReceiveSize", "MaxSendSize", "ModeratedBy",
    "ModerationEnabled", "RejectMessagesFrom", "RejectMessagesFromDLMembers", "RejectMessagesFromSendersOrMembers",
    "SendModerationNotifications", "SimpleDisplayName", "UMDtmfMap", "WindowsEmailAddress", "PhoneticDisplayName",
    "MacAttachmentFormat", "MessageBodyFormat", "MessageFormat", "UsePreferMessageFormat", "UseMapiRichTextFormat",
    "UserCertificate", "UserSMimeCertificate", "RemovePicture", "RemoveSpokenName", "SecondaryAddress",
    "SecondaryDialPlan", "MaxRecipientPerMessage", "ManagedBy", "Notes", "ReportToManagerEnabled",
    "ReportToOriginatorEnabled", "SendOofMessageToOriginatorEnabled", "ExpansionServer", "ForceMembershipRefresh",
    "IncludedRecipients", "DirectMembershipOnly", "MemberJoinRestriction", "MemberDepartRestriction",
    "BypassNestedModerationEnabled", "BypassSecurityGroupManagerCheck", "Description", "HiddenGroupMembershipEnabled",
    "RoomList", "IgnoreNamingPolicy", *_CONDITIONALS,
})
_UNSUPPORTED_GET = frozenset({"Anr", "Credential", "IgnoreDefaultScope", "ReadFromDomainController", "SortBy",
                              "RecipientType", "RecipientTypeDetails", "PropertySet", "Properties", "ManagedBy",
                              "Database", "Capabilities", "AuthenticationType", "BookmarkDisplayName",
                              "IncludeBookmarkObject", "IncludeSystemObjects", "IncludeManagerWithDisplayName",
                              "IncludeSoftDeletedRecipients", "RecipientPreviewFilter"})
_UNSUPPORTED_NEW_DDL = frozenset({"ArbitrationMailbox", "ModeratedBy", "ModerationEnabled",
                                  "SendModerationNotifications", "DirectMembershipOnly", "Organization",
                                  "OverrideRecipientQuotas"})


@dataclass(frozen=True)
class _Spec:
    name: str
    handler: Callable[[_Session, dict[str, Any]], Any]
    parameters: frozenset[str]
    required: tuple[str, ...] = ()
    unsupported: frozenset[str] = frozenset()
    confirm: bool = False  # destructive: prompts unless -Confirm:$false


def _bind(spec: _Spec, params: Mapping[str, Any]) -> dict[str, Any]:
    """PowerShell's binder, reduced: case-insensitive names, unknown names and repeats refused,
    mandatory parameters required (a remote session cannot prompt for them)."""
    implemented = {p.lower(): p for p in spec.parameters | _COMMON}
    unsupported = {p.lower(): p for p in spec.unsupported}
    bound: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str):
            raise _parameter_not_found(str(key))
        if key.startswith("@"):
            continue
        raw = key.lstrip("-")
        lowered = raw.lower()
        if lowered in unsupported and lowered not in implemented:
            raise _not_implemented(spec.name, f"the -{unsupported[lowered]} parameter")
        name = implemented.get(lowered)
        if name is None:
            raise _parameter_not_found(raw)
        if name in bound:
            raise CmdletError(_BINDING, f"Cannot bind parameter because parameter '{name}' is specified more than "
                              "once. To provide multiple values to parameters that can accept multiple values, use "
                              'the array syntax. For example, "-parameter value1,value2,value3".',
                              category="InvalidArgument", fq_error_id="ParameterAlreadyBound")
        bound[name] = value
    missing = [p for p in spec.required if bound.get(p) in (None, "", [])]
    if missing:
        raise CmdletError(_BINDING, "Cannot process command because of one or more missing mandatory parameters: "
                          f"{' '.join(missing)}.", category="InvalidArgument",
                          fq_error_id="MissingMandatoryParameter")
    return bound


def _result_size(bound: Mapping[str, Any]) -> int | None:
    raw = bound.get("ResultSize")
    if raw is None:
        return 1000
    if isinstance(raw, str) and raw.strip().lower() == "unlimited":
        return None
    try:
        size = int(raw)
    except (TypeError, ValueError):
        raise _conversion("ResultSize", raw, "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]") from None
    if size < 1:
        raise _conversion("ResultSize", raw, "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]")
    return size


def _what_if(bound: Mapping[str, Any]) -> bool:
    return "WhatIf" in bound and _bool_value(bound["WhatIf"] if bound["WhatIf"] is not None else True, "WhatIf")


# --------------------------------------------------------------------------------------------
# the cmdlets


def _get_accepted_domain(session: _Session, bound: dict[str, Any]) -> list[dict[str, Any]]:
    """The on-premises organisation's accepted domains: the tenant's verified custom domains, the old
    legacy.local, and the coexistence (routing) domain the Hybrid Configuration Wizard adds."""
    names = [layout.PRIMARY_DOMAIN, layout.SECONDARY_DOMAIN, layout.NON_ACCEPTED_DOMAIN, layout.ROUTING_DOMAIN]
    config = f"CN=Configuration,{session.base_dn}"
    rows = []
    for name in names:
        rows.append({
            "Name": name, "Identity": name, "DomainName": name, "DomainType": "Authoritative",
            "Default": name == layout.PRIMARY_DOMAIN, "InitialDomain": False, "MatchSubDomains": False,
            "AddressBookEnabled": True, "IsCoexistenceDomain": name == layout.ROUTING_DOMAIN,
            "EmailOnly": False, "ExternallyManaged": False, "PendingRemoval": False, "IsValid": True,
            "Guid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"accepted-domain.{name}")),
            "DistinguishedName": f"CN={name},CN=Accepted Domains,CN=Transport Settings,CN={layout.EXCHANGE_ORG},"
                                 f"CN=Microsoft Exchange,CN=Services,{config}",
        })
    if bound.get("Identity") is not None:
        wanted = _identity_value(bound["Identity"]).lower()
        rows = [r for r in rows if wanted in (r["Name"].lower(), r["Guid"], r["DistinguishedName"].lower())]
        if not rows:
            raise session.not_found(_identity_value(bound["Identity"]))
    return rows


def _recipient_filter(bound: Mapping[str, Any], parameter: str) -> tuple[OpathNode, Filter]:
    text = bound[parameter]
    if not isinstance(text, str) or not text.strip() or not _no_controls(text):
        raise _filter_error(parameter, str(text), _syntax(str(text), 0))
    try:
        tree = parse_opath(text)
        return tree, opath_to_ldap(tree)
    except OpathError as exc:
        raise _filter_error(parameter, text, str(exc)) from None
    except AdError as exc:  # the helpers refuse a value (e.g. a DN they cannot parse)
        raise _filter_error(parameter, text, exc.message) from None


def _list(session: _Session, bound: dict[str, Any], kinds: set[str]) -> tuple[list[dict[str, Any]], list[str]]:
    base = session.organizational_unit(bound["OrganizationalUnit"], "OrganizationalUnit") \
        if bound.get("OrganizationalUnit") is not None else session.base_dn
    parts = [ad.kind_filter(kinds), ad.present("mailNickname")]
    if bound.get("Filter") is not None:
        parts.append(_recipient_filter(bound, "Filter")[1])
    size = _result_size(bound)
    found = list(session.directory.search(filter=ad.all_of(*parts), base=base, attributes=_RECIPIENT_ATTRIBUTES,
                                          limit=None if size is None else size + 1))
    warnings = []
    if size is not None and len(found) > size:
        found = found[:size]
        warnings.append(_MORE_RESULTS)
    return [render_recipient(o) for o in sorted(found, key=lambda o: (o.first("name") or "").lower())], warnings


def _one(session: _Session, bound: dict[str, Any], kinds: Iterable[str]) -> list[dict[str, Any]]:
    """-Identity, narrowed by -OrganizationalUnit and -Filter when given with it."""
    identity = _identity_value(bound["Identity"])
    obj = session.resolve(identity, kinds=kinds)
    if bound.get("OrganizationalUnit") is not None:
        ou = session.organizational_unit(bound["OrganizationalUnit"], "OrganizationalUnit")
        if not ad.parse_dn(obj.dn).is_within(ou):
            raise session.not_found(identity)
    if bound.get("Filter") is not None:
        flt = _recipient_filter(bound, "Filter")[1]
        if next(iter(session.directory.search(filter=flt, base=obj.dn, scope="base", attributes=["1.1"])),
                None) is None:
            raise session.not_found(identity)
    return [render_recipient(obj)]


def _get_recipient(session: _Session, bound: dict[str, Any]) -> Any:
    if bound.get("Identity") is not None:
        return _one(session, bound, ad.RECIPIENT_KINDS)
    return _list(session, bound, set(ad.RECIPIENT_KINDS))


def _get_dynamic_distribution_group(session: _Session, bound: dict[str, Any]) -> Any:
    if bound.get("Identity") is not None:
        return _one(session, bound, {"dynamic-dl"})
    return _list(session, bound, {"dynamic-dl"})


def _update_recipient(session: _Session, bound: dict[str, Any]) -> list[dict[str, Any]]:
    """Stamp what the Recipient Update Service would, only where it is missing: LegacyExchangeDN, a
    primary SMTP address (from mail, a contact's external address, or alias@default domain), mail,
    and the recipient type values."""
    obj = session.resolve(_identity_value(bound["Identity"]), kinds=ad.RECIPIENT_KINDS)
    alias = obj.first("mailNickname")
    replace: dict[str, Any] = {}
    if not obj.first("legacyExchangeDN"):
        replace["legacyExchangeDN"] = session.legacy_dn(alias)
    proxies = stored_proxies(obj.get("proxyAddresses"))
    external = obj.first("targetAddress") or ""
    external_smtp = external[5:] if external.lower().startswith("smtp:") and is_smtp(external[5:]) else None
    added: list[Proxy] = []
    if not any(p.is_primary for p in proxies):
        mail = obj.first("mail")
        wanted = mail if mail and is_smtp(mail) else (external_smtp if obj.kind == "contact" else None)
        wanted = wanted or f"{alias}@{layout.PRIMARY_DOMAIN}"
        existing = next((p for p in proxies if p.is_smtp and p.address.lower() == wanted.lower()), None)
        if existing is not None:
            proxies = [p.as_primary(True) if p is existing else p for p in proxies]
        else:
            added.append(Proxy("SMTP", wanted))
            proxies = [*proxies, Proxy("SMTP", wanted)]
    if obj.kind == "contact" and external_smtp and all(p.key != ("smtp", external_smtp.lower()) for p in proxies):
        # A mail contact's external address is always among its e-mail addresses.
        added.append(Proxy("smtp", external_smtp))
        proxies = [*proxies, Proxy("smtp", external_smtp)]
    if added or [str(p) for p in proxies] != list(obj.get("proxyAddresses")):
        session.check_addresses_free(added, owner_dn=obj.dn)
        replace["proxyAddresses"] = [str(p) for p in proxies]
    primary = next(p.address for p in proxies if p.is_primary)
    if not obj.first("mail"):
        replace["mail"] = primary
    details = _inferred_details(obj) if obj.first("msExchRecipientTypeDetails") is None else None
    if details is not None:
        replace["msExchRecipientTypeDetails"] = RECIPIENT_TYPE_DETAILS[details]
        if obj.first("msExchRecipientDisplayType") is None and details in _DISPLAY_TYPES:
            replace["msExchRecipientDisplayType"] = _DISPLAY_TYPES[details]
    if replace and not _what_if(bound):
        session.directory.modify(obj.dn, replace=replace)
    return []


# ---- Set-* shared parts


@dataclass
class _Changes:
    """A Set-* call's parameter values, converted and checked before anything is read from AD."""

    replace: dict[str, Any] = field(default_factory=dict)  # changes that do not depend on the object
    new_name: str | None = None
    addresses: list[Proxy] | None = None  # -EmailAddresses replacing the list
    add: list[Proxy] = field(default_factory=list)  # -EmailAddresses @{Add=...}
    remove: list[Proxy] = field(default_factory=list)  # -EmailAddresses @{Remove=...}
    primary: str | None = None  # -PrimarySmtpAddress
    external: Proxy | None = None  # -ExternalEmailAddress (mail contacts)
    recipient_filter: Filter | None = None
    touches_addresses: bool = False


def _parse_changes(bound: Mapping[str, Any]) -> _Changes:
    changes = _Changes()
    replace = changes.replace
    if "Alias" in bound:
        replace["mailNickname"] = _alias_value(bound["Alias"])
    if "DisplayName" in bound:
        replace["displayName"] = _name_value(bound["DisplayName"], "DisplayName", 256)
    if "Name" in bound:
        changes.new_name = _name_value(bound["Name"], "Name")
    if "HiddenFromAddressListsEnabled" in bound:
        # An absent flag reads as $false; clearing keeps the directory as Exchange leaves it.
        hidden = _bool_value(bound["HiddenFromAddressListsEnabled"], "HiddenFromAddressListsEnabled")
        replace["msExchHideFromAddressLists"] = True if hidden else None
    if "RequireSenderAuthenticationEnabled" in bound:
        replace["msExchRequireAuthToSendTo"] = _bool_value(bound["RequireSenderAuthenticationEnabled"],
                                                           "RequireSenderAuthenticationEnabled")
    for i, name in enumerate(_CUSTOM, start=1):
        if name in bound:
            replace[f"extensionAttribute{i}"] = _text_value(bound[name], name, 1024)
    if "EmailAddresses" in bound and "PrimarySmtpAddress" in bound:
        # Documented as not allowed together; Exchange's exact wording was not confirmed.
        raise CmdletError(_INVALID_OPERATION, "The EmailAddresses and PrimarySmtpAddress parameters can't be used "
                          "in the same command.", category="InvalidArgument")
    if "EmailAddresses" in bound:
        change = _multi_value(bound["EmailAddresses"], "EmailAddresses")
        if change.replace is not None:
            changes.addresses = _dedupe(parse_proxy(v, parameter="EmailAddresses") for v in change.replace)
            if not any(p.is_smtp for p in changes.addresses):
                raise CmdletError(_DATA_VALIDATION, "The primary SMTP address must be specified.",  # lab wording
                                  category="InvalidData")
            if sum(1 for p in changes.addresses if p.is_primary) > 1:
                raise CmdletError(_DATA_VALIDATION, "The e-mail address list can have only one primary SMTP address "
                                  "(SMTP:).", category="InvalidData")  # lab wording
        else:
            changes.add = [parse_proxy(v, parameter="EmailAddresses") for v in change.add]
            changes.remove = [parse_proxy(v, parameter="EmailAddresses") for v in change.remove]
            if sum(1 for p in changes.add if p.is_primary) > 1:
                raise CmdletError(_DATA_VALIDATION, "The e-mail address list can have only one primary SMTP address "
                                  "(SMTP:).", category="InvalidData")  # lab wording
    if "PrimarySmtpAddress" in bound:
        changes.primary = _smtp_value(bound["PrimarySmtpAddress"], "PrimarySmtpAddress")
    if "ExternalEmailAddress" in bound:
        external = parse_proxy(bound["ExternalEmailAddress"], parameter="ExternalEmailAddress")
        changes.external = Proxy("SMTP", external.address) if external.is_smtp else external
        replace["targetAddress"] = str(changes.external)
    if "RecipientFilter" in bound:
        changes.recipient_filter = _recipient_filter(bound, "RecipientFilter")[1]
        replace["msExchDynamicDLFilter"] = str(changes.recipient_filter)
    changes.touches_addresses = any(k in bound for k in ("EmailAddresses", "PrimarySmtpAddress",
                                                         "ExternalEmailAddress"))
    return changes


def _planned_addresses(obj: DirectoryObject, changes: _Changes) -> tuple[list[Proxy], list[Proxy]] | None:
    """The object's proxy addresses after the change, and those it adds; None when nothing changes."""
    current = stored_proxies(obj.get("proxyAddresses"))
    proxies = list(current)
    external = changes.external
    if external is not None:
        old = obj.first("targetAddress") or ""
        old_address = old.partition(":")[2] if ":" in old else old
        primary_followed = any(p.is_primary and p.address.lower() == old_address.lower() for p in proxies)
        # The old external address is not kept as a proxy address (Set-MailContact's documentation).
        proxies = [p for p in proxies if not (p.is_smtp and p.address.lower() == old_address.lower())]
        if external.is_smtp:
            proxies = [p for p in proxies if p.key != ("smtp", external.address.lower())]
            # By default the external address is the contact's primary address.
            new = Proxy("SMTP" if primary_followed or not any(p.is_primary for p in proxies) else "smtp",
                        external.address)
            if new.is_primary:
                proxies = [p.as_primary(False) for p in proxies]
            proxies.append(new)
    if changes.addresses is not None:
        proxies = list(changes.addresses)
        if not any(p.is_primary for p in proxies):  # the first SMTP address becomes the primary one
            first = next(p for p in proxies if p.is_smtp)
            proxies = [p.as_primary(True) if p is first else p for p in proxies]
    for gone in changes.remove:
        target = next((p for p in proxies if p.key == gone.key), None)
        if target is not None and target.is_primary:
            # Lab wording: Exchange refuses to drop the primary address this way.
            raise CmdletError(_DATA_VALIDATION, f'The primary SMTP address "{target.address}" can\'t be removed. Set '
                              "another primary SMTP address first.", category="InvalidData")
        proxies = [p for p in proxies if p.key != gone.key]
    for new in changes.add:
        if new.is_primary:
            proxies = [p.as_primary(False) for p in proxies if p.key != new.key] + [new]
        elif all(p.key != new.key for p in proxies):
            proxies.append(new)
    if changes.primary is not None:
        address = changes.primary
        proxies = [p.as_primary(False) for p in proxies if p.key != ("smtp", address.lower())] + \
            [Proxy("SMTP", address)]
    if [str(p) for p in proxies] == [str(p) for p in current]:
        return None
    keys = {p.key for p in current}
    return proxies, [p for p in proxies if p.key not in keys]


def _dedupe(proxies: Iterable[Proxy]) -> list[Proxy]:
    out: list[Proxy] = []
    for proxy in proxies:
        if all(p.key != proxy.key for p in out):
            out.append(proxy)
        elif proxy.is_primary:
            out = [p.as_primary(True) if p.key == proxy.key else p for p in out]
    return out


def _set(session: _Session, bound: Mapping[str, Any], kinds: set[str], *,
         extra: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """The Set-* cmdlets: convert every value, then find the object, then plan and write."""
    identity = _identity_value(bound["Identity"])
    changes = _parse_changes(bound)
    obj = session.resolve(identity, kinds=kinds)
    replace = dict(changes.replace)
    if extra is not None:
        extra(replace)
    if changes.touches_addresses:
        planned = _planned_addresses(obj, changes)
        if planned is not None:
            proxies, added = planned
            session.check_addresses_free(added, owner_dn=obj.dn)
            replace["proxyAddresses"] = [str(p) for p in proxies]
            primary = next((p.address for p in proxies if p.is_primary), None)
            if primary:
                replace["mail"] = primary
    if _what_if(bound):
        return []
    if replace:
        session.directory.modify(obj.dn, replace=replace)
    new_name = changes.new_name
    if new_name is not None and new_name != (obj.first("name") or obj.first("cn")):
        target = ad.child_dn(ad.parse_dn(obj.dn).parent, "CN", new_name)
        if not ad.same_dn(target, obj.dn) and session.directory.exists(target):
            raise _already_exists(session, target)
        session.directory.rename(obj.dn, new_name)
    return []


def _already_exists(session: _Session, dn: str) -> CmdletError:
    # Exchange on-premises' wording for an AD name collision (ADObjectAlreadyExistsException).
    return CmdletError(_ALREADY_EXISTS, f"Active Directory operation failed on {session.server}. The object '{dn}' "
                       "already exists.", target=dn)


def _set_mail_contact(session: _Session, bound: dict[str, Any]) -> list[dict[str, Any]]:
    return _set(session, bound, {"contact"})


def _set_distribution_group(session: _Session, bound: dict[str, Any]) -> list[dict[str, Any]]:
    return _set(session, bound, {"group"})


def _set_dynamic_distribution_group(session: _Session, bound: dict[str, Any]) -> list[dict[str, Any]]:
    def container(replace: dict[str, Any]) -> None:
        if "RecipientContainer" in bound:
            replace["msExchDynamicDLBaseDN"] = session.organizational_unit(bound["RecipientContainer"],
                                                                           "RecipientContainer")

    return _set(session, bound, {"dynamic-dl"}, extra=container)


def _new_dynamic_distribution_group(session: _Session, bound: dict[str, Any]) -> list[dict[str, Any]]:
    name = _name_value(bound["Name"], "Name")
    conditionals = [p for p in _CONDITIONALS if p in bound]
    has_filter, has_included = "RecipientFilter" in bound, "IncludedRecipients" in bound
    if has_filter == has_included or (has_filter and conditionals):
        raise _parameter_set()
    if has_filter:
        _, flt = _recipient_filter(bound, "RecipientFilter")
    else:
        flt = opath_to_ldap(_precanned(bound, conditionals))
    alias = _alias_value(bound["Alias"]) if bound.get("Alias") is not None else _alias_from_name(name)
    display = _name_value(bound["DisplayName"], "DisplayName", 256) if bound.get("DisplayName") is not None \
        else name
    primary = _smtp_value(bound["PrimarySmtpAddress"], "PrimarySmtpAddress") \
        if bound.get("PrimarySmtpAddress") is not None else None
    parent = session.organizational_unit(bound["OrganizationalUnit"], "OrganizationalUnit") \
        if bound.get("OrganizationalUnit") is not None else session.organizational_unit(
            f"CN=Users,{session.base_dn}", "OrganizationalUnit")
    container = session.organizational_unit(bound["RecipientContainer"], "RecipientContainer") \
        if bound.get("RecipientContainer") is not None else parent
    dn = ad.child_dn(parent, "CN", name)
    if session.directory.exists(dn):
        raise _already_exists(session, dn)
    if primary is not None:
        session.check_addresses_free([Proxy("SMTP", primary)], owner_dn=None)
    else:
        primary = _free_address(session, alias)
    if _what_if(bound):
        return []
    created = session.directory.create_dynamic_distribution_list(
        parent=parent, name=name, alias=alias, recipient_filter=flt, search_base=container, mail=primary,
        attributes={"displayName": display, "legacyExchangeDN": session.legacy_dn(alias)},
    )
    return [render_recipient(session.directory.read(created, attributes=_RECIPIENT_ATTRIBUTES))]


def _precanned(bound: Mapping[str, Any], conditionals: Sequence[str]) -> OpathNode:
    """-IncludedRecipients with -Conditional*: ORs of values, ANDed across properties."""
    raw = bound["IncludedRecipients"]
    values = [v.strip() for item in _as_list(raw) for v in str(item).split(",") if v.strip()]
    canonical = {k.lower(): k for k in (*INCLUDED_RECIPIENTS, "AllRecipients", "None")}
    chosen = []
    for value in values:
        if value.lower() not in canonical:
            raise _conversion("IncludedRecipients", value, "Microsoft.Exchange.Data.Directory.Recipient."
                              "WellKnownRecipientType", f"Unable to match the identifier name {value} to a valid "
                              "enumerator name. Specify one of the following enumerator names and try again:\nNone, "
                              "MailboxUsers, Resources, MailContacts, MailGroups, MailUsers, AllRecipients")
        chosen.append(canonical[value.lower()])
    if not chosen or "None" in chosen or ("AllRecipients" in chosen and len(chosen) > 1):
        raise CmdletError(_DATA_VALIDATION, "AllRecipients can be used only by itself, and None includes no "
                          "recipients.", category="InvalidData")  # lab wording
    if chosen == ["AllRecipients"]:
        details = frozenset().union(*INCLUDED_RECIPIENTS.values())
    else:
        details = frozenset().union(*(INCLUDED_RECIPIENTS[c] for c in chosen))
    parts: list[OpathNode] = [_details_or(details)]
    for parameter in conditionals:
        wanted = [v for v in _as_list(bound[parameter]) if v not in (None, "")]
        if wanted:
            texts = [_text_value(v, parameter, 1024) for v in wanted]
            terms = tuple(OpathTerm(_CONDITIONALS[parameter], "eq", t) for t in texts)
            parts.append(terms[0] if len(terms) == 1 else OpathBool("or", terms))
    return parts[0] if len(parts) == 1 else OpathBool("and", tuple(parts))


def _details_or(details: frozenset[str]) -> OpathNode:
    terms = tuple(OpathTerm("RecipientTypeDetails", "eq", d) for d in sorted(
        details, key=lambda d: RECIPIENT_TYPE_DETAILS[d]))
    return terms[0] if len(terms) == 1 else OpathBool("or", terms)


def _alias_from_name(name: str) -> str:
    # Exchange: spaces removed, unsupported characters become '?'.
    alias = "".join(ch if _ALIAS.match(ch) or ch == "." else "?" for ch in re.sub(r"\s+", "", name))
    alias = re.sub(r"\.{2,}", ".", alias).strip(".")[:64]
    return alias or "DynamicGroup"


def _free_address(session: _Session, alias: str) -> str:
    """alias@default domain as the default e-mail address policy makes it, numbered when taken."""
    local = re.sub(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]", "", alias).strip(".") or "group"
    for n in range(1, 100):
        candidate = f"{local if n == 1 else f'{local}{n}'}@{layout.PRIMARY_DOMAIN}"
        try:
            session.check_addresses_free([Proxy("SMTP", candidate)], owner_dn=None)
        except CmdletError:
            continue
        return candidate
    raise CmdletError(_PROXY_EXISTS, f"No free e-mail address for alias {alias}.")  # lab wording


def _remove_dynamic_distribution_group(session: _Session, bound: dict[str, Any]) -> list[dict[str, Any]]:
    obj = session.resolve(_identity_value(bound["Identity"]), kinds={"dynamic-dl"})
    if not _what_if(bound):
        session.directory.delete(obj.dn)
    return []


_SET_COMMON = ("Identity", "Alias", "DisplayName", "Name", "EmailAddresses", "PrimarySmtpAddress",
               "HiddenFromAddressListsEnabled", "RequireSenderAuthenticationEnabled", *_CUSTOM)
_GET_LIST = ("Identity", "Filter", "OrganizationalUnit", "ResultSize")

_CMDLETS: dict[str, _Spec] = {spec.name.lower(): spec for spec in (
    _Spec("Get-AcceptedDomain", _get_accepted_domain, frozenset({"Identity"})),
    _Spec("Get-Recipient", _get_recipient, frozenset(_GET_LIST), unsupported=_UNSUPPORTED_GET),
    _Spec("Update-Recipient", _update_recipient, frozenset({"Identity"}), ("Identity",),
          unsupported=frozenset({"Credential"})),
    _Spec("Set-MailContact", _set_mail_contact, frozenset({*_SET_COMMON, "ExternalEmailAddress"}), ("Identity",),
          unsupported=_UNSUPPORTED_SET),
    _Spec("Set-DistributionGroup", _set_distribution_group, frozenset(_SET_COMMON), ("Identity",),
          unsupported=_UNSUPPORTED_SET),
    _Spec("New-DynamicDistributionGroup", _new_dynamic_distribution_group, frozenset({
        "Name", "Alias", "DisplayName", "PrimarySmtpAddress", "OrganizationalUnit", "RecipientFilter",
        "IncludedRecipients", "RecipientContainer", *_CONDITIONALS}), ("Name",), unsupported=_UNSUPPORTED_NEW_DDL),
    _Spec("Set-DynamicDistributionGroup", _set_dynamic_distribution_group, frozenset({
        *_SET_COMMON, "RecipientFilter", "RecipientContainer"}), ("Identity",), unsupported=_UNSUPPORTED_SET),
    _Spec("Get-DynamicDistributionGroup", _get_dynamic_distribution_group, frozenset(_GET_LIST),
          unsupported=_UNSUPPORTED_GET),
    _Spec("Remove-DynamicDistributionGroup", _remove_dynamic_distribution_group, frozenset({"Identity"}),
          ("Identity",), confirm=True),
)}


# --------------------------------------------------------------------------------------------
# the runner


def _record(error: CmdletError, cmdlet: str) -> dict[str, Any]:
    """One error record, with the keys app.py's records have (named after pypsrp's ErrorRecord)."""
    short = error.exception.rsplit(".", 1)[-1]
    noun = cmdlet.replace("-", "")
    fq = f"{error.fq_error_id},{cmdlet}" if error.fq_error_id else \
        f"{uuid.uuid5(uuid.NAMESPACE_OID, short).hex[:8].upper()},Microsoft.Exchange.Management.RecipientTasks.{noun}"
    return {
        "exception_type": error.exception, "message": error.message, "fq_error_id": fq,
        "category": error.category, "reason": short, "activity": cmdlet, "target_name": error.target,
        "target_type": "String" if error.target else "",
    }


def _from_ad_error(exc: AdError, server: str) -> CmdletError:
    detail = exc.ldap_message or exc.description or exc.message
    if isinstance(exc, ad.NotFound):
        target = exc.dn or ""
        return CmdletError(_NOT_FOUND, f"The operation couldn't be performed because object '{target}' couldn't be "
                           f"found on '{server}'.", target=target)
    if isinstance(exc, ad.AlreadyExists):
        return CmdletError(_ALREADY_EXISTS, f"Active Directory operation failed on {server}. The object "
                           f"'{exc.dn}' already exists.", target=exc.dn or "")
    if isinstance(exc, ad.ServerDown):
        return CmdletError(_AD_TRANSIENT, f"Active Directory server {server} is not available. Error message: "
                           f"{exc.message}", category="ResourceUnavailable")
    if isinstance(exc, ad.AccessDenied):
        return CmdletError(_AD_OPERATION, f"Active Directory operation failed on {server}. This error is not "
                           f"retriable. Additional information: Access is denied. ({detail})",
                           category="PermissionDenied")
    return CmdletError(_AD_OPERATION, f"Active Directory operation failed on {server}. This error is not retriable. "
                       f"Additional information: {detail}", category="WriteError")


def _server_name(directory: ActiveDirectory, base_dn: str) -> str:
    """The DC's DNS name, as Exchange names it in its errors (dc1.lab.example in the lab)."""
    key = directory.settings.url
    if key not in _server_names:
        try:
            name = (directory.root_dse().get("dnsHostName") or [""])[0]
        except AdError:
            return f"dc1.{domain_name(base_dn)}"  # the DC is down: the call fails anyway, with this name
        _server_names[key] = name or f"dc1.{domain_name(base_dn)}"
    return _server_names[key]


def run(cmdlet: str, parameters: Mapping[str, Any], /) -> dict[str, Any]:
    """One cmdlet against the lab AD; ``{"output", "errors", "warnings"}`` as the lab cloud's hook wants.

    Never raises for a cmdlet's own failure: it becomes an error record. Secrets never appear in
    what is returned (messages pass the portal's redaction, which knows the AD password).
    """
    name = cmdlet.strip() if isinstance(cmdlet, str) else ""
    spec = _CMDLETS.get(name.lower())
    if spec is None:
        # Windows PowerShell's wording (Exchange's remote shell runs on Windows PowerShell 5.1).
        error = CmdletError("System.Management.Automation.CommandNotFoundException",
                            f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or "
                            "operable program. Check the spelling of the name, or if a path was included, verify that "
                            "the path is correct and try again.", category="ObjectNotFound", target=name,
                            fq_error_id="CommandNotFoundException")
        record = _record(error, name)
        record["fq_error_id"] = "CommandNotFoundException"
        return {"output": [], "errors": [record], "warnings": []}
    if not isinstance(parameters, Mapping):
        parameters = {}
    try:
        bound = _bind(spec, parameters)
        if spec.confirm and ("Confirm" not in bound or _bool_value(
                bound["Confirm"] if bound["Confirm"] is not None else True, "Confirm")):
            # A remote session without a host cannot show the confirmation prompt.
            raise CmdletError("System.Management.Automation.Host.HostException", "A command that prompts the user "
                              "failed because the host program or the command type does not support user "
                              "interaction. Try a host program that supports user interaction, such as the Windows "
                              "PowerShell Console or Windows PowerShell ISE, and remove prompt-related commands from "
                              "command types that do not support user interaction, such as Windows PowerShell "
                              "workflows.", category="NotImplemented", fq_error_id="HostFunctionNotImplemented")
    except CmdletError as error:
        return {"output": [], "errors": [_record(error, spec.name)], "warnings": []}
    return _run_bound(spec, bound)


def _run_bound(spec: _Spec, bound: dict[str, Any]) -> dict[str, Any]:
    from portal.jobs.redaction import redact

    _ensure_django()
    from portal.connectors import registry

    server = "dc1"
    try:
        base_dn = registry.ad_layout().base_dn
        with registry.active_directory() as directory:
            server = _server_name(directory, base_dn)
            session = _Session(directory=directory, base_dn=base_dn, server=server)
            try:
                result = spec.handler(session, bound)
            except AdError as exc:
                raise _from_ad_error(exc, server) from exc
    except CmdletError as error:
        record = _record(error, spec.name)
        record["message"] = redact(record["message"])
        return {"output": [], "errors": [record], "warnings": []}
    except registry.NotConfigured as exc:
        error = CmdletError(_INVALID_OPERATION, str(exc), category="ResourceUnavailable")
        return {"output": [], "errors": [_record(error, spec.name)], "warnings": []}
    except AdError as exc:  # connecting or binding failed
        record = _record(_from_ad_error(exc, server), spec.name)
        record["message"] = redact(record["message"])
        return {"output": [], "errors": [record], "warnings": []}
    except Exception as exc:  # a lab defect: still an error record, still without secrets
        record = _record(CmdletError(type(exc).__name__, redact(f"{type(exc).__name__}: {exc}")), spec.name)
        return {"output": [], "errors": [record], "warnings": []}
    output, warnings = result if isinstance(result, tuple) else (result, [])
    return {"output": list(output), "errors": [], "warnings": list(warnings)}


__all__ = [
    "INCLUDED_RECIPIENTS", "RECIPIENT_TYPES", "RECIPIENT_TYPE_DETAILS", "CmdletError", "OpathBool", "OpathError",
    "OpathNot", "OpathTerm", "Proxy", "canonical_name", "ldap_to_opath", "opath_to_ldap", "parse_opath",
    "parse_proxy", "render_opath", "render_recipient", "run",
]
