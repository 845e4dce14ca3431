"""The fix flow over a fake directory: plan from selected findings (before/after from AD's values now), four
eyes, pinned hash, expiry, the apply job (backup first, objects changed since the plan skipped), undo from
the backup. The same flow against the lab's Samba AD: tests/integration/test_address_scan.py."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from diagnostics_app.addresses.choices import FixStatus
from diagnostics_app.addresses.rules import ScanConfig, entry, evaluate
from diagnostics_app.addresses.services import do_begin_scan, do_finish_scan, do_store_findings
from diagnostics_app.models import AddressFix
from portal.connectors.ad import NotFound
from portal.jobs.models import Job
from portal.jobs.services import run_job_inline

pytestmark = pytest.mark.django_db(transaction=True)
DN = "CN=Mail Only,OU=Users,OU=Sync,DC=contoso,DC=com"
X500 = "x500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=233c-eed8"
URL = "/diagnostics/address-repair/fixes/"


class FakeObject:
    def __init__(self, attributes):
        self.attributes = attributes

    def get(self, name):
        return list(self.attributes.get(name, []))


class FakeDirectory:
    def __init__(self):
        self.objects = {DN: {"mail": ["new@contoso.com"], "proxyAddresses": [X500], "cn": ["Mail Only"]}}
        self.writes = []

    def read(self, dn, *, attributes=None):
        if dn not in self.objects:
            raise NotFound(f"{dn} does not exist")
        return FakeObject({a: self.objects[dn].get(a, []) for a in attributes})

    def modify(self, dn, *, replace=None, add=None, delete=None):
        self.writes.append((dn, replace))
        for attribute, values in (replace or {}).items():
            self.objects[dn][attribute] = list(values or [])


@pytest.fixture
def directory(monkeypatch):
    fake = FakeDirectory()

    @contextmanager
    def connect():
        yield fake

    monkeypatch.setattr("diagnostics_app.addresses.views.active_directory", connect)
    monkeypatch.setattr("diagnostics_app.addresses.jobs.active_directory", connect)
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
