"""Cloud-managed objects and tenant contacts: their findings' fixes go to Exchange Online (never AD), with the same
plan, four eyes, backup, drift check, undo and verification as AD fixes; Connect Health's Data Mismatch predicted
before the export; verification of groups and contacts. Fake directories here; the lab: test_address_cloud.py."""

from __future__ import annotations

import pytest

from diagnostics_app.addresses.choices import FixStatus
from diagnostics_app.addresses.rules import CloudObject, ScanConfig, entry, evaluate
from diagnostics_app.addresses.services import do_begin_scan, do_finish_scan, do_store_findings
from diagnostics_app.models import AddressFix
from portal.connectors.exchange.errors import ObjectNotFound
from portal.jobs.models import Job
from portal.jobs.services import run_job_inline
from tests.support.address_fakes import FakeDirectory, FakeSync, patch_connector

pytestmark = pytest.mark.django_db(transaction=True)
DN = "CN=Cloud Managed,OU=Users,OU=Sync,DC=contoso,DC=com"
GROUP_DN = "CN=Sales,OU=Groups,OU=Sync,DC=contoso,DC=com"
OID = "0b7c2f11-0000-4000-8000-00000000c10d"
CONTACT_ID = "5c0e1a22-0000-4000-8000-0000000c0a7c"
X500 = "x500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=99aa-cm"
URL = "/diagnostics/address-repair/fixes/"


class FakeExchange:
    """Exchange Online: recipients by object id and address; Set-* writes recorded."""

    def __init__(self):
        self.recipients = {
            OID: {"Name": "cloudmanaged", "RecipientTypeDetails": "UserMailbox", "Alias": "cloudmanaged",
                  "PrimarySmtpAddress": "old@contoso.com", "ExternalDirectoryObjectId": OID,
                  "EmailAddresses": ["SMTP:old@contoso.com", X500]},
            CONTACT_ID: {"Name": "partner", "RecipientTypeDetails": "MailContact", "Alias": "partner",
                         "PrimarySmtpAddress": "partner@fabrikam.com", "ExternalDirectoryObjectId": CONTACT_ID,
                         "EmailAddresses": ["SMTP:partner@fabrikam.com", "smtp:part ner@fabrikam.com"],
                         "ExternalEmailAddress": "SMTP:partner@fabrikam.com"},
        }
        self.writes = []

    def get_recipient(self, identity):
        from portal.connectors.exchange.types import Recipient

        for rec in self.recipients.values():
            if identity == rec["ExternalDirectoryObjectId"] or any(
                    a[5:].lower() == str(identity).lower() for a in rec["EmailAddresses"] if ":" in a):
                return Recipient.from_dict({**rec, "Identity": rec["Name"]})
        raise ObjectNotFound(f"{identity} couldn't be found")

    def set_recipient(self, identity, *, recipient_type_details, changes):
        self.writes.append((identity, recipient_type_details, dict(changes)))
        rec = self.recipients[identity]
        if "EmailAddresses" in changes:
            rec["EmailAddresses"] = list(changes["EmailAddresses"])
            rec["PrimarySmtpAddress"] = next(a[5:] for a in rec["EmailAddresses"] if a.startswith("SMTP:"))


@pytest.fixture
def exchange(monkeypatch):
    fake = FakeExchange()
    patch_connector(monkeypatch, "exchange_online", fake)
    return fake


@pytest.fixture
def directory(monkeypatch):
    fake = FakeDirectory(reads_allowed=False)
    patch_connector(monkeypatch, "active_directory", fake)
    return fake


def _stored(found, skipped=()):
    scan = do_begin_scan(job=None, user=None, scope=[])
    do_store_findings(scan=scan, findings=found)
    return do_finish_scan(scan=scan, objects_read=1, cloud_objects_read=1, skipped=list(skipped))


