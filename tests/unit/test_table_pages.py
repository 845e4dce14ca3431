"""Every table's page size is the reader's choice within bounds: ?per_page=100000 renders at most MAX_PER_PAGE rows."""

from __future__ import annotations

import uuid

import django_tables2
import pytest
from django.utils import timezone

import portal.urls  # noqa: F401  (imports every view, hence every table)
from diagnostics_app.addresses.tables import AddressFindingTable
from diagnostics_app.mfa.choices import MfaClass
from diagnostics_app.mfa.tables import MfaUserRowTable
from diagnostics_app.models import AddressFinding, AddressScan, MfaSnapshot, MfaUserRow, WritebackPlan, WritebackPlanRow
from diagnostics_app.writeback.tables import WritebackPlanRowTable
from migrations_app.choices import ListKind, ListState
from migrations_app.models import DistributionList, Migration
from migrations_app.tables import DistributionListTable, MigrationTable
from portal.audit.models import AuditEvent
from portal.audit.tables import AuditEventTable
from portal.jobs.models import Job
from portal.jobs.tables import JobTable
from portal.tables import MAX_PER_PAGE, PortalTable, clamp_per_page

pytestmark = pytest.mark.django_db

ROWS = MAX_PER_PAGE + 7


def _jobs(user):
    Job.objects.bulk_create(Job(kind="test_steps", name="Test steps", target=f"t{i}", user=user) for i in range(ROWS))


def _audit(user):
    AuditEvent.objects.bulk_create(AuditEvent(actor=user, actor_name=user.username, action="test.action",
                                              target=f"t{i}") for i in range(ROWS))


def _lists(user):
    ou = "OU=Lists,DC=contoso,DC=com"
    DistributionList.objects.bulk_create(DistributionList(
        guid=uuid.uuid4(), name=f"list{i}", dn=f"CN=list{i},{ou}", display_name=f"list{i}",
        mail=f"list{i}@contoso.com", alias=f"list{i}", ou=ou, kind=ListKind.DISTRIBUTION, state=ListState.SYNCED,
        inventoried_at=timezone.now()) for i in range(ROWS))


def _migrations(user):
    Migration.objects.bulk_create(Migration(mail=f"list{i}@contoso.com", requested_by=user) for i in range(ROWS))


def _mfa_rows(user):
    snapshot = MfaSnapshot.objects.create(taken_at=timezone.now(), total_users=ROWS)
    MfaUserRow.objects.bulk_create(MfaUserRow(snapshot=snapshot, user_id=f"id-{i}", upn=f"u{i}@contoso.com",
                                              classification=MfaClass.MFA_CAPABLE) for i in range(ROWS))


def _writeback_rows(user):
    plan = WritebackPlan.objects.create(version=1, container="OU=W,DC=lab,DC=example", plan_hash="0" * 64)
    WritebackPlanRow.objects.bulk_create(WritebackPlanRow(plan=plan, section="planned", object_id=f"id-{i}",
                                                          display_name=f"g{i}") for i in range(ROWS))


def _address_findings(user):
    scan = AddressScan.objects.create(status="complete", findings_total=ROWS)
    AddressFinding.objects.bulk_create(AddressFinding(
        scan=scan, key=f"k{i}", first_seen=timezone.now(), dn=f"CN=u{i},OU=Users,DC=contoso,DC=com",
        attribute="mail", rule="idfix", severity="error", explanation="x") for i in range(ROWS))


# Every table of the portal, the page it is on, and how to fill it with more rows than one page may hold.
TABLE_PAGES = {
    JobTable: ("/jobs/", _jobs),
    AuditEventTable: ("/audit/", _audit),
    DistributionListTable: ("/dl/", _lists),
    MigrationTable: ("/dl/migrations/", _migrations),
    MfaUserRowTable: ("/diagnostics/mfa/", _mfa_rows),
    WritebackPlanRowTable: ("/diagnostics/writeback/", _writeback_rows),
    AddressFindingTable: ("/diagnostics/address-repair/", _address_findings),
}


def _all_tables(cls=django_tables2.Table):
    for sub in cls.__subclasses__():
        if not sub.__module__.startswith("django_tables2"):
            yield sub
        yield from _all_tables(sub)


def test_every_table_is_a_portal_table_and_is_tested_here():
    tables = {t for t in _all_tables() if t is not PortalTable}
    assert {t for t in tables if not issubclass(t, PortalTable)} == set(), "derive from portal.tables.PortalTable"
    assert tables == set(TABLE_PAGES), "a new table needs its page in TABLE_PAGES"


@pytest.fixture(params=["Administrator", "Auditor"])
def reader(request, client, role_users):
    client.force_login(role_users[request.param])
    client.user = role_users[request.param]
    return client


@pytest.mark.parametrize("table_class", TABLE_PAGES, ids=lambda t: t.__name__)
def test_per_page_is_clamped_on_every_table(reader, table_class):
    url, fill = TABLE_PAGES[table_class]
    fill(reader.user)
    response = reader.get(url, {"per_page": 100000})
    assert response.status_code == 200
    table = response.context["table"]
    assert isinstance(table, table_class)
    assert table.paginator.per_page == MAX_PER_PAGE and len(table.page.object_list) == MAX_PER_PAGE
    bodies = [part.split("</tbody>")[0] for part in response.content.decode().split("<tbody")[1:]]
    assert max(body.count("<tr") for body in bodies) == MAX_PER_PAGE, "the page holds no longer table"
    assert table.paginator.count >= ROWS, "the other rows are on the next pages"


@pytest.mark.parametrize("table_class", TABLE_PAGES, ids=lambda t: t.__name__)
def test_invalid_per_page_gives_the_default(client, role_users, table_class):
    url, fill = TABLE_PAGES[table_class]
    fill(role_users["Auditor"])
    client.force_login(role_users["Auditor"])
    for asked in ("0", "-5", "many", "1e9", ""):
        table = client.get(url, {"per_page": asked}).context["table"]
        assert table.paginator.per_page == table_class._meta.per_page, asked


def test_a_reasonable_choice_is_kept():
    assert clamp_per_page("25") == 25 and clamp_per_page(200) == 200 and clamp_per_page("201") == MAX_PER_PAGE
    assert clamp_per_page(None, default=100) == 100
