"""OPATH on Exchange on-premises: its filterable properties, and a filter translated to the LDAP filter it
stores (with the connector's filter helpers) and the stored LDAP filter read back as OPATH."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from portal.connectors import ad
from portal.connectors.ad import Filter
from portal.lab import opath
from portal.lab.opath import ONPREM, OpathBool, OpathError, OpathNode, OpathNot, OpathTerm

from .recipient_types import _DETAILS_BY_VALUE, RECIPIENT_TYPE_DETAILS, RECIPIENT_TYPES
from .values import _PREFIX, _no_controls


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


def parse_opath(text: str) -> OpathNode:
    """-Filter/-RecipientFilter as Exchange on-premises reads them, with its filterable properties."""
    return opath.parse_opath(text, resolve=_property_name, dialect=ONPREM)


def _property_name(name: str) -> str | None:
    prop = _PROP_BY_NAME.get(name.lower())
    return prop.name if prop else None


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
