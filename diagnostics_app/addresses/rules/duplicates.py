"""Duplicates across the whole scope, across attributes and against the tenant: one dict, one pass.

IdFix keeps a list per attribute and searches it for every value (quadratic, one attribute at a time,
one forest, never the tenant). Here every value goes into one dict keyed by its namespace and its
lower-cased form; a key held by two owners is a duplicate. Building the dict is linear in the number
of values, and so is reading it out.

Namespaces follow what Entra ID keeps unique across users, groups and contacts: SMTP addresses,
whichever attribute brings them (``mail`` becomes the primary address when proxyAddresses is empty,
an ``SMTP:``/``smtp:`` proxy address, the UPN that ProxyCalc adds to every mail recipient, so a UPN
that another object has as an address collides too); each other proxy address type (X500, SIP, ...)
on its own; ``certificateUserIds``. IdFix's per-attribute duplicates (``mailNickname``,
``targetAddress``, ``sAMAccountName`` when the object has no UPN) are reported as IdFix does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from .types import Action, Category, CloudObject, Entry, ErrorType, Finding, Fix, Rule, Severity
from .values import Unreadable, printable

__all__ = ["DuplicateIndex"]

ADDRESS = "smtp"
_SEVERE = {ADDRESS, "certificateUserIds"}


class _Holder(NamedTuple):  # one per value in scope: a tuple is the cheapest to build and to keep
    owner: str  # the DN, or "cloud:<objectId>"
    object_class: str
    attribute: str
    value: str


class DuplicateIndex:
    """Feed it every object in scope (:meth:`add_entry`) and the tenant's (:meth:`add_cloud`), then read
    :meth:`findings`. Memory: one small tuple per distinct value."""

    def __init__(self, *, certificate_attribute: str | None = None) -> None:
        self.certificate_attribute = certificate_attribute
        self._holders: dict[tuple[str, str], _Holder | list[_Holder]] = {}
        self._anchors: set[str] = set()
        self._dns: set[str] = set()

    # ---- feeding

    def _put(self, namespace: str, key: str, holder: _Holder) -> None:
        slot = (namespace, key.lower())
        current = self._holders.get(slot)
        if current is None:
            self._holders[slot] = holder  # most values have one holder: no list for them
            return
        self._another(slot, current, holder)

    def _another(self, slot: tuple[str, str], current: _Holder | list[_Holder], holder: _Holder) -> None:
        holders = current if isinstance(current, list) else [current]
        mine = [h for h in holders if h.owner == holder.owner]
        # mail equal to the object's own primary address, or the UPN among its addresses: not a duplicate.
        # The same proxy address listed twice on one object is one (IdFix reports it too).
        if mine and not (holder.attribute == "proxyAddresses" and any(h.attribute == "proxyAddresses" for h in mine)):
            return
        holders.append(holder)
        self._holders[slot] = holders

    def add_entry(self, entry: Entry) -> None:
        if entry.anchor:
            self._anchors.add(entry.anchor)
        self._dns.add(entry.dn.lower())
        dn, kind, attributes, holders = entry.dn, entry.object_class, entry.attributes, self._holders
        new = tuple.__new__  # _Holder(...) without NamedTuple's Python-level __new__

        def put(namespace: str, key: str, attribute: str, value: str) -> None:
            slot = (namespace, key.lower())
            current = holders.get(slot)
            if current is None:
                holders[slot] = new(_Holder, (dn, kind, attribute, value))
            elif current.__class__ is not _Holder or current[0] != dn or (
                    attribute == "proxyAddresses" and current[2] == "proxyAddresses"):
                self._another(slot, current, new(_Holder, (dn, kind, attribute, value)))
            # (else: this object's own mail, UPN or primary address again, the usual case: nothing to add)

        # (Attribute keys are the entry's lower-cased names; the holders keep the names findings show.)
        for attribute, key in (("mail", "mail"), ("userPrincipalName", "userprincipalname")):
            values = attributes.get(key)
            if values and values[0] and not isinstance(values[0], Unreadable):
                put(ADDRESS, values[0], attribute, values[0])
        for value in attributes.get("proxyaddresses", ()):
            if isinstance(value, Unreadable) or ":" not in value:
                continue
            prefix, _, rest = value.partition(":")
            prefix = prefix.upper()
            put(ADDRESS if prefix == "SMTP" else prefix, rest, "proxyAddresses", value)
        for attribute, key in (("mailNickname", "mailnickname"), ("targetAddress", "targetaddress")):
            values = attributes.get(key)
            if values and values[0] and not isinstance(values[0], Unreadable):
                put(attribute, values[0], attribute, values[0])
        sam = entry.first("sAMAccountName")
        if sam and not isinstance(sam, Unreadable) and not entry.has("userPrincipalName"):
            put("sAMAccountName", sam, "sAMAccountName", sam)
        if self.certificate_attribute:
            for value in entry.values(self.certificate_attribute):
                if not isinstance(value, Unreadable):
                    put("certificateUserIds", _certificate_key(value), self.certificate_attribute, value)

    def add_cloud(self, obj: CloudObject) -> None:
        """A tenant object. Call after every :meth:`add_entry`: an object synchronised from an entry in scope
        is that entry's own cloud copy and is left out (its values are the entry's, one sync behind)."""
        if (obj.synced or obj.cloud_managed) and ((obj.immutable_id and obj.immutable_id in self._anchors)
                           or (obj.on_premises_dn and obj.on_premises_dn.lower() in self._dns)):
            return
        owner = f"cloud:{obj.id}"

        def put(namespace: str, key: str, attribute: str, value: str) -> None:
            self._put(namespace, key, _Holder(owner, obj.kind, attribute, value))

        for attribute, value in (("mail", obj.mail), ("userPrincipalName", obj.user_principal_name)):
            if value:
                put(ADDRESS, value, attribute, value)
        for value in obj.proxy_addresses:
            prefix, _, rest = value.partition(":")
            put(ADDRESS if prefix.upper() == "SMTP" else prefix.upper(), rest, "proxyAddresses", value)
        for value in obj.certificate_user_ids:
            put("certificateUserIds", _certificate_key(value), "certificateUserIds", value)

    # ---- reading

    def findings(self) -> Iterator[Finding]:
        for (namespace, _key), holders in self._holders.items():
            if not isinstance(holders, list):
                continue
            owners = {h.owner for h in holders}
            seen: set[str] = set()
            for holder in holders:
                repeat = holder.owner in seen
                seen.add(holder.owner)
                if holder.owner.startswith("cloud:") or (len(owners) == 1 and not repeat):
                    continue
                yield _finding(namespace, holder, tuple(sorted(owners - {holder.owner})), holders)


def _certificate_key(value: str) -> str:
    # The prefix is case-sensitive for validity, but two values that differ only by it are one mapping.
    return value[5:] if value[:5].lower() == "x509:" else value


def _finding(namespace: str, holder: _Holder, others: tuple[str, ...], holders: list[_Holder]) -> Finding:
    same_object = not others
    cloud_only = [o for o in others if o.startswith("cloud:")]
    where = ", ".join(f"{h.owner} ({h.attribute})" for h in holders if h is not holder)
    if same_object:
        explanation = f"The object lists {printable(holder.value)} more than once in proxyAddresses."
    else:
        explanation = f"{printable(holder.value)} is also held by {printable(where, 600)}."
    severe = namespace in _SEVERE or namespace not in {"mailNickname", "targetAddress", "sAMAccountName"}
    if severe and not same_object:
        explanation += (" Entra ID keeps it unique across users, groups and contacts: the object that brings it at "
                        "the next sync gets it quarantined (Duplicate Attribute)")
        explanation += (", and a cloud-only object already has it, so this object is the one that loses it."
                        if cloud_only else ".")
    elif not same_object:
        explanation += " IdFix reports it as a duplicate; choose which object keeps it."
    primary = holder.attribute == "proxyAddresses" and holder.value.startswith("SMTP:")
    removable = holder.attribute == "proxyAddresses" and not primary
    fix = Fix(attribute=holder.attribute, remove=(holder.value,)) if removable else None
    if removable:
        explanation += " Proposed: remove this secondary address from this object (or from the other holder)."
    return Finding(
        dn=holder.owner, object_class=holder.object_class, attribute=holder.attribute,
        value=printable(holder.value, 1024), rule=Rule.DUPLICATE,
        severity=Severity.ERROR if severe else Severity.WARNING, errors=ErrorType.DUPLICATE,
        action=Action.REMOVE if removable else Action.NONE, category=Category.DUPLICATE_ATTRIBUTE if severe
        else Category.NONE, explanation=explanation, fix=fix, others=others,
        beyond_idfix=namespace == ADDRESS and any(h.attribute != holder.attribute for h in holders) or bool(cloud_only),
    )
