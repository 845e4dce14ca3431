"""The names group writeback gives cloud groups (portal/directory/writeback_names.py), one computation for the
lab's sync engine and the rename plan. Examples from the field notes and Microsoft's group writeback docs."""

from __future__ import annotations

import pytest

from portal.connectors import ad
from portal.directory import writeback_names as wn
from portal.lab import sync

OU = "OU=GroupWriteback,DC=lab,DC=example"
OID = "44c6ff41-bf76-4f40-a2a3-5faa6569b75d"  # the field notes' CloudOnlyAzureSecurityStaticWriteback3


def test_field_notes_example_both_formats() -> None:
    names = wn.names_for(object_id=OID, display_name="CloudOnlyAzureSecurityStaticWriteback3", container=OU)
    assert names["default"] == {"cn": f"Group_{OID}", "dn": f"CN=Group_{OID},{OU}"}
    assert names["display_name"]["cn"] == "CloudOnlyAzureSecurityStaticWriteback3_5faa6569b75d"
    assert names["display_name"]["dn"] == f"CN=CloudOnlyAzureSecurityStaticWriteback3_5faa6569b75d,{OU}"
    assert names["display_name"]["truncated"] is False and names["display_name"]["flags"] == []


def test_the_lab_engine_uses_the_same_computation() -> None:
    for name in ("Sales", "x" * 80, "  padded  ", "", None, 'a,b+"c"'):
        assert sync.writeback_cn(object_id=OID, display_name=name, with_display_name=True) == \
            wn.writeback_cn(object_id=OID, display_name=name, with_display_name=True)
    assert sync.writeback_cn(object_id=OID.upper(), display_name="S", with_display_name=False) == f"Group_{OID}"


def test_hostile_characters_are_escaped_and_the_dn_parses_back() -> None:
    hostile = '#1 Sales, EMEA + Partners <Core>; "Q1" \\ R&D=Go'
    named = wn.display_name_cn(object_id=OID, display_name=hostile)
    dn = wn.writeback_dn(OU, named.cn)
    assert dn.startswith('CN=\\#1 Sales\\, EMEA \\+ Partners \\<Core\\>\\; \\"Q1\\" \\\\ R&D\\=Go_5faa6569b75d,')
    assert ad.parse_dn(dn).rdn_value == named.cn and str(ad.parse_dn(dn).parent) == OU
    assert "escaped" in named.flags and set(named.escaped) == set('#,+<>;"\\=')
    assert any("escaped in the DN" in c for c in named.changes)


def test_long_names_are_cut_to_51_so_the_cn_holds_64() -> None:
    long = "A" * 256
    named = wn.display_name_cn(object_id=OID, display_name=long)
    assert named.cn == "A" * 51 + "_5faa6569b75d" and len(named.cn) == 64
    assert named.truncated and named.dropped == "A" * 205 and "truncated" in named.flags
    exactly = wn.display_name_cn(object_id=OID, display_name="B" * 51)
    assert not exactly.truncated and len(exactly.cn) == 64


def test_spaces_blank_and_undocumented_cases_are_flagged() -> None:
    padded = wn.display_name_cn(object_id=OID, display_name="  Finance  ")
    assert padded.cn == "Finance_5faa6569b75d" and padded.flags == ("trimmed",)
    for blank in ("", "     ", None):
        named = wn.display_name_cn(object_id=OID, display_name=blank)
        assert named.cn == f"Group_{OID}" and named.flags == ("blank",)
    assert not wn.FLAGS["blank"][1] and not wn.FLAGS["trimmed"][1] and wn.FLAGS["truncated"][1]


def test_emoji_count_twice_and_are_never_split() -> None:
    name = "x" * 50 + "\U0001F600" + "tail"  # the emoji would need units 51 and 52
    named = wn.display_name_cn(object_id=OID, display_name=name)
    assert named.cn == "x" * 50 + "_5faa6569b75d"
    assert named.dropped == "\U0001F600tail" and "outside_bmp" in named.flags
    assert len(named.cn.encode("utf-16-le")) // 2 <= 64
    short = wn.display_name_cn(object_id=OID, display_name="Team \U0001F680")
    assert short.cn == "Team \U0001F680_5faa6569b75d" and not short.truncated and "outside_bmp" in short.flags


def test_a_bad_object_id_or_container_is_refused() -> None:
    with pytest.raises(wn.InvalidObjectId, match="not a cloud object id"):
        wn.display_name_cn(object_id="Group_1", display_name="x")
    with pytest.raises(ad.InvalidDn):
        wn.names_for(object_id=OID, display_name="x", container="OU=a,,DC=b")


def _row(oid: str, name: str, current: str | None = None, *, with_name: bool = True) -> dict:
    cn = wn.writeback_cn(object_id=oid, display_name=name, with_display_name=with_name)
    return {"object_id": oid, "display_name": name, "planned_dn": wn.writeback_dn(OU, cn),
            "current_dn": current or wn.writeback_dn(OU, wn.default_cn(oid))}


def test_equal_display_names_are_reported_and_case_collisions_caught() -> None:
    a, b = "aaaaaaaa-0000-4000-8000-00000000abcd", "bbbbbbbb-0000-4000-8000-00000000abcd"  # same tail
    c = "cccccccc-0000-4000-8000-000000000001"
    report = wn.find_collisions([_row(a, "Finance Team"), _row(b, "FINANCE TEAM"), _row(c, "Finance team")])
    assert set(report.collisions) == {a, b}  # only the equal tails meet; c's tail differs
    assert report.collisions[a].with_object_ids == (b,)
    assert set(report.same_display_name) == {a, b, c}


def test_a_collision_with_an_object_the_switch_leaves_in_place() -> None:
    a = "aaaaaaaa-0000-4000-8000-00000000abcd"
    squatter = f"CN=Sales_00000000abcd,{OU}"
    report = wn.find_collisions([_row(a, "Sales")], others=[squatter.upper().replace("CN=", "cn=")])
    assert report.collisions[a].with_existing and not report.collisions[a].with_object_ids
    assert not wn.find_collisions([_row(a, "Sales")], others=[f"CN=Other,{OU}"]).collisions


def test_plan_hash_and_diff() -> None:
    a, b = "aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b"
    first = [_row(a, "One"), _row(b, "Two")]
    assert wn.plan_hash(first) == wn.plan_hash(list(reversed(first)))
    renamed = [_row(a, "One"), _row(b, "Two renamed")]
    assert wn.plan_hash(renamed) != wn.plan_hash(first)
    diff = wn.diff_plans(first, renamed)
    assert [(c["object_id"], c["field"]) for c in diff["changed"]] == [(b, "planned_dn")]
    gone = wn.diff_plans(first, [first[0]])
    assert gone["removed"] == [{"object_id": b, "display_name": "Two"}] and not gone["added"]
    assert wn.diff_plans(first, first) == {"added": [], "removed": [], "changed": []}
