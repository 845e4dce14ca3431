"""Every table's rows are written by portal.tables.table_row_html (includes/table.html): the same <tr> and <td>
HTML, byte for byte, as django-tables2's own template writes, on each table's real page, with values that take
each path of a cell (choices, links, empty values and defaults, related objects, escaping); and without
django-tables2's per-cell code, which is what made a 50-row page slow."""

from __future__ import annotations

import re
import uuid

import pytest
from django.utils import timezone
from django_tables2.rows import BoundRow

from diagnostics_app.models import AddressFinding, AddressScan, MfaSnapshot, MfaUserRow, WritebackPlan, WritebackPlanRow
from migrations_app.choices import ListKind, ListState
from migrations_app.models import DistributionList, Migration
from portal.audit.models import AuditEvent
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job

from .test_table_pages import TABLE_PAGES

pytestmark = pytest.mark.django_db


def _variety(user, other) -> None:
    """Rows unlike the ones TABLE_PAGES fills pages with: each column's other cases."""
    now = timezone.now()
    job = Job.objects.create(kind="connectivity_check", name="Check <b>&</b>", status=JobStatus.FAILED, user=user,
                             started_at=now, finished_at=now, progress_total=3, progress_done=2, summary="x & y")
    Job.objects.create(kind="connectivity_check", name="No user", target="", status=JobStatus.RUNNING)
    AuditEvent.objects.create(actor=user, actor_name="", action="job.start", target="job:1", job=job,
                              source_ip="10.0.0.1")
    ou = "OU=Lists,DC=contoso,DC=com"
    DistributionList.objects.create(guid=uuid.uuid4(), name="Sales <EU>", dn=f"CN=Sales,{ou}", display_name="Sales",
                                    mail="", alias="sales", ou=ou, kind=ListKind.SECURITY, state=ListState.MIGRATED,
                                    child_lists=["CN=a"], parent_lists=[], cloud_type="", member_count=0,
                                    inventoried_at=now)
    Migration.objects.create(mail="sales@contoso.com", group_name="", requested_by=user, approved_by=other, job=job)
    # Into the latest snapshot, scan and plan (the one their page shows) if the page's rows made one.
    snapshot = MfaSnapshot.objects.order_by("-id").first() or MfaSnapshot.objects.create(taken_at=now, total_users=3)
    MfaUserRow.objects.create(snapshot=snapshot, user_id="g", upn="", display_name="Guest <x>", flags=["guest"],
                              deleted=True, classification="not_registered", usable=["authenticator"], enabled=None,
                              reasons=["Why & how"], is_admin=True, department="")
    scan = AddressScan.objects.order_by("-id").first() or AddressScan.objects.create(status="complete",
                                                                                     findings_total=1)
    AddressFinding.objects.create(scan=scan, key="v", first_seen=now, dn="CN=a\\,b,OU=Users,DC=contoso,DC=com",
                                  attribute="proxyAddresses", value="x" * 90, rule="idfix", severity="warning",
                                  errors=["format", "blank"], beyond_idfix=True, proposed_value="y" * 85,
                                  explanation="x")
    plan = WritebackPlan.objects.order_by("-id").first() or WritebackPlan.objects.create(
        version=2, container="OU=W,DC=lab,DC=example", plan_hash="1" * 64)
    WritebackPlanRow.objects.create(plan=plan, section="planned", object_id="", display_name="",
                                    planned_dn="CN=x", collides=True, risks=["collision", "manual", "a_b"],
                                    changes=["one", "<two>"], same_display_name=["o"])


def _rows(html: str) -> list[str]:
    """The <tr> tags and <td> cells of the body: whitespace between them aside, the HTML as written."""
    body = html.split("<tbody", 1)[1].rsplit("</tbody>", 1)[0]
    return re.findall(r"<tr\b[^>]*>|<td\b.*?</td>", body, flags=re.S)


@pytest.fixture
def auditor(client, role_users):
    client.force_login(role_users["Administrator"])
    client.user, client.other = role_users["Administrator"], role_users["Approver"]
    return client


@pytest.mark.parametrize("table_class", TABLE_PAGES, ids=lambda t: t.__name__)
def test_rows_are_written_as_django_tables2_writes_them(auditor, table_class, rf):
    url, fill = TABLE_PAGES[table_class]
    fill(auditor.user)
    _variety(auditor.user, auditor.other)
    for order in ("", "-"):  # the varied rows sort first one way or the other
        response = auditor.get(url, {"per_page": 200, "sort": f"{order}{table_class._meta.fields[1]}"})
        table = response.context["table"]
        request = rf.get(url)
        request.user = auditor.user
        ours = table.as_html(request)
        table.template_name = "django_tables2/table.html"
        theirs = table.as_html(request)
        assert _rows(ours) == _rows(theirs)
        assert len(table.page.object_list) > 100 and len(_rows(ours)) >= len(table.page.object_list) * 2


def test_a_page_of_rows_does_not_go_through_django_tables2_cell_by_cell(auditor, monkeypatch):
    """Columns whose value is a field of the row (all of these pages' columns) skip BoundRow.get_cell, which
    looked the field up, filtered six arguments and built the column's attributes again for every cell."""
    _variety(auditor.user, auditor.other)
    calls = []
    original = BoundRow.get_cell
    monkeypatch.setattr(BoundRow, "get_cell", lambda row, name: calls.append(name) or original(row, name))
    for url, fill in TABLE_PAGES.values():
        fill(auditor.user)
        assert auditor.get(url).status_code == 200
    assert calls == []
