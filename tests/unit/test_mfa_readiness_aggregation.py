"""Roll-out readiness and the report's headline are SQL aggregates (GROUP BY wave and class, conditional counts)
cached per snapshot: on a varied snapshot they give exactly what the former row-by-row Python loop gave, read
the page of interrupted users only, and compute a snapshot's counts once.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from diagnostics_app.mfa import policy_selectors, selectors
from diagnostics_app.mfa.choices import MFA_CLASS_COLOURS, MfaClass
from diagnostics_app.models import MfaSnapshot, MfaUserRow

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

GROUPS = {"g-a": "Alpha", "g-b": "beta", "g-c": "Gamma", "g-d": "alpha"}  # two names alike but for case


def python_readiness(snapshot, *, group_id="", wave_by="department"):
    """The former implementation, row by row (kept here as the reference): totals, reasons, waves with their
    members, and every interrupted user, in UPN order."""
    rows = MfaUserRow.objects.filter(snapshot=snapshot, deleted=False)
    if group_id:
        rows = rows.filter(groups_key__contains=f",{group_id},")
    names = snapshot.groups
    out = {"targeted": 0, "ready": 0, "skipped_disabled": 0, "interrupted_total": 0, "unknown": 0,
           "by_reason": {}, "interrupted": []}
    waves = {}
    for r in rows.values().order_by("upn", "id"):
        if r["enabled"] is False:
            out["skipped_disabled"] += 1
            continue
        out["targeted"] += 1
        cls = r["classification"]
        unknown = cls == MfaClass.NOT_EVALUATED
        if wave_by == "group":
            gids = sorted((g for g in r["group_ids"] if g in names), key=lambda g: names[g].lower())
            key = names[gids[0]] if gids else "(in no group)"
        else:
            key = r["department"] or "(no department)"
        wave = waves.setdefault(key, {"name": key, "size": 0, "ready": 0, "interrupted": 0, "unknown": 0,
                                      "user_ids": []})
        wave["size"] += 1
        wave["user_ids"].append(r["user_id"])
        if unknown:
            out["unknown"] += 1
            wave["unknown"] += 1
        elif not r["can_satisfy_mfa"]:
            out["interrupted_total"] += 1
            wave["interrupted"] += 1
            label = MfaClass(cls).label
            out["by_reason"][label] = out["by_reason"].get(label, 0) + 1
            out["interrupted"].append(r["id"])
        else:
            out["ready"] += 1
            wave["ready"] += 1
    out["waves"] = sorted(waves.values(), key=lambda w: (-(w["ready"] / w["size"]), w["name"].lower()))
    return out


@pytest.fixture
def varied():
    """Every combination that matters: enabled yes/no/unknown, can answer yes/no/unknown, every class, deleted
    rows, blank departments, users in no group, in groups the snapshot does not name, several groups, equal UPNs."""
    rnd = random.Random(1706)
    snapshot = MfaSnapshot.objects.create(taken_at=datetime(2026, 12, 1, tzinfo=UTC), total_users=600,
                                          groups=GROUPS, departments=["Sales", "Finance", "finance"])
    classes = [c.value for c in MfaClass]
    rows = []
    for n in range(600):
        gids = rnd.sample([*GROUPS, "g-unnamed"], rnd.randint(0, 3))
        rows.append(MfaUserRow(
            snapshot=snapshot, user_id=f"u-{n}", upn="" if n % 97 == 0 else f"user{rnd.randint(0, 450):04}@x.example",
            display_name=f"User {n}", department=rnd.choice(["Sales", "Finance", "finance", ""]),
            enabled=rnd.choice([True, True, True, False, None]), classification=rnd.choice(classes),
            can_satisfy_mfa=rnd.choice([True, True, False, None]), deleted=n % 31 == 0,
            reasons=rnd.choice([[], ["no method"], ["pending app", "second"]]), group_ids=gids,
            groups_key=("," + ",".join(gids) + ",") if gids else ""))
    MfaUserRow.objects.bulk_create(rows)
    # another snapshot's rows never count
    other = MfaSnapshot.objects.create(taken_at=datetime(2026, 11, 1, tzinfo=UTC), total_users=1, groups=GROUPS)
    MfaUserRow.objects.create(snapshot=other, user_id="u-x", upn="x@x.example", enabled=True,
                              classification=MfaClass.NOT_REGISTERED, can_satisfy_mfa=False, group_ids=["g-a"],
                              groups_key=",g-a,")
    return snapshot


@pytest.mark.parametrize("wave_by", ["department", "group"])
@pytest.mark.parametrize("group_id", ["", "g-a", "g-unnamed", "g-none"])
def test_aggregated_readiness_equals_the_row_by_row_computation(varied, wave_by, group_id):
    want = python_readiness(varied, group_id=group_id, wave_by=wave_by)
    got = selectors.readiness(varied, group_id=group_id, wave_by=wave_by, list_limit=None)
    assert {k: getattr(got, k) for k in ("targeted", "ready", "skipped_disabled", "interrupted_total", "unknown")} \
        == {k: want[k] for k in ("targeted", "ready", "skipped_disabled", "interrupted_total", "unknown")}
    assert got.by_reason == want["by_reason"]
    assert [(w.name, w.size, w.ready, w.interrupted, w.unknown) for w in got.waves] \
        == [(w["name"], w["size"], w["ready"], w["interrupted"], w["unknown"]) for w in want["waves"]]
    assert [u["id"] for u in got.interrupted] == want["interrupted"]
    assert selectors.wave_buckets(got) == [(w["name"], w["user_ids"]) for w in want["waves"]]
    if not group_id:
        assert want["targeted"] > want["interrupted_total"] > 50 and want["skipped_disabled"] and want["unknown"]


def test_each_page_of_interrupted_users_is_the_matching_slice(varied):
    everyone = python_readiness(varied)["interrupted"]
    pages = [selectors.readiness(varied, list_limit=40, list_offset=offset) for offset in range(0, len(everyone), 40)]
    assert [u["id"] for page in pages for u in page.interrupted] == everyone
    first = pages[0].interrupted[0]
    row = MfaUserRow.objects.get(pk=first["id"])
    assert (first["upn"], first["label"], first["colour"], first["why"]) == (
        row.upn, MfaClass(row.classification).label, MFA_CLASS_COLOURS[MfaClass(row.classification)],
        (row.reasons or [""])[0])
    assert selectors.readiness(varied, list_limit=40, list_offset=len(everyone)).interrupted == []
    assert selectors.readiness(varied, list_limit=0).interrupted == []


def test_headline_counts_match_the_rows(varied):
    tiles = selectors.headline(varied)
    tenant = python_readiness(varied)
    assert tiles["capable"] == MfaUserRow.objects.filter(snapshot=varied, can_satisfy_mfa=True).count()
    assert (tiles["interrupted"], tiles["targeted"], tiles["disabled_left_out"], tiles["not_evaluated_left_out"]) \
        == (tenant["interrupted_total"], tenant["targeted"], tenant["skipped_disabled"], tenant["unknown"])


def test_counts_are_grouped_in_sql_and_computed_once_per_snapshot(varied):
    with CaptureQueriesContext(connection) as first:
        selectors.readiness(varied, list_limit=25)
    sql = [q["sql"] for q in first.captured_queries]
    # one aggregate for the counts, one bounded read for the page shown: never the whole snapshot row by row
    assert len(sql) == 2 and "GROUP BY" in sql[0] and "COUNT(" in sql[0] and "LIMIT 25" in sql[1]
    with CaptureQueriesContext(connection) as again:
        selectors.readiness(varied, list_limit=0)
        selectors.headline(varied)
    assert len(again.captured_queries) == 1  # the headline's "can answer" count, then cached too
    with CaptureQueriesContext(connection) as third:
        selectors.headline(varied)
    assert third.captured_queries == []
    # another scope is another aggregate
    with CaptureQueriesContext(connection) as scoped:
        selectors.readiness(varied, group_id="g-b", wave_by="group", list_limit=0)
    assert len(scoped.captured_queries) == 1


def test_the_trend_row_of_a_snapshot_repeats_its_tiles(varied):
    """The report showed three "interrupted" figures for one snapshot: the tile (enabled accounts that cannot
    answer), the trend row (three classes over every user, disabled ones included, administrators without a
    method left out) and the conditional access count. The tile and the trend are one concept: one selector."""
    tiles = selectors.headline(varied)
    row = selectors.trend()[-1]
    assert row["id"] == varied.pk
    assert (row["interrupted"], row["interrupted_pct"], row["targeted"]) == (
        tiles["interrupted"], tiles["interrupted_pct"], tiles["targeted"])
    assert (row["capable"], row["capable_pct"]) == (tiles["capable"], tiles["capable_pct"])


def test_conditional_access_outcomes_count_the_same_enabled_accounts(varied):
    rnd = random.Random(7)
    rows = list(MfaUserRow.objects.filter(snapshot=varied))
    for r in rows:
        r.policy_outcome = rnd.choice(["covered_able", "covered_interrupted", "not_covered", "not_evaluated"])
    MfaUserRow.objects.bulk_update(rows, ["policy_outcome"])
    enabled = [r for r in rows if r.enabled is not False and not r.deleted]
    got = {o["value"]: o["count"] for o in policy_selectors.outcome_breakdown(varied)}
    assert got == {v: sum(r.policy_outcome == v for r in enabled) for v in got}
    assert sum(got.values()) == selectors.readiness(varied, list_limit=0).targeted
