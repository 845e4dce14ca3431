"""portal.bulk.insert_rows writes what bulk_create writes: the same rows read back through the ORM, on SQLite and
(marked postgres) on PostgreSQL's jsonb; fields it cannot write plainly are refused before any row."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction
from django.utils import timezone

from diagnostics_app.models import MfaSnapshot, MfaUserRow
from migrations_app.models import DistributionList
from portal.bulk import insert_rows

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def rows(snapshot: MfaSnapshot) -> list[dict]:
    odd = {"report": None, "events": [{"id": "e1", "time": "2026-12-01T10:00:00+00:00", "detail": "Zoë's “Pixel” ✓",
                                       "added_devices": ["Pixel 8"], "had_devices": 0}],
           "nested": {"deep": [1, 2.5, True, None, {"x": []}]}, 7: "a key that is not text"}
    return [
        dict(snapshot_id=snapshot.pk, user_id="u1", upn="zoe@contoso.com", display_name="Zoë <script>",
             user_type="Member",
             enabled=True, licensed=None, department="Sales", is_admin=False, classification="mfa_capable",
             can_satisfy_mfa=True, usable=["authenticator"], registered=["authenticator", "phone"],
             usable_key=",authenticator,", group_ids=["g1"], groups_key=",g1,", flags=[], reasons=["Can answer MFA."],
             evidence=odd, question="", deleted=False, policy_outcome="covered_able",
             policy_hits=[{"policy_id": "p", "status": "able"}], policy_reasons=[], policy_key=",p=able,"),
        # everything left to its default
        dict(snapshot_id=snapshot.pk, user_id="u2", classification="not_registered"),
        dict(snapshot_id=snapshot.pk, user_id="u3", classification="not_evaluated", enabled=None, evidence={},
             reasons=["No registration report row."], deleted=True),
    ]


def stored(snapshot: MfaSnapshot) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "id"}
            for row in MfaUserRow.objects.filter(snapshot=snapshot).order_by("user_id").values()]


def snapshot() -> MfaSnapshot:
    return MfaSnapshot.objects.create(taken_at=datetime(2026, 12, 3, tzinfo=UTC))


def test_rows_read_back_as_bulk_creates_rows_do() -> None:
    by_orm, by_insert = snapshot(), snapshot()
    MfaUserRow.objects.bulk_create(MfaUserRow(**row) for row in rows(by_orm))
    assert insert_rows(MfaUserRow, rows(by_insert), batch=2) == 3  # two statements
    expected = [{**row, "snapshot_id": by_insert.pk} for row in stored(by_orm)]
    assert stored(by_insert) == expected
    assert stored(by_insert)[0]["evidence"]["7"] == "a key that is not text"


def test_date_times_read_back_as_a_save_writes_them_and_auto_now_add_takes_the_statements_time() -> None:
    taken = datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=UTC)
    before = timezone.now()
    assert insert_rows(MfaSnapshot, [{"taken_at": taken}, {"taken_at": taken.astimezone(timezone.get_fixed_timezone(
        -300))}]) == 2
    by_orm = MfaSnapshot.objects.create(taken_at=taken)
    written = list(MfaSnapshot.objects.exclude(pk=by_orm.pk).order_by("pk"))
    assert [s.taken_at for s in written] == [by_orm.taken_at, by_orm.taken_at]
    assert all(before <= s.created_at <= by_orm.created_at for s in written)


def test_fields_it_cannot_write_plainly_are_refused_before_any_row() -> None:
    with pytest.raises(TypeError, match="DistributionList.guid: UUIDField is not supported"):
        insert_rows(DistributionList, [{"name": "x"}])
    target = snapshot()
    bad = [*rows(target), {"snapshot_id": target.pk, "user_id": "u4", "no_such_field": 1}]
    with pytest.raises(TypeError, match="MfaUserRow has no field"), transaction.atomic():
        insert_rows(MfaUserRow, bad, batch=10)
    assert stored(target) == []
