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


class _Holder(NamedTuple):
    owner: str  # the DN, or "cloud:<objectId>"
    object_class: str
    attribute: str
    value: str


# The index keeps one entry per distinct value of the whole scope (hundreds of thousands), alive until the scan
# ends. Held as strings only, its dicts are never tracked by the garbage collector: a dict holding tuples or
# lists is, and every full collection during the scan then walked all of it (~30 us of CPU per object at 25,000
# objects, growing with the scope). A value's slot is "<namespace>:<lower-cased value>" (a namespace never holds
# a colon: it is a constant or the part of a proxy address before its first colon); its first holder is
# encoded by :func:`_encode`. The few values held more than once get their _Holder list in a small dict.


def _owner(owner: str, object_class: str) -> str:
    """One object's DN (or cloud:<id>) and class as one string, the lengths making it unambiguous whatever they
    hold. Kept once per object: its holders name it by number ("<number>:"), not by repeating the DN."""
    return f"{len(owner)}:{len(object_class)}:{owner}{object_class}"


def _encode(prefix: str, attribute: str, value: str) -> str:
    return f"{prefix}{_tag(attribute)}{value}"


def _tag(attribute: str) -> str:
    tag = _TAGS.get(attribute)
    if tag is None:
        tag = f"{len(attribute)}:{attribute}"
        if len(_TAGS) < 64:  # the attribute names the index holds: a handful
            _TAGS[attribute] = tag
    return tag


_TAGS: dict[str, str] = {}


def _decode(encoded: str, owners: list[str]) -> _Holder:
    number, attribute_length, rest = encoded.split(":", 2)
    owner_length, class_length, both = owners[int(number)].split(":", 2)
    owner, object_class = both[:int(owner_length)], both[int(owner_length):]
    return _Holder(owner, object_class, rest[:int(attribute_length)], rest[int(attribute_length):])


_SHARED = ""  # in _first: the slot's holders are in _shared


class DuplicateIndex:
    """Feed it every object in scope (:meth:`add_entry`) and the tenant's (:meth:`add_cloud`), then read
    :meth:`findings`. Memory: two short strings per distinct value, one per object."""

    def __init__(self, *, certificate_attribute: str | None = None) -> None:
        self.certificate_attribute = certificate_attribute
        self._first: dict[str, str] = {}  # slot -> its first holder, encoded (or _SHARED); in the order found
        self._shared: dict[str, list[_Holder]] = {}  # slot -> its holders, for a value held more than once
        self._owners: list[str] = []  # _owner() of each object fed, by number (a list of strings: walked, but
        # one item per object, not per value)
        # (dicts of strings for the same reason: a set is always tracked by the collector)
        self._anchors: dict[str, None] = {}
        self._dns: dict[str, None] = {}

    # ---- feeding

    def _number(self, owner: str, object_class: str) -> str:
        """The start of every encoded holder of this object: its number and a colon."""
        self._owners.append(_owner(owner, object_class))
        return f"{len(self._owners) - 1}:"

    def _put(self, namespace: str, key: str, holder: _Holder, mine: str) -> None:
        slot = f"{namespace}:{key.lower()}"
        current = self._first.get(slot)
        if current is None:
            self._first[slot] = _encode(mine, holder.attribute, holder.value)  # most values: one holder, no list
            return
        self._another(slot, current, holder)

    def _another(self, slot: str, current: str, holder: _Holder) -> None:
        holders = self._shared[slot] if current == _SHARED else [_decode(current, self._owners)]
        mine = [h for h in holders if h.owner == holder.owner]
        # mail equal to the object's own primary address, or the UPN among its addresses: not a duplicate.
        # The same proxy address listed twice on one object is one (IdFix reports it too).
        if mine and not (holder.attribute == "proxyAddresses" and any(h.attribute == "proxyAddresses" for h in mine)):
            return
        holders.append(holder)
        self._shared[slot] = holders
        self._first[slot] = _SHARED

    def add_entry(self, entry: Entry) -> None:
        if entry.anchor:
            self._anchors[entry.anchor] = None
        self._dns[entry.dn.lower()] = None
        dn, kind, attributes, first = entry.dn, entry.object_class, entry.attributes, self._first
        mine = self._number(dn, kind)
        proxy_head = mine + _tag("proxyAddresses")

        def put(slot: str, head: str, value: str) -> None:
            current = first.get(slot)
            if current is None:
                first[slot] = head + value
            elif not current.startswith(mine) or (head is proxy_head and current.startswith(proxy_head)):
                self._another(slot, current, _Holder(dn, kind, head[len(mine):].partition(":")[2], value))
            # (else: this object's own mail, UPN or primary address again, the usual case: nothing to add)

        # (Attribute keys are the entry's lower-cased names; the holders keep the names findings show.)
        for attribute, key in (("mail", "mail"), ("userPrincipalName", "userprincipalname")):
            values = attributes.get(key)
            if values and values[0] and not isinstance(values[0], Unreadable):
                put(f"{ADDRESS}:{values[0].lower()}", mine + _tag(attribute), values[0])
        for value in attributes.get("proxyaddresses", ()):
            if isinstance(value, Unreadable) or ":" not in value:
                continue
            prefix, _, rest = value.partition(":")
            prefix = prefix.upper()
            put(f"{ADDRESS if prefix == 'SMTP' else prefix}:{rest.lower()}", proxy_head, value)
        for attribute, key in (("mailNickname", "mailnickname"), ("targetAddress", "targetaddress")):
            values = attributes.get(key)
            if values and values[0] and not isinstance(values[0], Unreadable):
                put(f"{attribute}:{values[0].lower()}", mine + _tag(attribute), values[0])
        sam = entry.first("sAMAccountName")
        if sam and not isinstance(sam, Unreadable) and not entry.has("userPrincipalName"):
            put(f"sAMAccountName:{sam.lower()}", mine + _tag("sAMAccountName"), sam)
        if self.certificate_attribute:
            head = mine + _tag(self.certificate_attribute)
            for value in entry.values(self.certificate_attribute):
                if not isinstance(value, Unreadable):
                    put(f"certificateUserIds:{_certificate_key(value).lower()}", head, value)

    def add_cloud(self, obj: CloudObject) -> None:
        """A tenant object. Call after every :meth:`add_entry`: an object synchronised from an entry in scope
        is that entry's own cloud copy and is left out (its values are the entry's, one sync behind)."""
        if (obj.synced or obj.cloud_managed) and ((obj.immutable_id and obj.immutable_id in self._anchors)
                           or (obj.on_premises_dn and obj.on_premises_dn.lower() in self._dns)):
            return
        owner = f"cloud:{obj.id}"
        mine = self._number(owner, obj.kind)

        def put(namespace: str, key: str, attribute: str, value: str) -> None:
            self._put(namespace, key, _Holder(owner, obj.kind, attribute, value), mine)

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
        for slot, first in self._first.items():
            if first != _SHARED:
                continue
            namespace, holders = slot.partition(":")[0], self._shared[slot]
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
