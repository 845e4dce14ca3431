"""The bulk groups a benchmark adds beside the lab seed (portal/lab/seed/bulk.py): deterministic, under their
own OU, and carrying the address problems the scan must find in the shares the benchmark counts on."""

from __future__ import annotations

from collections import Counter

import pytest

from diagnostics_app.addresses.rules import Rule, ScanConfig, entry, evaluate
from portal.lab import layout
from portal.lab.seed import SeedError
from portal.lab.seed.bulk import bulk_group_entries

BASE = "DC=lab,DC=example"


def test_bulk_groups_are_deterministic_unique_and_under_their_own_ou():
    first = bulk_group_entries(base_dn=BASE, groups=500, seed=1)
    assert first == bulk_group_entries(base_dn=BASE, groups=500, seed=1)
    assert first != bulk_group_entries(base_dn=BASE, groups=500, seed=2)  # the X500 ids follow the seed
    assert len({e.dn.lower() for e in first}) == len({e.attributes["sAMAccountName"] for e in first}) == 500
    assert all(e.dn.endswith("," + layout.bulk_groups_ou(BASE)) for e in first)
    assert layout.bulk_groups_ou(BASE).endswith(layout.groups_ou(BASE))  # in sync scope, deleted by a reset


def test_bulk_groups_hold_what_the_address_scan_reports():
    groups = bulk_group_entries(base_dn=BASE, groups=1000)
    items = [entry(dn=g.dn, object_class=list(g.object_class), attributes=g.attributes) for g in groups]
    found, skipped = evaluate(items, config=ScanConfig(verified_domains=(layout.PRIMARY_DOMAIN,),
                                                       initial_domain=layout.TENANT_DOMAIN))
    rules = Counter(f.rule for f in found)
    assert skipped == []
    assert rules[Rule.X500_ONLY] == len(range(1, 1000, 50))
    assert {f.attribute for f in found if f.rule == Rule.IDFIX} == {"mailNickname"}
    duplicates = [f for f in found if f.rule == Rule.DUPLICATE]
    assert {f.dn for f in duplicates} == {g.dn for n, g in enumerate(groups) if n % 211 == 3} | {
        g.dn for n, g in enumerate(groups) if n % 211 == 2}


def test_bad_group_count_is_refused():
    with pytest.raises(SeedError, match="groups must be an integer"):
        bulk_group_entries(base_dn=BASE, groups=-1)