def _cloud_managed_scan():
    """The field notes' case on a mailbox whose Exchange attributes are cloud-managed: mail changed in AD, only
    the X500 in proxyAddresses; AD's values no longer reach Exchange Online."""
    attrs = {"cn": "Cloud Managed", "displayName": "Cloud Managed", "mail": "new@contoso.com",
             "proxyAddresses": [X500], "mailNickname": "cloudmanaged", "userPrincipalName": "cm@contoso.com"}
    twin = CloudObject(id=OID, kind="user", user_principal_name="cm@contoso.com", mail="old@contoso.com",
                       proxy_addresses=("SMTP:old@contoso.com",), synced=True, on_premises_dn=DN,
                       exchange_cloud_managed=True, recipient="mailbox")
    config = ScanConfig(verified_domains=("contoso.com",), initial_domain="contoso.onmicrosoft.com")
    found, skipped = evaluate([entry(dn=DN, object_class=["user"], attributes=attrs)], config=config, tenant=[twin])
    return found, skipped


def test_a_cloud_managed_mailbox_s_fix_targets_exchange_online_with_its_object_id():
    found, _ = _cloud_managed_scan()
    x500 = [f for f in found if f.rule == "x500_only"]
    assert len(x500) == 1 and x500[0].fix.target == "exchange_online" and x500[0].fix.identity == OID
    assert "made in Exchange Online, not in AD" in x500[0].explanation
    assert any(f.rule == "cloud_managed" for f in found)
    # Its own cloud copy is not a duplicate holder of its values.
    assert not [f for f in found if f.rule == "duplicate"]


def test_a_handed_over_object_is_still_its_own_twin_not_a_duplicate():
    attrs = {"cn": "Sales", "mail": "sales@contoso.com", "proxyAddresses": ["SMTP:sales@contoso.com"],
             "mailNickname": "sales", "displayName": "Sales"}
    twin = CloudObject(id="g1", kind="group", mail="sales@contoso.com", proxy_addresses=("SMTP:sales@contoso.com",),
                       synced=False, cloud_managed=True, on_premises_dn=GROUP_DN, recipient="mail_enabled")
    found, _ = evaluate([entry(dn=GROUP_DN, object_class=["group"], attributes=attrs)], config=ScanConfig(),
                        tenant=[twin])
    assert [f.rule for f in found] == ["cloud_managed"]


def test_a_tenant_contact_is_scanned_and_its_fix_goes_to_exchange_online():
    contact = CloudObject(id=CONTACT_ID, kind="contact", display_name="Partner", mail="partner@fabrikam.com",
                          mail_nickname="partner",
                          proxy_addresses=("SMTP:partner@fabrikam.com", "smtp:part ner@fabrikam.com"),
                          recipient="mail_enabled", target_address="SMTP:partner@fabrikam.com")
    synced = CloudObject(id="c2", kind="contact", mail="x@fabrikam.com", proxy_addresses=("SMTP:x y@fabrikam.com",),
                         synced=True)
    found, _ = evaluate([], config=ScanConfig(), tenant=[contact, synced])
    mine = [f for f in found if f.dn == f"cloud:{CONTACT_ID}"]
    bad = [f for f in mine if f.value == "smtp:part ner@fabrikam.com"]
    assert bad and bad[0].object_class == "contact" and "Character" in bad[0].errors.labels
    assert bad[0].fix.target == "exchange_online" and bad[0].fix.identity == CONTACT_ID
    assert "Set-MailContact" in bad[0].explanation
    assert not [f for f in found if f.dn == "cloud:c2"], "a synced contact is read from AD, not as a tenant contact"


def _plan(client, admin, findings) -> AddressFix:
    client.force_login(admin)
    response = client.post(f"{URL}plan/", {"selection": [f.pk for f in findings]})
    fix = AddressFix.objects.get()
    assert response.status_code == 302, response.content[:500]
    return fix


