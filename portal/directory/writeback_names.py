"""The names group writeback v2 gives cloud groups in AD, for the lab's sync engine and the portal alike.

Pure (no Django, no connection): the lab's engine (:mod:`portal.lab.sync`) names the groups it writes back
with :func:`writeback_cn`, and the writeback rename plan (``diagnostics_app.writeback``) predicts the same
names with :func:`names_for`, so a rehearsal proves exactly what the plan promised.

What the product documents ("Plan for / Enable Microsoft Entra Connect group writeback"; the field notes,
"Enabling the cloud display name feature"):

* default: ``CN=Group_<objectId>``;
* with "Writeback Group Distinguished Name with cloud Display Name": ``CN=<displayName>_<last 12 characters
  of objectId>``, the value escaped by the sync rule's ``EscapeDNComponent`` (RFC 4514);
* ``cn`` holds at most 64 characters (the schema's ``rangeUpper``), so ``<name>_<12>`` leaves 51 for the name.

What it does not document, and this module decides (each case carries a flag so a plan shows it for a
manual check instead of pretending to know): how the name is cut (here: its first 51 UTF-16 code units,
as AD counts ``cn``, never splitting a surrogate pair, so an emoji is dropped whole), what happens to
leading and trailing spaces (here: removed, as AD would otherwise need them escaped), and a name that is
empty or only spaces (here: the default ``Group_<objectId>``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from portal.connectors.ad.dn import InvalidDn, child_dn, parse_dn

CN_MAX = 64
TAIL = 12
NAME_MAX = CN_MAX - 1 - TAIL  # "<name>_<12 characters>" within cn's 64

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")

# flag -> (sentence for a reader, whether the product's behaviour there is documented)
FLAGS: dict[str, tuple[str, bool]] = {
    "truncated": ("the display name is longer than 51 characters: only its first 51 are kept", True),
    "escaped": ("characters that must be escaped in a DN (, + \" \\ < > ; = or a leading #)", True),
    "trimmed": ("leading or trailing spaces are dropped (the product's handling is not documented)", False),
    "blank": ("the display name is empty or only spaces: the group keeps Group_<objectId> "
              "(the product's handling is not documented)", False),
    "control_characters": ("control characters in the display name (written as \\XX; the product's handling "
                           "is not documented)", False),
    "outside_bmp": ("characters outside the Basic Multilingual Plane (emoji): AD counts them twice towards "
                    "64; where the product cuts them is not documented", False),
}


class InvalidObjectId(ValueError):
    """The object id is not a GUID: no writeback name can be computed from it."""


def check_object_id(object_id: Any) -> str:
    text = str(object_id or "").strip().lower()
    if not _GUID.match(text):
        raise InvalidObjectId(f"{object_id!r} is not a cloud object id (a GUID such as "
                              "44c6ff41-bf76-4f40-a2a3-5faa6569b75d)")
    return text


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _cut(text: str, units: int) -> str:
    """The longest prefix of ``text`` within ``units`` UTF-16 code units (a surrogate pair stays whole)."""
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > units:
            return text[:i]
    return text


@dataclass(frozen=True)
class DisplayNameCn:
    cn: str  # unescaped
    truncated: bool
    flags: tuple[str, ...]
    dropped: str = ""  # the part of the (trimmed) display name cut off
    escaped: tuple[str, ...] = ()  # characters the DN escapes

    @property
    def changes(self) -> list[str]:
        """What a reader sees differ between the display name and the new cn, one sentence each."""
        out = []
        if "blank" in self.flags:
            out.append("no usable display name: the cn stays Group_<objectId>")
        if "trimmed" in self.flags:
            out.append("leading/trailing spaces removed")
        if self.truncated:
            out.append(f"cut after 51 characters, dropping {self.dropped!r}")
        if self.escaped:
            out.append("escaped in the DN: " + " ".join(self.escaped))
        if "control_characters" in self.flags:
            out.append("control characters written as hex escapes")
        return out


def default_cn(object_id: str) -> str:
    return f"Group_{check_object_id(object_id)}"


def display_name_cn(*, object_id: str, display_name: str | None) -> DisplayNameCn:
    """``<displayName>_<last 12 of objectId>`` as the display-name option names the group, and why it
    differs from the display name."""
    oid = check_object_id(object_id)
    raw = display_name or ""
    name = raw.strip(" ")
    flags: list[str] = []
    if name != raw and name:
        flags.append("trimmed")
    if not name:
        return DisplayNameCn(cn=f"Group_{oid}", truncated=False, flags=("blank",))
    kept = _cut(name, NAME_MAX)
    truncated = kept != name
    if truncated:
        flags.append("truncated")
    if any(ord(ch) > 0xFFFF for ch in name):
        flags.append("outside_bmp")
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in kept):
        flags.append("control_characters")
    escaped = tuple(sorted({ch for i, ch in enumerate(kept) if ch in '"+,;<>\\=' or (i == 0 and ch == "#")}))
    if escaped:
        flags.append("escaped")
    return DisplayNameCn(cn=f"{kept}_{oid[-TAIL:]}", truncated=truncated, flags=tuple(flags),
                         dropped=name[len(kept):], escaped=escaped)


def writeback_cn(*, object_id: str, display_name: str | None, with_display_name: bool) -> str:
    """The cn group writeback gives a cloud group (unescaped; build the DN with :func:`writeback_dn`)."""
    if not with_display_name:
        return default_cn(object_id)
    return display_name_cn(object_id=object_id, display_name=display_name).cn


def writeback_dn(container: str, cn: str) -> str:
    """``CN=<cn escaped>,<container>``; raises :class:`InvalidDn` for a malformed container."""
    return child_dn(container, "CN", cn)


def names_for(*, object_id: str, display_name: str | None, container: str) -> dict[str, Any]:
    """Both names of one group (``manage.py writeback_dn``'s output line)."""
    parse_dn(container)  # InvalidDn before anything else
    default = default_cn(object_id)
    named = display_name_cn(object_id=object_id, display_name=display_name)
    return {
        "default": {"cn": default, "dn": writeback_dn(container, default)},
        "display_name": {"cn": named.cn, "dn": writeback_dn(container, named.cn), "truncated": named.truncated,
                         "flags": list(named.flags), "changes": named.changes},
    }


def dn_key(dn: str) -> str:
    """The comparison form of a DN (AD compares names case-insensitively)."""
    try:
        return parse_dn(dn).normalized()
    except InvalidDn:
        return dn.casefold()


@dataclass(frozen=True)
class Collision:
    object_id: str
    planned_dn: str
    with_object_ids: tuple[str, ...] = ()  # other planned groups landing on the same DN
    with_existing: tuple[str, ...] = ()  # DNs of objects already there that the switch does not move


@dataclass
class CollisionReport:
    collisions: dict[str, Collision] = field(default_factory=dict)
    same_display_name: dict[str, tuple[str, ...]] = field(default_factory=dict)  # oid -> other oids


def find_collisions(planned: Iterable[Mapping[str, Any]], *, others: Iterable[str] = ()) -> CollisionReport:
    """Planned DNs that meet inside the OU (case-insensitively): two groups on one name, or a group on the
    name of an object the switch leaves where it is (``others``: DNs in the OU outside the plan).

    ``planned`` rows have ``object_id``, ``current_dn``, ``planned_dn`` and ``display_name``. A group's own
    current DN is no collision; another planned group's current DN is only one if that group stays put.
    Equal display names are not a DN collision (the tails differ) but are reported: people confuse them.
    """
    rows = list(planned)
    report = CollisionReport()
    by_key: dict[str, list[str]] = {}
    for row in rows:
        by_key.setdefault(dn_key(row["planned_dn"]), []).append(row["object_id"])
    staying = {dn_key(r["current_dn"]): r["object_id"] for r in rows
               if r.get("current_dn") and dn_key(r["current_dn"]) == dn_key(r["planned_dn"])}
    other_keys = {dn_key(d): d for d in others}
    for row in rows:
        key = dn_key(row["planned_dn"])
        mates = tuple(o for o in by_key[key] if o != row["object_id"])
        existing = tuple(d for k, d in other_keys.items() if k == key)
        stay = staying.get(key)
        if stay and stay != row["object_id"] and stay not in mates:
            mates += (stay,)
        if mates or existing:
            report.collisions[row["object_id"]] = Collision(row["object_id"], row["planned_dn"], mates, existing)
    by_name: dict[str, list[str]] = {}
    for row in rows:
        name = (row.get("display_name") or "").strip(" ").casefold()
        if name:
            by_name.setdefault(name, []).append(row["object_id"])
    for oids in by_name.values():
        if len(oids) > 1:
            for oid in oids:
                report.same_display_name[oid] = tuple(o for o in oids if o != oid)
    return report


def plan_hash(rows: Iterable[Mapping[str, Any]]) -> str:
    """What an approval pins: every group's object id, current DN and planned DN (order-free)."""
    canon = sorted((str(r["object_id"]).lower(), dn_key(r.get("current_dn") or ""), dn_key(r["planned_dn"]))
                   for r in rows)
    return hashlib.sha256(json.dumps(canon, separators=(",", ":")).encode()).hexdigest()


DIFF_FIELDS = ("current_dn", "planned_dn", "flags", "risks", "collides")


def diff_plans(previous: Iterable[Mapping[str, Any]], current: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What changed between two plans, per object id: groups added, removed, and fields changed."""
    before = {str(r["object_id"]).lower(): r for r in previous}
    after = {str(r["object_id"]).lower(): r for r in current}
    changed = []
    for oid in sorted(set(before) & set(after)):
        for name in DIFF_FIELDS:
            old, new = before[oid].get(name), after[oid].get(name)
            if name in ("flags", "risks"):
                old, new = sorted(old or []), sorted(new or [])
            elif name.endswith("_dn"):
                if dn_key(old or "") == dn_key(new or ""):
                    continue
            if old != new:
                changed.append({"object_id": oid, "display_name": after[oid].get("display_name") or "",
                                "field": name, "before": old, "after": new})
    return {
        "added": [{"object_id": o, "display_name": after[o].get("display_name") or ""}
                  for o in sorted(set(after) - set(before))],
        "removed": [{"object_id": o, "display_name": before[o].get("display_name") or ""}
                    for o in sorted(set(before) - set(after))],
        "changed": changed,
    }


__all__ = [
    "CN_MAX", "FLAGS", "NAME_MAX", "TAIL", "Collision", "CollisionReport", "DisplayNameCn", "InvalidObjectId",
    "check_object_id", "default_cn", "diff_plans", "display_name_cn", "dn_key",
    "find_collisions", "names_for", "plan_hash", "writeback_cn", "writeback_dn",
]
