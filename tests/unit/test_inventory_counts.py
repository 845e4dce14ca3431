"""The DL inventory's counts line: lists per state and with dependencies, read from indexes (one aggregate with a
filter per figure read every list of a 10,000-list inventory on every view under bench/load)."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from migrations_app.choices import ListState
from migrations_app.models import DistributionList
from migrations_app.selectors import inventory_counts

pytestmark = pytest.mark.django_db


def _list(n: int, state: str, dependencies: int) -> DistributionList:
    return DistributionList.objects.create(guid=uuid.uuid4(), name=f"L{n}", dn=f"CN=L{n},OU=Lists,DC=x",
                                           ou="OU=Lists,DC=x", state=state, dependency_count=dependencies,
                                           inventoried_at=timezone.now())


def test_the_counts_line_per_state_and_with_dependencies(client, role_users):
    for n, (state, dependencies) in enumerate([(ListState.SYNCED, 0), (ListState.SYNCED, 3), (ListState.MIGRATED, 1),
                                               (ListState.MIGRATED, 0), (ListState.MIGRATED, 0)]):
        _list(n, state, dependencies)
    _list(9, next(s for s in ListState if s not in (ListState.SYNCED, ListState.MIGRATED)), 2)
    assert inventory_counts() == {"total": 6, "synced": 2, "migrated": 3, "with_dependencies": 3}
    client.force_login(role_users["Auditor"])
    page = client.get("/dl/").content.decode()
    assert "6 lists inventoried: 2 synced, 3 migrated, 3 with dependencies." in page


def test_no_list_inventoried_yet():
    assert inventory_counts() == {"total": 0, "synced": 0, "migrated": 0, "with_dependencies": 0}


def test_the_lists_with_dependencies_are_counted_from_an_index(settings):
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the plan is SQLite's")
    plan = DistributionList.objects.filter(dependency_count__gt=0).order_by().values("pk").explain()
    assert "SEARCH" in plan and "dependency_count" in plan, plan