def test_cloud_managed_fix_planned_applied_verified_and_undone_in_exchange_online(
        client, role_users, directory, exchange, no_enqueue, monkeypatch):
    found, skipped = _cloud_managed_scan()
    scan = _stored(found, skipped)
    fix = _plan(client, role_users["Administrator"], [scan.findings.get(rule="x500_only")])
    # The plan starts from Exchange Online's addresses: the new mail becomes the primary, the old one stays.
    assert fix.changes == [{"dn": DN, "attribute": "proxyAddresses", "target": "exchange_online", "identity": OID,
                            "before": ["SMTP:old@contoso.com", X500],
                            "after": ["smtp:old@contoso.com", X500, "SMTP:new@contoso.com"]}]
    assert exchange.writes == [] and directory.writes == []
    page = client.get(f"{URL}{fix.pk}/").content.decode()
    assert f"Exchange Online <span class=\"muted small\">(cloud-managed; object {OID})</span>" in page
    client.force_login(role_users["Approver"])
    client.post(f"{URL}{fix.pk}/approve/", {"valid_hours": "4", "note": "ok", "confirm": "on"})
    fix.refresh_from_db()
    job = run_job_inline(fix.job)
    fix.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert fix.status == FixStatus.APPLIED and directory.writes == []
    assert fix.backup == {DN: {"proxyAddresses": ["SMTP:old@contoso.com", X500]}}
    assert exchange.writes == [(OID, "UserMailbox", {"EmailAddresses": ["smtp:old@contoso.com", X500,
                                                                        "SMTP:new@contoso.com"]})]
    assert fix.report["applied"] == [{"dn": DN, "attributes": ["proxyAddresses"], "target": "Exchange Online"}]

    # Verification reads Exchange Online back; no sync cycle is needed for a change made there.
    monkeypatch.setattr("diagnostics_app.addresses.jobs.entra_connect",
                        lambda: pytest.fail("no sync cycle for an Exchange Online change"))
    client.force_login(role_users["Administrator"])
    client.post(f"{URL}{fix.pk}/verify/")
    verify = run_job_inline(Job.objects.get(kind="address_fix_verify"))
    fix.refresh_from_db()
    assert verify.status == "succeeded", verify.error
    assert fix.report["verification"]["verified"] is True

    client.post(f"{URL}{fix.pk}/undo/")
    undo = run_job_inline(Job.objects.get(kind="address_fix_undo"))
    fix.refresh_from_db()
    assert undo.status == "succeeded" and fix.status == FixStatus.UNDONE
    assert exchange.recipients[OID]["EmailAddresses"] == ["SMTP:old@contoso.com", X500]
    assert directory.writes == []


def test_an_exchange_change_since_the_plan_is_skipped(client, role_users, directory, exchange, no_enqueue):
    found, skipped = _cloud_managed_scan()
    scan = _stored(found, skipped)
    fix = _plan(client, role_users["Administrator"], [scan.findings.get(rule="x500_only")])
    client.force_login(role_users["Approver"])
    client.post(f"{URL}{fix.pk}/approve/", {"valid_hours": "4", "note": "ok", "confirm": "on"})
    exchange.recipients[OID]["EmailAddresses"] = ["SMTP:someone@contoso.com", X500]
    fix.refresh_from_db()
    run_job_inline(fix.job)
    fix.refresh_from_db()
    assert fix.status == FixStatus.APPLIED_WITH_SKIPS and exchange.writes == []
    assert fix.report["skipped"] == [{"dn": DN, "why": "its values changed since the plan"}]


def test_data_mismatch_predicted_for_a_soft_match_on_another_object_type():
    """Connect Health's Data Mismatch: a new AD user whose primary SMTP address a cloud-only group holds is
    soft-matched to it and the export fails with ObjectTypeMismatch. A cloud-only user is taken over (info)."""
    group = CloudObject(id="g-cloud", kind="group", display_name="Help", mail="help@contoso.com",
                        proxy_addresses=("SMTP:help@contoso.com",), recipient="mail_enabled")
    person = CloudObject(id="u-cloud", kind="user", display_name="Ann", user_principal_name="ann@contoso.com",
                         mail="ann@contoso.com", proxy_addresses=("SMTP:ann@contoso.com",))
    unified = CloudObject(id="m365", kind="group", mail="team@contoso.com", proxy_addresses=("SMTP:team@contoso.com",),
                          unified=True)
    config = ScanConfig(verified_domains=("contoso.com",), initial_domain="contoso.onmicrosoft.com")
    new = [entry(dn=f"CN={n},OU=Users,OU=Sync,DC=contoso,DC=com", object_class=["user"],
                 attributes={"cn": n, "displayName": n, "mailNickname": n, "userPrincipalName": f"{n}x@contoso.com",
                             "mail": mail, "proxyAddresses": [f"SMTP:{mail}"]})
           for n, mail in (("helpdesk", "help@contoso.com"), ("ann", "ann@contoso.com"), ("t", "team@contoso.com"))]
    found, _ = evaluate(new, config=config, tenant=[group, person, unified])
    soft = {f.dn.split(",")[0]: f for f in found if f.rule == "soft_match"}
    assert soft["CN=helpdesk"].severity == "error" and soft["CN=helpdesk"].category == "Data Mismatch"
    assert "ObjectTypeMismatch" in soft["CN=helpdesk"].explanation and soft["CN=helpdesk"].others == ("cloud:g-cloud",)
    assert soft["CN=ann"].severity == "info" and soft["CN=ann"].category == ""
    assert "CN=t" not in soft, "a Microsoft 365 group is never soft-matched"
    # An object that already has its cloud copy is not soft-matched again.
    twin = CloudObject(id="h", kind="user", synced=True, on_premises_dn=new[0].dn)
    found, _ = evaluate(new[:1], config=config, tenant=[group, twin])
    assert not [f for f in found if f.rule == "soft_match"]


