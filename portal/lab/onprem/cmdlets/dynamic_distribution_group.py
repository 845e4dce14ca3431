"""New-, Get-, Set- and Remove-DynamicDistributionGroup."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from portal.connectors import ad
from portal.lab import layout
from portal.lab.opath import OpathBool, OpathNode, OpathTerm

from ..binding import _what_if
from ..directory import _Session
from ..errors import _DATA_VALIDATION, _PROXY_EXISTS, CmdletError, _conversion, _parameter_set
from ..filters import opath_to_ldap
from ..recipient_types import _CONDITIONALS, _RECIPIENT_ATTRIBUTES, INCLUDED_RECIPIENTS, RECIPIENT_TYPE_DETAILS
from ..render import render_recipient
from ..values import _ALIAS, Proxy, _alias_value, _as_list, _identity_value, _name_value, _smtp_value, _text_value
from .recipient import _list, _one, _recipient_filter
from .set_common import _already_exists, _set


def _get_dynamic_distribution_group(session: _Session, bound: dict[str, Any]) -> Any:
    if bound.get("Identity") is not None:
        return _one(session, bound, {"dynamic-dl"})
    return _list(session, bound, {"dynamic-dl"})


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
