"""Bulk mail-enabled groups beside the seeded organisation, for the benchmarks that need a directory's share of
groups (bench/address_scan: issue #13's 100,000 users + 20,000 groups).

Not part of :func:`seed`'s plan: the scenario seed's size follows its users, and a benchmark must be able to add
groups to a 100,000-user seed that took half an hour without rebuilding it. They live in their own OU under the
synced groups (``layout.bulk_groups_ou``), so a seed reset deletes them with the rest, and that OU carries their
own marker: the same ``(groups, seed)`` again writes nothing; another count replaces them.

Each group is what Exchange on-premises writes for a distribution group, and every so often one holds a value the
address scan must report, in the shares the generated source of bench/address_scan uses: a proxyAddresses
holding only the X500 that hybrid writeback brought (the field notes' list), a mailNickname with a character
IdFix reports, and a secondary address another group already has as its mail (a duplicate across attributes).
"""

from __future__ import annotations

import json
import random

from portal.connectors import ad
from portal.connectors.ad import ActiveDirectory, NewEntry
from portal.lab import layout

from .values import (
    GROUP_CLASSES,
    GROUP_UNIVERSAL_DISTRIBUTION,
    MARKER_TAG,
    RDT_DISTRIBUTION_GROUP,
    RTD_MAIL_UNIVERSAL_DISTRIBUTION_GROUP,
    Progress,
    SeedError,
)
from .writing import _reporting

BULK_MARKER_TAG = f"{MARKER_TAG}:bulk-groups"
MAX_BULK_GROUPS = 1_000_000
X500_ONLY_EVERY, BAD_ALIAS_EVERY, DUPLICATE_EVERY = 50, 97, 211


def bulk_group_entries(*, base_dn: str, groups: int, seed: int = 1) -> list[NewEntry]:
    """The ``groups`` entries, as data. Pure: the same arguments give equal entries."""
    if not isinstance(groups, int) or isinstance(groups, bool) or not 0 <= groups <= MAX_BULK_GROUPS:
        raise SeedError(f"groups must be an integer from 0 to {MAX_BULK_GROUPS}, not {groups!r}")
    parent = layout.bulk_groups_ou(base_dn)
    ids = random.Random(f"{BULK_MARKER_TAG}:{seed}")  # str seeds hash with SHA-512: stable across runs
    entries = []
    for n in range(groups):
        alias = f"team-{n:06d}"
        mail = f"{alias}@{layout.PRIMARY_DOMAIN}"
        x500 = f"X500:/o=ExchangeLabs/ou={layout.ADMIN_GROUP}/cn=Recipients/cn={ids.getrandbits(128):032x}-{alias}"
        proxies = [f"SMTP:{mail}", f"smtp:{alias}@{layout.ROUTING_DOMAIN}", x500]
        nickname = alias
        if n % X500_ONLY_EVERY == 1:
            proxies = [x500]
        elif n % DUPLICATE_EVERY == 3:
            proxies.append(f"smtp:team-{n - 1:06d}@{layout.PRIMARY_DOMAIN}")
        if n % BAD_ALIAS_EVERY == 2:
            nickname = f"{alias}&co"
        entries.append(NewEntry(ad.child_dn(parent, "CN", f"Team {n:06d}"), GROUP_CLASSES, {
            "sAMAccountName": f"team{n:06d}", "groupType": GROUP_UNIVERSAL_DISTRIBUTION,
            "displayName": f"Team {n:06d}", "mail": mail, "mailNickname": nickname, "proxyAddresses": proxies,
            "legacyExchangeDN": f"/o={layout.EXCHANGE_ORG}/ou={layout.ADMIN_GROUP}/cn=Recipients/cn={alias}",
            "msExchRecipientTypeDetails": RTD_MAIL_UNIVERSAL_DISTRIBUTION_GROUP,
            "msExchRecipientDisplayType": RDT_DISTRIBUTION_GROUP,
        }))
    return entries


def ensure_bulk_groups(directory: ActiveDirectory, *, base_dn: str, groups: int, seed: int = 1,
                       progress: Progress | None = None) -> int:
    """The lab holding exactly these bulk groups (after :func:`seed`, which made their parent OU); returns how many
    were created (0 when they were there already)."""
    entries = bulk_group_entries(base_dn=base_dn, groups=groups, seed=seed)
    report: Progress = progress or (lambda phase, done, total: None)
    ou = layout.bulk_groups_ou(base_dn)
    wanted = _marker(groups=groups, seed=seed, state="complete")
    if directory.exists(ou):
        if wanted in directory.read(ou, attributes=["description"]).get("description"):
            return 0
        _empty(directory, ou, report)
        directory.modify(ou, replace={"description": _marker(groups=groups, seed=seed, state="building")})
    else:
        if not directory.exists(layout.groups_ou(base_dn)):
            raise SeedError(f"{layout.groups_ou(base_dn)} does not exist: seed the lab first")
        directory.create_ou(parent=layout.groups_ou(base_dn), name=layout.BULK_GROUPS_OU,
                            description=_marker(groups=groups, seed=seed, state="building"))
    created = directory.add_many(_reporting(entries, "bulk groups", report))
    directory.modify(ou, replace={"description": wanted})
    return created


def _marker(*, groups: int, seed: int, state: str) -> str:
    return json.dumps({"seeder": BULK_MARKER_TAG, "groups": groups, "seed": seed, "state": state}, sort_keys=True)


def _empty(directory: ActiveDirectory, ou: str, report: Progress) -> None:
    """Another count or an unfinished run: its groups go, one by one (they hold no members)."""
    found = [o.dn for o in directory.search(filter=ad.MATCH_ALL, base=ou, attributes=["objectClass"]) if o.dn != ou]
    for index, dn in enumerate(found, start=1):
        directory.delete(dn)
        if index % 500 == 0 or index == len(found):
            report("bulk groups reset", index, len(found))

