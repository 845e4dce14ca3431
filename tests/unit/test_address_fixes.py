"""The fix flow over a fake directory: plan from selected findings (before/after from AD's values now), four
eyes, pinned hash, expiry, the apply job (backup first, objects changed since the plan skipped), undo from
the backup. The same flow against the lab's Samba AD: tests/integration/test_address_scan.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from diagnostics_app.addresses.choices import FixStatus
from diagnostics_app.addresses.rules import ScanConfig, entry, evaluate
from diagnostics_app.addresses.services import do_begin_scan, do_finish_scan, do_store_findings
from diagnostics_app.models import AddressFix
from portal.jobs.models import Job
from portal.jobs.services import run_job_inline
from tests.support.address_fakes import FakeDirectory, FakeSync, patch_connector

pytestmark = pytest.mark.django_db(transaction=True)
DN = "CN=Mail Only,OU=Users,OU=Sync,DC=contoso,DC=com"
X500 = "x500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=233c-eed8"
URL = "/diagnostics/address-repair/fixes/"


@pytest.fixture
def directory(monkeypatch):
    fake = FakeDirectory({DN: {"mail": ["new@contoso.com"], "proxyAddresses": [X500], "cn": ["Mail Only"]}})
    patch_connector(monkeypatch, "active_directory", fake)
    return fake


@pytest.fixture
def finding(directory):
    attrs = {"cn": "Mail Only", "displayName": "Mail Only", "mail": "new@contoso.com", "proxyAddresses": [X500],
             "mailNickname": "mailonly", "userPrincipalName": "mailonly@contoso.com"}
    found, skipped = evaluate([entry(dn=DN, object_class=["user"], attributes=attrs)], config=ScanConfig())
    scan = do_begin_scan(job=None, user=None, scope=[])
    do_store_findings(scan=scan, findings=found)
    scan = do_finish_scan(scan=scan, objects_read=1, cloud_objects_read=0, skipped=skipped)
    return scan.findings.get(rule="x500_only")


def plan(client, admin, finding) -> AddressFix:
    client.force_login(admin)
    response = client.post(f"{URL}plan/", {"selection": [finding.pk]})
    fix = AddressFix.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{URL}{fix.pk}/"
    return fix


def approve(client, approver, fix, **extra):
    client.force_login(approver)
    return client.post(f"{URL}{fix.pk}/approve/", {"valid_hours": "4", "note": "ok", "confirm": "on", **extra},
                       follow=True)


def test_the_findings_page_offers_the_selection_to_administrators_only(client, role_users, finding):
    client.force_login(role_users["Administrator"])
    page = client.get("/diagnostics/address-repair/").content.decode()
    assert 'id="plan-form"' in page and 'form="plan-form"' in page
    client.force_login(role_users["Auditor"])
    assert 'id="plan-form"' not in client.get("/diagnostics/address-repair/").content.decode()
    assert client.post(f"{URL}plan/", {"selection": [finding.pk]}).status_code == 403


def test_plan_shows_before_and_after_and_waits_for_someone_else(client, role_users, finding, directory):
    fix = plan(client, role_users["Administrator"], finding)
    assert fix.changes == [{"dn": DN, "attribute": "proxyAddresses", "before": [X500],
                            "after": [X500, "SMTP:new@contoso.com"], "target": "ad"}]
    assert fix.status == FixStatus.AWAITING_APPROVAL and directory.writes == []
    page = client.get(f"{URL}{fix.pk}/").content.decode()
    assert "SMTP:new@contoso.com" in page and "cannot approve it" in page and "Approve and apply" not in page
    # The requester's own approval is refused, and audited; the database refuses it too.
    body = client.post(f"{URL}{fix.pk}/approve/", {"valid_hours": "4", "confirm": "on"}, follow=True)
    assert "Four eyes" in body.content.decode()
    from portal.audit.models import AuditEvent
    assert AuditEvent.objects.filter(action="address.fix.approve.refused").exists()
    with pytest.raises(IntegrityError, match="address_fix_not_decided_by_requester"), transaction.atomic():
        AddressFix.objects.filter(pk=fix.pk).update(approved_by=role_users["Administrator"])


def test_a_fix_waiting_for_approval_is_counted_and_queued_for_others_only(client, role_users, finding):
    fix = plan(client, role_users["Administrator"], finding)
    # The requester does not see their own fix in the queue (four eyes).
    page = client.get("/dl/approvals/").content.decode()
    assert f"Fix #{fix.pk}" not in page and 'id="nav-approvals"' in page and "Pending approvals (0)" in page
    client.force_login(role_users["Approver"])
    page = client.get("/dl/approvals/").content.decode()
    assert f'href="{URL}{fix.pk}/">Fix #{fix.pk}</a>' in page and "Nothing waits for your sign-off" not in page
    assert '<span class="badge badge-amber nav-count">1</span>' in page
    approve(client, role_users["Approver"], fix)
    page = client.get("/dl/approvals/").content.decode()
    assert f"Fix #{fix.pk}" not in page and "Nothing waits for your sign-off" in page


def test_approved_fix_backs_up_then_applies_and_undo_restores_exactly(client, role_users, finding, directory,
                                                                     no_enqueue):
    fix = plan(client, role_users["Administrator"], finding)
    page = approve(client, role_users["Approver"], fix).content.decode()
    fix.refresh_from_db()
    assert fix.status == FixStatus.APPROVED and fix.approved_by == role_users["Approver"] and "approved" in page
    job = run_job_inline(fix.job)
    fix.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.user == role_users["Administrator"], "runs on behalf of the person who planned it"
    assert fix.status == FixStatus.APPLIED and fix.backup == {DN: {"proxyAddresses": [X500]}}
    assert directory.objects[DN]["proxyAddresses"] == [X500, "SMTP:new@contoso.com"]
    client.force_login(role_users["Administrator"])
    client.post(f"{URL}{fix.pk}/undo/")
    undo = run_job_inline(Job.objects.get(kind="address_fix_undo"))
    fix.refresh_from_db()
    assert undo.status == "succeeded" and fix.status == FixStatus.UNDONE
    assert directory.objects[DN]["proxyAddresses"] == [X500]


def test_an_object_changed_since_the_plan_is_skipped_and_reported(client, role_users, finding, directory,
                                                                  no_enqueue):
    fix = plan(client, role_users["Administrator"], finding)
    approve(client, role_users["Approver"], fix)
    directory.objects[DN]["proxyAddresses"] = [X500, "smtp:someone.else@contoso.com"]
    fix.refresh_from_db()
    run_job_inline(fix.job)
    fix.refresh_from_db()
    assert fix.status == FixStatus.APPLIED_WITH_SKIPS and directory.writes == []
    assert fix.report["skipped"] == [{"dn": DN, "why": "its values changed since the plan"}]


def test_an_expired_approval_or_an_altered_plan_applies_nothing(client, role_users, finding, directory,
                                                                no_enqueue):
    fix = plan(client, role_users["Administrator"], finding)
    approve(client, role_users["Approver"], fix)
    AddressFix.objects.filter(pk=fix.pk).update(approval_expires_at=timezone.now() - timedelta(minutes=1))
    fix.refresh_from_db()
    job = run_job_inline(fix.job)
    fix.refresh_from_db()
    assert job.status == "failed" and "expired" in job.error and directory.writes == []
    assert fix.status == FixStatus.FAILED
    # A plan altered in the database after approval no longer matches its hash.
    AddressFix.objects.all().delete()
    fix = plan(client, role_users["Administrator"], finding)
    AddressFix.objects.filter(pk=fix.pk).update(plan={"changes": [{**fix.changes[0], "after": ["SMTP:evil@x.com"]}]})
    body = approve(client, role_users["Approver"], fix).content.decode()
    assert "does not match its hash" in body and directory.writes == []


def test_reject_needs_a_reason_and_a_vanished_object_is_not_planned(client, role_users, finding, directory):
    fix = plan(client, role_users["Administrator"], finding)
    client.force_login(role_users["Approver"])
    assert "Say why" in client.post(f"{URL}{fix.pk}/reject/", {"reason": ""}, follow=True).content.decode()
    client.post(f"{URL}{fix.pk}/reject/", {"reason": "not now"})
    fix.refresh_from_db()
    assert fix.status == FixStatus.REJECTED and fix.decision_note == "not now"
    del directory.objects[DN]
    client.force_login(role_users["Administrator"])
    body = client.post(f"{URL}plan/", {"selection": [finding.pk]}, follow=True).content.decode()
    assert "not in AD any more" in body and AddressFix.objects.count() == 1


class FakeGraph:
    def __init__(self, cloud):
        self.cloud = cloud

    def get_user(self, upn, *, select=None):
        from portal.connectors.graph import NotFound as GraphNotFound

        if upn != "mailonly@contoso.com":
            raise GraphNotFound(f"{upn} is not in the tenant")
        return type("User", (), {"user_principal_name": upn, "display_name": "Mail Only", "extra": {},
                                 "mail": self.cloud["mail"], "mail_nickname": "mailonly",
                                 "proxy_addresses": tuple(self.cloud["proxyAddresses"])})()


@pytest.mark.parametrize("exported,verified,shown", [
    ({"mail": "new@contoso.com", "proxyAddresses": ["SMTP:new@contoso.com", "smtp:mailonly@contoso.com"]},
     True, "the cloud shows the planned addresses (primary new@contoso.com)"),
    ({}, False, "the cloud does not show new@contoso.com as the primary address (the cloud&#x27;s is "
                "mailonly@contoso.com)"),
])
def test_verify_runs_a_delta_sync_and_stores_what_the_cloud_shows(client, role_users, finding, directory,
                                                                  no_enqueue, monkeypatch, exported, verified, shown):
    from tests.support.forms import form_fields

    cloud = {"mail": "mailonly@contoso.com", "proxyAddresses": ["SMTP:mailonly@contoso.com"]}
    sync = FakeSync(cloud, exported)

    patch_connector(monkeypatch, "entra_connect", sync, where=("jobs",))
    patch_connector(monkeypatch, "entra_graph", FakeGraph(cloud), where=("jobs",))
    directory.objects[DN]["userPrincipalName"] = ["mailonly@contoso.com"]
    fix = plan(client, role_users["Administrator"], finding)
    verify_url = f"{URL}{fix.pk}/verify/"
    assert "Sync and verify" not in client.get(f"{URL}{fix.pk}/").content.decode()
    assert "only an applied fix is verified" in client.post(verify_url, follow=True).content.decode()
    approve(client, role_users["Approver"], fix)
    fix.refresh_from_db()
    run_job_inline(fix.job)
    client.force_login(role_users["Administrator"])
    page = client.get(f"{URL}{fix.pk}/").content.decode()
    client.post(verify_url, form_fields(page, verify_url))
    job = run_job_inline(Job.objects.get(kind="address_fix_verify"))
    assert job.status == ("succeeded" if verified else "warnings"), job.error
    assert sync.cycles == ["Delta"]
    fix.refresh_from_db()
    verification = fix.report["verification"]
    assert verification["verified"] is verified and fix.report["applied"] and fix.report["verify_job"] == job.pk
    assert [r["ok"] for r in verification["results"]] == [verified]
    page = client.get(f"{URL}{fix.pk}/").content.decode()
    assert ("Verified</span>" if verified else "Not verified</span>") in page and shown in page
    from portal.audit.models import AuditEvent
    assert AuditEvent.objects.filter(action="address.fix.verify", target=f"address_fix:{fix.pk}").exists()


def test_verify_change_compares_each_kind_of_attribute():
    from diagnostics_app.addresses.fixplan import AttributeChange, verify_change

    change = AttributeChange(dn=DN, attribute="proxyAddresses", before=(X500,),
                             after=(X500, "SMTP:new@contoso.com", "smtp:old@contoso.com"))
    cloud = {"proxyAddresses": ["SMTP:new@contoso.com", "smtp:OLD@contoso.com"]}
    assert verify_change(change, cloud)[0] is True
    ok, text = verify_change(change, {"proxyAddresses": ["SMTP:new@contoso.com"]})
    assert ok is False and text.endswith("the cloud does not show old@contoso.com.")
    assert verify_change(change, None) == (False, f"proxyAddresses of {DN}: the object is not in the cloud (not "
                                                  "synchronised yet, or out of sync scope).")
    upn = AttributeChange(dn=DN, attribute="userPrincipalName", before=("a b@contoso.com",), after=("ab@contoso.com",))
    assert verify_change(upn, {"userPrincipalName": "AB@contoso.com"})[0] is True
    assert verify_change(upn, {"userPrincipalName": "a@contoso.com"})[0] is False
    other = AttributeChange(dn=DN, attribute="sAMAccountName", before=("a b",), after=("ab",))
    assert verify_change(other, {})[0] is None
