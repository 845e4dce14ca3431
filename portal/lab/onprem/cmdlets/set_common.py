"""The parts the Set- cmdlets share: the changes asked for, the planned addresses, the write."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from portal.connectors import ad
from portal.connectors.ad import DirectoryObject, Filter

from ..binding import _CUSTOM, _what_if
from ..directory import _Session
from ..errors import _ALREADY_EXISTS, _DATA_VALIDATION, _INVALID_OPERATION, CmdletError
from ..values import (
    Proxy,
    _alias_value,
    _bool_value,
    _identity_value,
    _multi_value,
    _name_value,
    _smtp_value,
    _text_value,
    parse_proxy,
    stored_proxies,
)
from .recipient import _recipient_filter

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
