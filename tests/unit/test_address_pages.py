"""Address repair's pages, CSV export, history across scans and the Scan button, over scans stored by the
services from the rules' findings (no directory here: the scan job runs against the lab in
tests/integration/test_address_scan.py)."""

from __future__ import annotations

import csv
import io

import pytest

from diagnostics_app.addresses.choices import FindingState
from diagnostics_app.addresses.rules import ScanConfig, entry, evaluate
from diagnostics_app.addresses.services import do_begin_scan, do_finish_scan, do_store_findings
from diagnostics_app.models import AddressFinding
from portal.jobs.models import Job

pytestmark = pytest.mark.django_db
URL = "/diagnostics/address-repair/"
CONFIG = ScanConfig(verified_domains=("contoso.com",), initial_domain="contoso.onmicrosoft.com")
X500 = "x500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=233c-eed8"


def person(name: str, **attributes):
    alias = name.lower().replace(" ", ".")
    base = {"cn": name, "displayName": name, "userPrincipalName": f"{alias}@contoso.com", "mailNickname": alias,
            "mail": f"{alias}@contoso.com", "proxyAddresses": [f"SMTP:{alias}@contoso.com"],
            "sAMAccountName": alias[:20], "msExchRecipientTypeDetails": "2147483648"}
    base.update(attributes)
    return entry(dn=f"CN={name},OU=Users,OU=Sync,DC=contoso,DC=com", object_class=["user"],
                 attributes={k: v for k, v in base.items() if v is not None})


def store(entries):
    findings, skipped = evaluate(entries, config=CONFIG)
    scan = do_begin_scan(job=None, user=None, scope=["OU=Sync,DC=contoso,DC=com"])
    do_store_findings(scan=scan, findings=findings)
    return do_finish_scan(scan=scan, objects_read=len(entries), cloud_objects_read=0, skipped=skipped)


def first_scan():
    return store([
        person("Mail Only", mail="TotallyNew@contoso.com", proxyAddresses=[X500]),
        person("Tom Jerry", userPrincipalName="tom&jerry@contoso.com"),
        person("Evil Name", displayName="<script>alert(1)</script>", givenName="=HYPERLINK(\"x\")" + "g" * 70),
        person("krbtgt"),
    ])


@pytest.fixture
def scan():
    return first_scan()


@pytest.mark.parametrize("role,allowed", [("Administrator", True), ("Auditor", True), ("Helpdesk", False),
                                          ("Approver", True)])
def test_pages_per_role(client, role_users, scan, role, allowed):
    client.force_login(role_users[role])
    finding = scan.findings.first()
    for url in (URL, f"{URL}findings/{finding.pk}/", f"{URL}?export=csv"):
        assert client.get(url).status_code == (200 if allowed else 403), (role, url)
    if allowed:
        page = client.get(URL).content.decode()
        assert f"Scan #{scan.pk}" in page and "proxyAddresses holds only X500" in page
        assert ('action="/diagnostics/address-repair/scan/"' in page) is (role == "Administrator")


def test_findings_are_stored_with_counts_and_skipped(scan):
    assert scan.skipped_total == 1 and "krbtgt" in scan.skipped[0][0]
    assert scan.counts["rule"]["x500_only"] == 1 and scan.findings_total == scan.findings.count()
    upn = scan.findings.get(attribute="userPrincipalName", rule="idfix")
    assert upn.errors == ["Character"] and upn.proposed_value == "tomjerry@contoso.com" and upn.action == "Edit"
    assert upn.ou == "OU=Users,OU=Sync,DC=contoso,DC=com" and upn.state == FindingState.NEW


def test_history_across_scans_new_still_present_gone(scan):
    first_x500 = scan.findings.get(rule="x500_only")
    # Between the scans Tom's UPN was fixed and a new duplicate appeared.
    second = store([
        person("Mail Only", mail="TotallyNew@contoso.com", proxyAddresses=[X500]),
        person("Tom Jerry"),
        person("Evil Name", displayName="<script>alert(1)</script>", givenName="=HYPERLINK(\"x\")" + "g" * 70),
        person("Ann One", mailNickname="shared"), person("Ann Two", mailNickname="shared"),
    ])
    still = second.findings.get(rule="x500_only")
    assert still.state == FindingState.STILL_PRESENT and still.first_seen == first_x500.first_seen
    gone = second.findings.get(attribute="userPrincipalName", rule="idfix")
    assert gone.state == FindingState.GONE and second.gone_total >= 1
    assert set(second.findings.filter(rule="duplicate").values_list("state", flat=True)) == {FindingState.NEW}
    assert second.findings_total == second.findings.exclude(state=FindingState.GONE).count()


