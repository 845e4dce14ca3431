"""Get-Recipient and Update-Recipient, and the listing and lookup the Get- cmdlets share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from portal.connectors import ad
from portal.connectors.ad import AdError, Filter
from portal.lab import layout
from portal.lab.opath import ONPREM, OpathError, OpathNode

from ..binding import _result_size, _what_if
from ..directory import _Session
from ..errors import _MORE_RESULTS, _filter_error
from ..filters import opath_to_ldap, parse_opath
from ..recipient_types import _DISPLAY_TYPES, _RECIPIENT_ATTRIBUTES, RECIPIENT_TYPE_DETAILS
from ..render import _inferred_details, render_recipient
from ..values import Proxy, _identity_value, _no_controls, is_smtp, stored_proxies


def _recipient_filter(bound: Mapping[str, Any], parameter: str) -> tuple[OpathNode, Filter]:
    text = bound[parameter]
    if not isinstance(text, str) or not text.strip() or not _no_controls(text):
        raise _filter_error(parameter, str(text), ONPREM.syntax(str(text), 0))
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
