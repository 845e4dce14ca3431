"""Names, departments and alias rules the seed's objects are built from; entry helpers."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from portal.connectors.ad import NewEntry

FIRST_NAMES = (
    "Anna", "Ben", "Carla", "David", "Eva", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Karin", "Lars", "Maria",
    "Nils", "Olga", "Pieter", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Willem", "Xenia", "Yusuf", "Zoe",
    "Amir", "Bianca", "Chen", "Daan", "Elif", "Finn", "Hana", "Ivan", "Julia", "Kofi", "Lena", "Marco", "Nadia",
    "Oscar", "Priya", "Rafael", "Sofia", "Tomas", "Ulla", "Victor", "Wen", "Yara", "Aiko", "Bruno",
)
LAST_NAMES = (
    "Berg", "Jansen", "Novak", "Rossi", "Schmidt", "Dubois", "Kowalski", "Larsen", "Moreau", "Nielsen", "Okafor",
    "Petrov", "Quispe", "Romano", "Silva", "Tanaka", "Ueda", "Visser", "Weber", "Yilmaz", "Zhang", "Andersson",
    "Bakker", "Costa", "De Vries", "Eriksen", "Fischer", "Garcia", "Haddad", "Ibrahim", "Johansson", "Kim",
    "Lopez", "Meyer", "Nakamura", "Olsen", "Peeters", "Ramos", "Smit", "Torres", "Van Dijk", "Wagner", "Young",
    "Ali", "Brown", "Chopra", "Diaz", "Evans", "Fontaine", "Gruber",
)
DEPARTMENTS = (
    "Sales", "Finance", "Engineering", "Marketing", "Operations", "Legal", "Support", "Research", "Logistics",
    "Procurement", "Human Resources", "Facilities",
)
SITES = ("Amsterdam", "Berlin", "Lisbon", "Oslo", "Prague", "Vienna", "Madrid", "Dublin")
# Exactly 64 characters: the limit of cn and of Exchange object names.
LONG_LIST_NAME = "Global Procurement and Vendor Management Steering Committee EMEA"
LIST_TOPICS = (
    "Team", "Announcements", "Leads", "Project Board", "Newsletter", "Social Club", "On-Call", "Managers",
    "Community", "Updates",
)


@dataclass
class _Person:
    first: str
    last: str
    display: str
    alias: str
    sam: str




# Attributes whose values are DNs of other objects (creation order depends on them).
_LINK_ATTRIBUTES = frozenset(a.lower() for a in (
    "member", "managedBy", "authOrig", "unauthOrig", "dLMemSubmitPerms", "dLMemRejectPerms",
    "msExchModeratedByLink", "msExchBypassModerationLink", "msExchCoManagedByLink", "publicDelegates",
    "altRecipient",
))


def _departments(count: int) -> list[str]:
    count = max(4, count)
    names = []
    for index in range(count):
        name = DEPARTMENTS[index % len(DEPARTMENTS)]
        if index >= len(DEPARTMENTS):
            name += f" {SITES[(index // len(DEPARTMENTS) - 1) % len(SITES)]}"
            if index >= len(DEPARTMENTS) * (len(SITES) + 1):
                name += f" {index}"
        names.append(name)
    return names


def _alias_text(text: str) -> str:
    """An Exchange-style alias: ASCII letters, digits, . - _; accents folded; lower case."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    out = []
    for ch in folded.replace(" ", "-"):
        if ch.isalnum() or ch in ".-_":
            out.append(ch)
    return "".join(out).strip(".-")[:64]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _pick(entry: NewEntry, *names: str) -> dict[str, list[Any]]:
    return {name: _as_list(entry.attributes[name]) if name in entry.attributes else [] for name in names}
