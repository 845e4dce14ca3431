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

import re
from collections.abc import Iterable, Iterator
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


# The index keeps one entry per distinct value of the whole scope (hundreds of thousands), alive until the scan ends,
# so what it holds per value is what the scan's memory grows by. A value's slot is "<namespace>:<lower-cased value>"
# (a namespace never holds a colon: it is a constant or the part of a proxy address before its first colon; Exchange's
# X500 prefix abbreviated, :func:`_slot_key`), and its first holder one int: the number of its object (its DN and
# class are kept once, in _owners), the attribute (one of the few the index reads: _ATTRIBUTES) and a recipe that
# writes the value back from its slot (:func:`_recipe`), numbered in a table shared by the values of every object: a
# value is mostly the slot's own text behind a prefix ("SMTP:"), or differs from it only by capitals in the same
# places as many others (an X500 address written by Exchange), so a few recipes serve them all. Strings and ints only:
# none of its dicts is tracked by the garbage collector (a dict holding tuples or lists is, and every full collection
# during the scan then walked all of it). The few values held more than once get their _Holder list in a small dict.

_ATTRIBUTES = ("mail", "userPrincipalName", "proxyAddresses", "mailNickname", "targetAddress", "sAMAccountName",
               "certificateUserIds")  # and the certificate attribute the scan reads, if another
_PROXY = _ATTRIBUTES.index("proxyAddresses")
_ATTRIBUTE_BITS, _OBJECT_BITS = 4, 32  # holder = recipe << 36 | object << 4 | attribute
_OBJECT_MASK = (1 << _OBJECT_BITS) - 1
_RECIPE_SHIFT = _ATTRIBUTE_BITS + _OBJECT_BITS
_CAPITALS = re.compile(r"[A-Z]+")
_MAX_CUT = 255  # positions and lengths in a recipe are one character each, latin-1 (one byte)
_NOT_CAPITALS = "".join(chr(c) for c in range(128) if not "A" <= chr(c) <= "Z")
_CASED_CACHE = 4096  # a directory whose addresses hold capitals of their own (Anna.Berg@) has many heads


# Every X500 address Exchange writes (legacyExchangeDN, hybrid writeback) starts with these 86 characters; the
# slot keeps "\x001" in their place (and "\x000" in front of a value that itself starts with \x00): one to one.
EXCHANGE_X500 = "/o=exchangelabs/ou=exchange administrative group (fydibohf23spdlt)/cn=recipients/cn="


def _slot_key(lowered: str) -> str:
    """An X500 slot's part after the namespace."""
    if lowered.startswith(EXCHANGE_X500):
        return f"\x001{lowered[len(EXCHANGE_X500):]}"
    return f"\x000{lowered}" if lowered[:1] == "\x00" else lowered


def _lowered(slot: str) -> str:
    """The lower-cased value a slot stands for."""
    namespace, _, key = slot.partition(":")
    if namespace == "X500" and key[:1] == "\x00":
        return EXCHANGE_X500 + key[2:] if key[1] == "1" else key[2:]
    return key


def _owner(owner: str, object_class: str) -> str:
    """One object's DN (or cloud:<id>) and class as one string, the lengths making it unambiguous whatever they
    hold. Kept once per object: its holders name it by number, not by repeating the DN."""
    return f"{len(owner)}:{len(object_class)}:{owner}{object_class}"


def _recipe(value: str, key: str) -> str:
    """How :func:`_written` gets ``value`` back from ``key``, its slot's lower-cased part (key is always the
    lower-cased end of value, behind a prefix the slot leaves out): "=<prefix>" when the end is the key itself;
    "^<prefix length><prefix><start><length>..." when only ASCII capitals differ (their runs); else "!<value>"."""
    cut = len(value) - len(key)
    if cut >= 0:
        prefix, rest = value[:cut], value[cut:]
        if rest == key:
            return f"={prefix}"
        # ASCII only: lower() then changes A-Z and nothing else, so the capital runs are all that differ.
        if cut <= _MAX_CUT and len(rest) <= _MAX_CUT and rest.isascii() and rest.lower() == key:
            runs = "".join(f"{chr(m.start())}{chr(m.end() - m.start())}" for m in _CAPITALS.finditer(rest))
            return f"^{chr(cut)}{prefix}{runs}"
    return f"!{value}"


def _written(recipe: str, key: str) -> str:
    marker, rest = recipe[0], recipe[1:]
    if marker == "=":
        return rest + key
    if marker == "!":
        return rest
    cut = ord(rest[0])
    prefix, runs = rest[1:1 + cut], rest[1 + cut:]
    pieces, at = [prefix], 0
    for index in range(0, len(runs), 2):
        start, length = ord(runs[index]), ord(runs[index + 1])
        pieces += (key[at:start], key[start:start + length].upper())
        at = start + length
    pieces.append(key[at:])
    return "".join(pieces)


