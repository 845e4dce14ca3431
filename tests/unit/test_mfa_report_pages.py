"""The MFA registration report's pages, exports, readiness and commands, over snapshots stored by the service.

No Graph here: snapshots are stored from collected records built in the test (the collection itself is
tested against the lab in tests/integration/test_mfa_snapshot.py).
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from diagnostics_app.mfa import classify as mc
from diagnostics_app.mfa.choices import MfaClass
from diagnostics_app.mfa.collect import CollectResult, UserRecord
from diagnostics_app.mfa.services import do_store_snapshot
from diagnostics_app.models import MfaSnapshot
from portal.jobs.models import Job

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
PUSH = ("microsoftAuthenticatorPush", "softwareOneTimePasscode")
PILOT, SALES_GROUP = "g-pilot", "g-sales"


def _report(methods, *, admin=False, capable=None):
    reg = any(mc.report_family(m) in mc.MFA_FAMILIES for m in methods)
    return mc.ReportRow(is_admin=admin, is_mfa_registered=reg, is_mfa_capable=reg if capable is None else capable,
                        is_passwordless_capable=False, methods_registered=tuple(methods), last_updated=T0)


def _pending(at=T0 - timedelta(days=2)):
    return mc.Event(id="e-app", time=at, activity="Update user", kind="app_detail", detail="stamped: Pixel 8",
                    actor="Azure MFA StrongAuthenticationService", added_devices=("Pixel 8",))


def make_result(*, when=T0, extra_unusable=0) -> CollectResult:
    specs = [
        # upn, department, groups, report methods, events, admin, enabled
        ("ann@contoso.com", "Sales", [SALES_GROUP, PILOT], PUSH, (), False, True),
        ("bob@contoso.com", "Sales", [SALES_GROUP], PUSH, (_pending(),), False, True),
        ("=HYPERLINK(\"http://evil\")@contoso.com", "Sales", [SALES_GROUP], (), (), False, True),
        ("cat@contoso.com", "Finance", [PILOT], ("mobilePhone",), (), False, True),
        ("dan@contoso.com", "Finance", [], ("email",), (), True, True),
        ("eve@contoso.com", "Finance", [PILOT], ("fido2SecurityKey",), (), False, True),
        ("old@contoso.com", "Finance", [PILOT], (), (), False, False),
    ] + [(f"late{i}@contoso.com", "Legal", [], PUSH, (_pending(),), False, True) for i in range(extra_unusable)]
    users = {}
    for n, (upn, dept, groups, methods, events, admin, enabled) in enumerate(specs):
        facts = mc.UserFacts(id=f"id-{n}", upn=upn, display_name=upn.split("@")[0], user_type="Member",
                             enabled=enabled, department=dept, licensed=True)
        rec = UserRecord(facts=facts, report=_report(methods, admin=admin), events=list(events), groups=groups)
        rec.verdict = mc.classify(facts, rec.report, rec.events, None)
        users[facts.id] = rec
    guest = mc.UserFacts(id="id-guest", upn=None, display_name="Guest without UPN", user_type="Guest")
    rec = UserRecord(facts=guest)
    rec.verdict = mc.classify(guest, None, [], None)
    users[guest.id] = rec
    return CollectResult(started=when, users=users, groups={PILOT: "MFA pilot", SALES_GROUP: "Sales team"},
                         graph_calls={"requests": 9, "throttled": 0, "batch_items": 0},
                         phases={"users": {"calls": 2, "seconds": 0.1, "items": 8}})


@pytest.fixture
def snapshot():
    do_store_snapshot(make_result(when=T0 - timedelta(days=7), extra_unusable=3))
    return do_store_snapshot(make_result())


def test_stored_snapshot_keeps_classes_evidence_and_history(snapshot):
    assert MfaSnapshot.objects.count() == 2
    assert snapshot.total_users == 8
    assert snapshot.counts == {"mfa_capable": 1, "not_usable": 1, "not_registered": 2, "sms_voice_only": 1,
                               "admin_no_strong": 1, "passwordless": 1, "not_evaluated": 1}
    bob = snapshot.rows.get(upn="bob@contoso.com")
    assert bob.classification == MfaClass.NOT_USABLE and bob.can_satisfy_mfa is False
    assert bob.evidence["events"][0]["kind"] == "app_detail" and bob.groups_key == f",{SALES_GROUP},"
    assert snapshot.method_counts == {"authenticator": 1, "software_oath": 1, "phone": 1, "fido2": 1}


@pytest.mark.parametrize("role,allowed", [("Administrator", True), ("Auditor", True), ("Helpdesk", False),
                                          ("Approver", False)])
def test_report_pages_per_role(client, role_users, snapshot, role, allowed):
    client.force_login(role_users[role])
    bob = snapshot.rows.get(upn="bob@contoso.com")
    for url in ("/diagnostics/mfa/", f"/diagnostics/mfa/users/{bob.pk}/", "/diagnostics/mfa/readiness/",
                "/diagnostics/mfa/?export=csv"):
        response = client.get(url)
        assert response.status_code == (200 if allowed else 403), (role, url)
    page = client.get("/diagnostics/mfa/").content.decode()
    if allowed:
        assert "Registered but not usable" in page and "Snapshot #" in page
        assert ("Take a new snapshot" in page) is (role == "Administrator")


def test_only_administrators_start_a_snapshot(client, role_users, no_enqueue):
    client.force_login(role_users["Auditor"])
    assert client.post("/diagnostics/mfa/snapshot/").status_code == 403
    empty = client.get("/diagnostics/mfa/").content.decode()
    assert "No snapshot yet" in empty and "An Administrator starts snapshots" in empty
    client.force_login(role_users["Administrator"])
    response = client.post("/diagnostics/mfa/snapshot/", {"audit_days": 14, "method_read_limit": 100,
                                                          "fallback_limit": 500})
    assert response.status_code == 302 and response["Location"].startswith("/jobs/")
    from portal.audit.models import AuditEvent
    from portal.jobs.models import Job

    job = Job.objects.get(kind="mfa_snapshot")
    assert job.params["audit_days"] == 14 and job.user == role_users["Administrator"]
    assert AuditEvent.objects.filter(action="job.start.mfa_snapshot").exists()


def test_headline_charts_and_trend(client, role_users, snapshot):
    client.force_login(role_users["Auditor"])
    page = client.get("/diagnostics/mfa/").content.decode()
    assert "37.5%" in page  # 3 of 8 can answer MFA
    assert page.count("<svg") >= 3 and "stroke-dasharray" in page and "<polyline" in page
    assert 'aria-labelledby="donut-desc"' in page and "Trend across snapshots" in page
    older = client.get(f"/diagnostics/mfa/?snapshot={snapshot.pk - 1}").content.decode()
    assert "Snapshot #" + str(snapshot.pk - 1) in older


@pytest.mark.parametrize("query,expected", [
    ("classification=not_usable", {"bob@contoso.com"}),
    ("method=phone", {"cat@contoso.com"}),
    (f"group={PILOT}", {"ann@contoso.com", "cat@contoso.com", "eve@contoso.com", "old@contoso.com"}),
    ("department=Finance&enabled=true", {"cat@contoso.com", "dan@contoso.com", "eve@contoso.com"}),
    ("admin=true", {"dan@contoso.com"}),
    ("q=ann", {"ann@contoso.com"}),
])
def test_filters_answer_through_htmx(client, role_users, snapshot, query, expected):
    client.force_login(role_users["Auditor"])
    response = client.get(f"/diagnostics/mfa/?snapshot={snapshot.pk}&{query}&export=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["upn"] for r in rows} == expected
    partial = client.get(f"/diagnostics/mfa/?snapshot={snapshot.pk}&{query}", HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and f"{len(expected)} user" in partial.content.decode()


def test_csv_and_xlsx_exports_keep_formulas_inert(client, role_users, snapshot):
    client.force_login(role_users["Auditor"])
    response = client.get(f"/diagnostics/mfa/?snapshot={snapshot.pk}&export=csv")
    assert response["Content-Disposition"].startswith('attachment; filename="mfa-registration-')
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 8
    evil = [r for r in rows if "HYPERLINK" in r["upn"]][0]
    assert evil["upn"].startswith("'=")
    assert {r["classification"] for r in rows if r["user_type"] == "Guest"} == {"not_evaluated"}

    from openpyxl import load_workbook

    response = client.get(f"/diagnostics/mfa/?snapshot={snapshot.pk}&export=xlsx&classification=not_registered")
    book = load_workbook(io.BytesIO(response.content))
    sheet = book["MFA registration"]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][0] == "upn" and len(values) == 3  # the formula-looking UPN and old@
    assert values[1][0].startswith("'=") and sheet.cell(row=2, column=1).data_type == "s"
    assert book["Summary"]["A1"].value == "snapshot"


def test_user_drill_down_shows_the_evidence_timeline(client, role_users, snapshot):
    client.force_login(role_users["Auditor"])
    bob = snapshot.rows.get(upn="bob@contoso.com")
    page = client.get(f"/diagnostics/mfa/users/{bob.pk}/").content.decode()
    assert "Evidence timeline" in page and "Azure MFA StrongAuthenticationService" in page
    assert "Registered but not usable" in page and "Registration report row computed" in page
    assert "In earlier snapshots" in page
    guest = snapshot.rows.get(user_id="id-guest")
    assert "(none)" in client.get(f"/diagnostics/mfa/users/{guest.pk}/").content.decode()


def test_readiness_for_a_group_and_the_tenant(client, role_users, snapshot):
    client.force_login(role_users["Administrator"])
    page = client.get(f"/diagnostics/mfa/readiness/?snapshot={snapshot.pk}&group={PILOT}&wave_by=department")
    body = page.content.decode()
    # pilot: ann (ready), cat (ready, SMS), eve (ready), old (disabled, left out)
    assert "<strong>0</strong> (0.0%) of 3 enabled users would be interrupted" in body
    assert "1 disabled account left out" in body
    whole = client.get(f"/diagnostics/mfa/readiness/?snapshot={snapshot.pk}&group=&wave_by=group").content.decode()
    assert "<strong>3</strong> (42.9%) of 7 enabled users would be interrupted" in whole
    assert "bob@contoso.com" in whole and "HYPERLINK" in whole and "Sales team" in whole
    assert "1 not evaluated" in whole


def test_mfa_report_command_writes_csv_and_json(snapshot, capsys):
    call_command("mfa_report", "--format", "json")
    data = json.loads(capsys.readouterr().out)
    assert data["snapshot"] == snapshot.pk and len(data["users"]) == 8
    call_command("mfa_report", "--format", "csv", "--classification", "not_usable")
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["upn"] for r in rows] == ["bob@contoso.com"]


@pytest.mark.parametrize("existing", [False, True], ids=["first snapshot", "new snapshot"])
def test_the_snapshot_buttons_post_what_the_page_renders_and_start_a_snapshot(client, role_users, no_enqueue,
                                                                           existing):
    """The bug that shipped: the form posted only its CSRF token and the view refused it."""
    from tests.support.forms import form_fields

    if existing:
        do_store_snapshot(make_result())
    client.force_login(role_users["Administrator"])
    page = client.get("/diagnostics/mfa/").content.decode()
    fields = form_fields(page, "/diagnostics/mfa/snapshot/")
    response = client.post("/diagnostics/mfa/snapshot/", fields, follow=True)
    job = Job.objects.get(kind="mfa_snapshot")
    assert response.redirect_chain[-1][0] == f"/jobs/{job.pk}/"
    defaults = {"audit_days": 30, "method_read_limit": 2000, "fallback_limit": 5000}
    assert {key: job.params[key] for key in defaults} == defaults
    # The advanced section changes one setting; the others keep their defaults.
    client.post("/diagnostics/mfa/snapshot/", {**fields, "audit_days": "7", "fallback_limit": ""})
    assert Job.objects.filter(kind="mfa_snapshot").latest("pk").params["audit_days"] == 7
    body = client.post("/diagnostics/mfa/snapshot/", {**fields, "audit_days": "90"}, follow=True).content.decode()
    assert "Audit days to read" in body and "Nothing was started" in body
    assert Job.objects.filter(kind="mfa_snapshot").count() == 2


def test_readiness_opens_with_a_result_not_a_validation_error(client, role_users, snapshot):
    client.force_login(role_users["Auditor"])
    for url in ("/diagnostics/mfa/readiness/", f"/diagnostics/mfa/readiness/?snapshot={snapshot.pk}"):
        page = client.get(url).content.decode()
        assert "field-error" not in page and "This field is required" not in page
        assert "would be interrupted at their next sign-in" in page


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_report_exports_are_audited_with_their_filter(client, role_users, snapshot, fmt):
    from portal.audit.models import AuditEvent

    client.force_login(role_users["Auditor"])
    response = client.get("/diagnostics/mfa/", {"snapshot": snapshot.pk, "classification": "not_usable",
                                                "export": fmt})
    b"".join(response.streaming_content) if response.streaming else response.content
    event = AuditEvent.objects.get(action="download.mfa_report")
    assert event.actor == role_users["Auditor"] and event.target == f"mfa_snapshot:{snapshot.pk}"
    assert event.detail["format"] == fmt and event.detail["rows"] == 1
    assert event.detail["query"]["classification"] == "not_usable"


def test_xlsx_export_has_a_frozen_filterable_header_and_a_filtered_export_is_named_after_its_filter(
        client, role_users, snapshot):
    from openpyxl import load_workbook

    client.force_login(role_users["Auditor"])
    response = client.get("/diagnostics/mfa/", {"snapshot": snapshot.pk, "classification": "not_registered",
                                                "export": "xlsx"})
    assert "-classification-not_registered.xlsx" in response["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(response.content))["MFA registration"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:")
    assert sheet.auto_filter.ref.endswith(str(sheet.max_row))
    plain = client.get("/diagnostics/mfa/", {"snapshot": snapshot.pk, "export": "csv"})
    assert "classification" not in plain["Content-Disposition"]


def test_filters_read_any_when_unset_and_yes_no_still_filter(client, role_users, snapshot):
    client.force_login(role_users["Auditor"])
    page = client.get("/diagnostics/mfa/", {"snapshot": snapshot.pk}).content.decode()
    assert "---------" not in page and "Unknown</option>" not in page and '<option value="" selected>Any' in page
    admins = snapshot.rows.filter(is_admin=True).count()
    assert 0 < admins < snapshot.total_users
    page = client.get("/diagnostics/mfa/", {"snapshot": snapshot.pk, "admin": "true"}).content.decode()
    assert f">{admins} user" in page


def test_readiness_pages_its_interrupted_users_and_exports_them_all(client, role_users, snapshot, monkeypatch):
    import csv as csvmod

    from portal.audit.models import AuditEvent

    monkeypatch.setattr("diagnostics_app.mfa.views.READINESS_PAGE", 2)
    client.force_login(role_users["Auditor"])
    first = client.get("/diagnostics/mfa/readiness/", {"snapshot": snapshot.pk}).content.decode()
    total = int(re.search(r"1–2 of (\d+)\.", first).group(1))
    assert total > 2 and "Next →" in first and "← Previous" not in first
    second = client.get("/diagnostics/mfa/readiness/", {"snapshot": snapshot.pk, "page": 2}).content.decode()
    assert f"3–{min(4, total)} of {total}." in second and "← Previous" in second
    response = client.get("/diagnostics/mfa/readiness/", {"snapshot": snapshot.pk, "export": "csv"})
    rows = list(csvmod.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["upn", "display_name", "department", "classification", "why"] and len(rows) == total + 1
    assert "readiness-interrupted" in response["Content-Disposition"]
    assert AuditEvent.objects.filter(action="download.mfa_readiness").exists()


def test_headline_numbers_reconcile_with_the_readiness_page(client, role_users, snapshot):
    from diagnostics_app.mfa import selectors

    client.force_login(role_users["Auditor"])
    tiles = selectors.headline(snapshot)
    tenant = selectors.readiness(snapshot)
    assert (tiles["interrupted"], tiles["interrupted_pct"]) == (tenant.interrupted_total, tenant.interrupted_pct)
    # "Can answer a prompt" counts exactly the users whose verdict says so, each once: here the MFA-capable,
    # SMS/voice-only and passwordless users, not the admin without a strong method nor the unevaluated one.
    answering = set(snapshot.rows.filter(can_satisfy_mfa=True).values_list("classification", flat=True))
    assert tiles["capable"] == 3 and answering == {"mfa_capable", "sms_voice_only", "passwordless"}
    report = client.get("/diagnostics/mfa/", {"snapshot": snapshot.pk}).content.decode()
    ready = client.get("/diagnostics/mfa/readiness/", {"snapshot": snapshot.pk}).content.decode()
    share = f"{tenant.interrupted_pct}%"
    assert share in report and f"({share}) of {tenant.targeted} enabled" in ready
    assert f"of {tenant.targeted} enabled account" in report


def test_the_user_page_says_an_administrator_required_re_registration_and_how_entra_logs_it(client, role_users, db):
    result = make_result()
    facts = mc.UserFacts(id="id-rereg", upn="reg@contoso.com", display_name="reg", user_type="Member",
                         enabled=True, department="Legal", licensed=True)
    deleted = mc.Event(id="del", time=T0 - timedelta(days=1), activity="Admin deleted security info",
                       kind="admin_deleted", detail="Admin deleted Authenticator App with Notification and Code",
                       actor="authadmin@contoso.com")
    report = mc.ReportRow(is_admin=False, is_mfa_registered=True, is_mfa_capable=True, is_passwordless_capable=False,
                          methods_registered=PUSH, last_updated=T0 - timedelta(days=2))
    rec = UserRecord(facts=facts, report=report, events=[deleted], groups=[])
    rec.methods = []  # read after the report: only the password is left
    rec.verdict = mc.classify(facts, report, rec.events, rec.methods)
    result.users[facts.id] = rec
    snapshot = do_store_snapshot(result)
    client.force_login(role_users["Auditor"])
    row = snapshot.rows.get(upn="reg@contoso.com")
    assert row.classification == MfaClass.NOT_REGISTERED
    page = client.get(f"/diagnostics/mfa/users/{row.pk}/").content.decode()
    assert 'id="reregistration-note"' in page and "Must register MFA again" in page
    assert "logs no audit activity of its own" in page and "by authadmin@contoso.com" in page
    ann = snapshot.rows.get(upn="ann@contoso.com")
    assert 'id="reregistration-note"' not in client.get(f"/diagnostics/mfa/users/{ann.pk}/").content.decode()


def test_the_two_interrupted_figures_are_told_apart(client, role_users, snapshot):
    """An auditor reads one "would be interrupted if MFA were required" figure (tile and trend row alike) and a
    separately named "interrupted by today's policies", each with its one-line explanation."""
    from django.utils.html import escape

    from diagnostics_app.mfa.choices import INTERRUPTED_IF_REQUIRED_HELP, INTERRUPTED_TODAY_HELP

    client.force_login(role_users["Auditor"])
    page = client.get(f"/diagnostics/mfa/?snapshot={snapshot.pk}").content.decode()
    assert "would be interrupted if MFA were required" in page and escape(INTERRUPTED_IF_REQUIRED_HELP) in page
    current = re.search(r'<tr aria-current="true" class="current">(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r'<td class="num">([^<]*)</td>', current)
    assert cells[-3:] == ["7", "3", "42.9"]  # enabled accounts, would be interrupted, % — as the tile says
    assert '<div class="big">3 <span class="pct">42.9%</span>' in page
    policies = client.get(f"/diagnostics/mfa/policies/?snapshot={snapshot.pk}").content.decode()
    assert escape(INTERRUPTED_TODAY_HELP) in policies and "Enabled accounts by outcome" in policies
