"""The policy view's XLSX export: the users of one policy as the CSV has them, header frozen, autofilter over
every row, the policy itself on a summary sheet, formulas inert."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from diagnostics_app.mfa.services import do_store_snapshot
from diagnostics_app.models import MfaPolicy
from tests.unit.test_mfa_report_pages import make_result

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy():
    snapshot = do_store_snapshot(make_result())
    p = MfaPolicy.objects.create(snapshot=snapshot, policy_id="pol-1", display_name="=cmd|' /C calc'!A0 all users",
                                 state="enabledForReportingButNotEnforced", demand_kind="mfa",
                                 demand={"label": "Multifactor authentication"}, users={"includeUsers": ["All"]},
                                 in_scope=2, able=1, interrupted=1)
    rows = list(snapshot.rows.order_by("upn")[:2])
    for row, status in zip(rows, ("able", "interrupted"), strict=True):
        row.policy_key = f",pol-1={status},"
        row.policy_hits = [{"policy_id": "pol-1", "status": status, "why": "all users", "detail": "d"}]
        row.save(update_fields=["policy_key", "policy_hits"])
    return p


def test_policy_view_exports_xlsx_with_frozen_filterable_header_and_the_policy_summary(client, role_users, policy):
    client.force_login(role_users["Auditor"])
    page = client.get(f"/diagnostics/mfa/policies/{policy.pk}/").content.decode()
    assert "export=xlsx" in page
    response = client.get(f"/diagnostics/mfa/policies/{policy.pk}/", {"export": "xlsx"})
    assert response.status_code == 200 and response["Content-Disposition"].endswith(f'-{policy.pk}.xlsx"')
    book = load_workbook(io.BytesIO(response.content))
    sheet = book["Policy users"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:L{sheet.max_row}" and sheet.max_row == 3
    assert [c.value for c in sheet[2]][7] == "able" and [c.value for c in sheet[3]][7] == "interrupted"
    assert str(sheet["A2"].value).startswith("'="), "a formula-looking name stays text"
    summary = {r[0].value: r[1].value for r in book["Summary"].iter_rows()}
    assert summary["state"] == "Report-only" and summary["will be interrupted"] == 1 and summary["Includes"]
    only = client.get(f"/diagnostics/mfa/policies/{policy.pk}/", {"export": "xlsx", "status": "interrupted"})
    assert load_workbook(io.BytesIO(only.content))["Policy users"].max_row == 2
    from portal.audit.models import AuditEvent
    assert AuditEvent.objects.filter(target=f"mfa_policy:{policy.pk}").count() == 2