_SHARED = -1  # in _first: the slot's holders are in _shared


class DuplicateIndex:
    """Feed it every object in scope (:meth:`add_entry`) and the tenant's (:meth:`add_cloud`), then read
    :meth:`findings`. Memory: per distinct value its slot and an int, per object one string.

    ``tenant``, when known up front: the objects :meth:`add_cloud` will be given. Only the entries one of them
    may be the cloud copy of are then remembered (by anchor and DN), not every entry."""

    def __init__(self, *, certificate_attribute: str | None = None, tenant: Iterable[CloudObject] | None = None
                 ) -> None:
        self.certificate_attribute = certificate_attribute
        self._first: dict[str, int] = {}  # slot -> its first holder (or _SHARED); in the order found
        self._shared: dict[str, list[_Holder]] = {}  # slot -> its holders, for a value held more than once
        self._owners: list[str] = []  # _owner() of each object fed, by number (a list of strings: walked, but
        # one item per object, not per value)
        # (dicts, not lists, tuples or sets: those are tracked by the collector)
        self._attributes = dict(enumerate(_ATTRIBUTES))  # by number
        if certificate_attribute and certificate_attribute not in _ATTRIBUTES:
            self._attributes[len(_ATTRIBUTES)] = certificate_attribute
        self._recipes: dict[int, str] = {}  # by number; _recipe_numbers the other way
        self._recipe_numbers: dict[str, int] = {}
        self._plain: dict[str, int] = {}  # a prefix -> the number of the recipe "=<prefix>"
        self._cased: dict[str, int] = {}  # a cased value's prefix and head (up to its last capital) -> recipe
        self._anchors: dict[str, None] = {}
        self._dns: dict[str, None] = {}
        self._twin_anchors: dict[str, None] | None = None  # None: every entry's anchor and DN are remembered
        self._twin_dns: dict[str, None] | None = None
        if tenant is not None:
            twins = [o for o in tenant if o.synced or o.cloud_managed]
            self._twin_anchors = dict.fromkeys(o.immutable_id for o in twins if o.immutable_id)
            self._twin_dns = dict.fromkeys(o.on_premises_dn.lower() for o in twins if o.on_premises_dn)

    # ---- feeding

    def _recipe_number(self, recipe: str) -> int:
        number = self._recipe_numbers.get(recipe)
        if number is None:
            number = self._recipe_numbers[recipe] = len(self._recipes)
            self._recipes[number] = recipe
        return number

    def _cased_recipe(self, value: str, prefix: str, rest: str, lowered: str) -> int:
        """The recipe number of a value whose end differs from its slot's (lowered) by case. An ASCII value's
        recipe depends only on its prefix and its text up to its last capital (Exchange's X500 addresses share
        theirs), so it is looked up by those instead of finding the capitals in every value."""
        if not (rest.isascii() and len(prefix) <= _MAX_CUT and len(rest) <= _MAX_CUT):
            return self._recipe_number(_recipe(value, lowered))
        head = f"{chr(len(prefix))}{prefix}{rest.rstrip(_NOT_CAPITALS)}"
        number = self._cased.get(head)
        if number is None:
            number = self._recipe_number(_recipe(value, lowered))
            if len(self._cased) < _CASED_CACHE:
                self._cased[head] = number
        return number

    def _number(self, owner: str, object_class: str) -> int:
        self._owners.append(_owner(owner, object_class))
        return len(self._owners) - 1

    def _holder(self, slot: str, encoded: int) -> _Holder:
        owner_length, class_length, both = self._owners[encoded >> _ATTRIBUTE_BITS & _OBJECT_MASK].split(":", 2)
        owner, object_class = both[:int(owner_length)], both[int(owner_length):]
        recipe = self._recipes[encoded >> _RECIPE_SHIFT]
        return _Holder(owner, object_class, self._attributes[encoded & ((1 << _ATTRIBUTE_BITS) - 1)],
                       _written(recipe, _lowered(slot)))

    def _encoded(self, number: int, attribute: int, value: str, key: str) -> int:
        return (self._recipe_number(_recipe(value, key)) << _RECIPE_SHIFT
                | number << _ATTRIBUTE_BITS | attribute)

    def _another(self, slot: str, current: int, holder: _Holder) -> None:
        holders = self._shared[slot] if current == _SHARED else [self._holder(slot, current)]
        mine = [h for h in holders if h.owner == holder.owner]
        # mail equal to the object's own primary address, or the UPN among its addresses: not a duplicate.
        # The same proxy address listed twice on one object is one (IdFix reports it too).
        if mine and not (holder.attribute == "proxyAddresses" and any(h.attribute == "proxyAddresses" for h in mine)):
            return
        holders.append(holder)
        self._shared[slot] = holders
        self._first[slot] = _SHARED

    def add_entry(self, entry: Entry) -> None:
        anchor, dn = entry.anchor, entry.dn
        if self._twin_anchors is None:
            if anchor:
                self._anchors[anchor] = None
            self._dns[dn.lower()] = None
        else:
            if anchor and anchor in self._twin_anchors:
                self._anchors[anchor] = None
            if self._twin_dns and dn.lower() in self._twin_dns:
                self._dns[dn.lower()] = None
        kind, first, plain = entry.object_class, self._first, self._plain
        mine = self._number(dn, kind) << _ATTRIBUTE_BITS
        object_bits = _OBJECT_MASK << _ATTRIBUTE_BITS
        for slot, attribute, value, prefix, rest, lowered in self._keys(entry):
            current = first.get(slot)
            if current is None:
                if rest == lowered:  # most values: the recipe "=<prefix>"
                    recipe = plain.get(prefix)
                    if recipe is None:
                        recipe = plain[prefix] = self._recipe_number(f"={prefix}")
                else:
                    recipe = self._cased_recipe(value, prefix, rest, lowered)
                first[slot] = recipe << _RECIPE_SHIFT | mine | attribute
            elif current == _SHARED or current & object_bits != mine or (
                    attribute == _PROXY and current & 15 == _PROXY):
                self._another(slot, current, _Holder(dn, kind, self._attributes[attribute], value))
            # (else: this object's own mail, UPN or primary address again, the usual case: nothing to add)

    def _keys(self, entry: Entry) -> Iterator[tuple[str, int, str, str, str, str]]:
        """An entry's values the index holds: (slot, attribute number, value, prefix, rest, lowered), the value
        being prefix + rest and lowered, the end of the slot, rest.lower()."""
        # (Attribute keys are the entry's lower-cased names; the holders keep the names findings show.)
        attributes = entry.attributes
        for attribute, key in ((0, "mail"), (1, "userprincipalname")):
            values = attributes.get(key)
            if values and values[0] and not isinstance(values[0], Unreadable):
                value = values[0]
                lowered = value.lower()
                yield f"{ADDRESS}:{lowered}", attribute, value, "", value, lowered
        for value in attributes.get("proxyaddresses", ()):
            if isinstance(value, Unreadable) or ":" not in value:
                continue
            prefix, _, rest = value.partition(":")
            namespace = prefix.upper()
            lowered = rest.lower()
            if namespace == "SMTP":
                slot = f"{ADDRESS}:{lowered}"
            else:
                slot = f"{namespace}:{_slot_key(lowered) if namespace == 'X500' else lowered}"
            yield slot, _PROXY, value, value[:len(prefix) + 1], rest, lowered
        for attribute, key, name in ((3, "mailnickname", "mailNickname"), (4, "targetaddress", "targetAddress")):
            values = attributes.get(key)
            if values and values[0] and not isinstance(values[0], Unreadable):
                value = values[0]
                lowered = value.lower()
                yield f"{name}:{lowered}", attribute, value, "", value, lowered
        sam = entry.first("sAMAccountName")
        if sam and not isinstance(sam, Unreadable) and not entry.has("userPrincipalName"):
            lowered = sam.lower()
            yield f"sAMAccountName:{lowered}", 5, sam, "", sam, lowered
        if self.certificate_attribute:
            attribute = next(n for n, name in self._attributes.items() if name == self.certificate_attribute)
            for value in entry.values(self.certificate_attribute):
                if not isinstance(value, Unreadable):
                    rest = _certificate_key(value)
                    lowered = rest.lower()
                    yield f"certificateUserIds:{lowered}", attribute, value, value[:len(value) - len(rest)], rest, \
                        lowered

    def add_cloud(self, obj: CloudObject) -> None:
        """A tenant object. Call after every :meth:`add_entry` (with an object of the ``tenant`` given, if one
        was): an object synchronised from an entry in scope is that entry's own cloud copy and is left out (its
        values are the entry's, one sync behind)."""
        if (obj.synced or obj.cloud_managed) and ((obj.immutable_id and obj.immutable_id in self._anchors)
                           or (obj.on_premises_dn and obj.on_premises_dn.lower() in self._dns)):
            return
        owner = f"cloud:{obj.id}"
        number = self._number(owner, obj.kind)

        def put(namespace: str, key: str, attribute: str, value: str) -> None:
            lowered = key.lower()
            slot = f"{namespace}:{_slot_key(lowered) if namespace == 'X500' else lowered}"
            current = self._first.get(slot)
            if current is None:  # most values: one holder, no list
                self._first[slot] = self._encoded(number, _ATTRIBUTES.index(attribute), value, lowered)
            else:
                self._another(slot, current, _Holder(owner, obj.kind, attribute, value))

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