def test_verify_finds_a_group_in_exchange_online_by_its_addresses(monkeypatch, role_users):
    """Groups and contacts have no UPN: the verify job finds their cloud copy in Exchange Online by today's AD
    addresses, then by the addresses they had before the fix."""
    from diagnostics_app.addresses.fixes import do_finish_apply
    from diagnostics_app.addresses.fixplan import AttributeChange, FixPlan

    fake = FakeExchange()
    fake.recipients["grp"] = {"Name": "sales", "RecipientTypeDetails": "MailUniversalDistributionGroup",
                              "Alias": "sales", "PrimarySmtpAddress": "sales@contoso.com",
                              "ExternalDirectoryObjectId": "grp", "EmailAddresses": ["SMTP:sales@contoso.com"]}

    directory = FakeDirectory({GROUP_DN: {"objectClass": ["top", "group"], "mail": ["sales@contoso.com"],
                                          "proxyAddresses": ["SMTP:sales@contoso.com", "smtp:sales.team@contoso.com"]}})
    for name, connected in (("active_directory", directory), ("exchange_online", fake), ("entra_graph", object()),
                            ("entra_connect", FakeSync())):
        patch_connector(monkeypatch, name, connected, where=("jobs",))
    plan = FixPlan(changes=(AttributeChange(dn=GROUP_DN, attribute="proxyAddresses",
                                            before=("SMTP:sales@contoso.com",),
                                            after=("SMTP:sales@contoso.com", "smtp:sales.team@contoso.com")),))
    fix = AddressFix.objects.create(requested_by=role_users["Administrator"], plan=plan.as_dict(),
                                    plan_hash=plan.hash, finding_ids=[], status=FixStatus.APPLIED)
    do_finish_apply(fix=fix, applied=[{"dn": GROUP_DN, "attributes": ["proxyAddresses"]}], skipped=[])
    from diagnostics_app.addresses.fixes import do_start_verify

    job = run_job_inline(do_start_verify(fix=fix, user=role_users["Administrator"], enqueue=False))
    fix.refresh_from_db()
    results = fix.report["verification"]["results"]
    assert job.status == "warnings" and [r["ok"] for r in results] == [False]
    assert "does not show sales.team@contoso.com" in results[0]["text"]
    # Once the sync brought the address, the same group is found and verified.
    fake.recipients["grp"]["EmailAddresses"].append("smtp:sales.team@contoso.com")
    job = run_job_inline(do_start_verify(fix=fix, user=role_users["Administrator"], enqueue=False))
    fix.refresh_from_db()
    assert job.status == "succeeded" and fix.report["verification"]["verified"] is True


def test_a_tenant_contact_s_finding_page_offers_no_ad_explainer(client, role_users):
    contact = CloudObject(id=CONTACT_ID, kind="contact", display_name="Partner", mail="partner@fabrikam.com",
                          proxy_addresses=("SMTP:partner@fabrikam.com", "smtp:part ner@fabrikam.com"))
    found, _ = evaluate([], config=ScanConfig(), tenant=[contact])
    scan = _stored(found)
    finding = scan.findings.filter(dn=f"cloud:{CONTACT_ID}").first()
    client.force_login(role_users["Administrator"])
    page = client.get(f"/diagnostics/address-repair/findings/{finding.pk}/").content.decode()
    assert "created in Exchange Online" in page and "Explain ProxyCalc for this object" not in page