def test_filters_answer_through_htmx_and_csv_follows_them(client, role_users, scan):
    client.force_login(role_users["Auditor"])
    partial = client.get(f"{URL}?scan={scan.pk}&rule=x500_only", HTTP_HX_REQUEST="true").content.decode()
    assert "1 finding" in partial and "Mail Only" in partial and "Tom Jerry" not in partial
    for query, expected in (("severity=error&ou=OU%3DUsers%2COU%3DSync%2CDC%3Dcontoso%2CDC%3Dcom&q=tom", "Tom"),
                            ("attribute=userPrincipalName", "Tom Jerry"),
                            ("object_class=user&q=mail+only", "Mail Only")):
        body = b"".join(client.get(f"{URL}?scan={scan.pk}&{query}&export=csv").streaming_content).decode()
        rows = list(csv.DictReader(io.StringIO(body)))
        assert rows and all(expected.split()[0] in r["object"] for r in rows), query


def test_csv_keeps_formulas_inert_and_is_audited(client, role_users, scan):
    from portal.audit.models import AuditEvent

    client.force_login(role_users["Auditor"])
    response = client.get(f"{URL}?scan={scan.pk}&export=csv")
    assert response["Content-Disposition"].startswith('attachment; filename="address-findings-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    given = [r for r in rows if r["attribute"] == "givenName"][0]
    assert given["value"].startswith("'=HYPERLINK") and given["idfix_errors"] == "Length"
    assert AuditEvent.objects.filter(action="download.address_findings").exists()


def test_xlsx_has_the_csv_rows_a_frozen_filterable_header_and_is_audited(client, role_users, scan):
    from openpyxl import load_workbook

    from portal.audit.models import AuditEvent

    client.force_login(role_users["Auditor"])
    response = client.get(URL, {"scan": scan.pk, "attribute": "givenName", "export": "xlsx"})
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert response["Content-Disposition"].endswith('-attribute-givenName.xlsx"')
    book = load_workbook(io.BytesIO(response.content))
    sheet = book["Address findings"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:O{sheet.max_row}"
    rows = [[c or "" for c in r] for r in sheet.iter_rows(values_only=True)]
    body = b"".join(client.get(URL, {"scan": scan.pk, "attribute": "givenName", "export": "csv"})
                    .streaming_content).decode()
    assert rows == list(csv.reader(io.StringIO(body)))
    assert rows[1][4].startswith("'=HYPERLINK")
    assert dict(book["Summary"].iter_rows(values_only=True))["findings exported"] == len(rows) - 1
    assert AuditEvent.objects.filter(action="download.address_findings", detail__format="xlsx").exists()


def test_finding_page_explains_and_escapes_directory_data(client, role_users, scan):
    client.force_login(role_users["Auditor"])
    x500 = scan.findings.get(rule="x500_only")
    page = client.get(f"{URL}findings/{x500.pk}/").content.decode()
    assert "will not reach Exchange Online" in page and "SMTP:TotallyNew@contoso.com" in page
    assert "Everything found on this object" in page
    evil = AddressFinding.objects.filter(dn__startswith="CN=Evil").first()
    page = client.get(f"{URL}findings/{evil.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in page


def test_bad_scan_parameter_and_empty_state(client, role_users):
    client.force_login(role_users["Auditor"])
    page = client.get(f"{URL}?scan=not-a-number").content.decode()
    assert "No scan yet" in page and "An Administrator starts scans" in page


def test_only_administrators_start_a_scan_with_the_form_the_page_renders(client, role_users, no_enqueue):
    from portal.audit.models import AuditEvent
    from tests.support.forms import form_fields

    client.force_login(role_users["Auditor"])
    assert client.post(f"{URL}scan/").status_code == 403
    client.force_login(role_users["Administrator"])
    fields = form_fields(client.get(URL).content.decode(), f"{URL}scan/")
    response = client.post(f"{URL}scan/", fields, follow=True)
    job = Job.objects.get(kind="address_scan")
    assert response.redirect_chain[-1][0] == f"/jobs/{job.pk}/" and job.user == role_users["Administrator"]
    assert AuditEvent.objects.filter(action="job.start.address_scan").exists()
