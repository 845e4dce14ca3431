"""The address scan against the seeded lab: real Samba AD read page by page, the lab cloud through msal and
msgraph-sdk, the lab sync server's export errors. The seed (portal/lab/seed.py) holds the field notes'
cases and one object per IdFix error class; each must come out as a finding on its object and attribute."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from diagnostics_app.models import AddressFinding, AddressScan
from portal.lab.seed import CERTIFICATE_USER_IDS_ATTRIBUTE

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]


def test_scan_of_the_seeded_lab_finds_the_field_notes_and_idfix_cases(lab_tenant, lab):
    out = StringIO()
    call_command("address_scan", "--json", stdout=out)
    result = json.loads(out.getvalue())
    scan = AddressScan.objects.get(pk=result["scan"])
    assert result["status"] == "succeeded", result
    assert scan.objects_read >= lab.users and scan.cloud_objects_read > 0

    def on(dn: str) -> list[AddressFinding]:
        return list(scan.findings.filter(dn__iexact=dn))

    # The field notes: mail changed on-premises, proxyAddresses holds only the X500 written back.
    for obj in lab.scenario("mail_only_users_with_only_x500_proxy").objects:
        x500 = [f for f in on(obj.dn) if f.rule == "x500_only"]
        assert len(x500) == 1, obj.dn
        mail = obj.facts["attributes"]["mail"][0]
        assert x500[0].fix["add"] == [f"SMTP:{mail}"] and "will not reach Exchange Online" in x500[0].explanation
    # The UPN as a secondary address: information, by design (never an error).
    for obj in lab.scenario("upn_differs_from_primary_smtp").objects:
        rules = {f.rule: f.severity for f in on(obj.dn)}
        assert rules.get("upn_secondary", "info") == "info" and "idfix" not in rules, obj.dn
    # certificateUserIds written as x509: by the sync rule -> DataValidationFailed predicted, X509: proposed.
    for obj in lab.scenario("certificate_user_ids_lowercase_x509").objects:
        cert = [f for f in on(obj.dn) if f.rule == "certificate_user_ids"]
        value = obj.facts["attributes"][CERTIFICATE_USER_IDS_ATTRIBUTE][0]
        assert cert and cert[0].proposed_value == "X509:" + value[5:], obj.dn
    for obj in lab.scenario("certificate_user_ids_uppercase_x509").objects:
        assert not [f for f in on(obj.dn) if f.rule == "certificate_user_ids"], obj.dn
    # Every seeded IdFix case is found on its object and attribute.
    missing = []
    for name in sorted(lab.scenarios):
        if not name.startswith("idfix_"):
            continue
        for obj in lab.scenario(name).objects:
            attribute = obj.facts["attribute"]
            found = [f for f in on(obj.dn) if f.attribute.lower() == attribute.lower()]
            if not found:
                missing.append((name, obj.dn, attribute))
    assert not missing, missing
    # Duplicates name each other.
    duplicates = lab.scenario("idfix_duplicate").objects
    first = [f for f in on(duplicates[0].dn) if f.rule == "duplicate"]
    assert first and first[0].others and first[0].category == "Duplicate Attribute"
    assert scan.skipped_total >= 1  # krbtgt, Administrator and friends, as IdFix skips them


def _sync() -> None:
    from portal.connectors.registry import entra_connect

    with entra_connect() as sync:
        sync.wait_until_idle(timeout=300, poll=0.5)
        sync.start_sync_cycle(policy="Delta")
        assert sync.wait_until_idle(timeout=300, poll=0.5), "the lab sync cycle did not finish in 5 minutes"


def _cloud_addresses(upn: str) -> list[str]:
    from portal.connectors.registry import entra_graph

    with entra_graph() as graph:
        return list(graph.get_user(upn, select=["id", "proxyAddresses"]).proxy_addresses)


def test_field_notes_fix_end_to_end_plan_approve_apply_sync_undo(lab_tenant, lab, make_user, request):
    """The field notes' case: mail changed, proxyAddresses only the X500 written back, cloud unchanged. The fix
    adds SMTP:<mail>; the verify job's delta sync makes the new mail the cloud's primary, and it says so; undo
    restores AD exactly."""
    from diagnostics_app.addresses.choices import FixStatus
    from diagnostics_app.addresses.fixes import do_approve_fix, do_plan_fix, do_start_undo, do_start_verify
    from diagnostics_app.addresses.rules import ScanConfig, entry, evaluate
    from diagnostics_app.addresses.services import do_begin_scan, do_finish_scan, do_store_findings
    from portal.connectors.registry import active_directory
    from portal.jobs.services import run_job_inline

    planner, approver = make_user("planner", "Administrator"), make_user("approver", "Approver")
    item = lab.scenario("mail_only_users_with_only_x500_proxy").objects[-1]
    with active_directory() as directory:
        obj = directory.read(item.dn, attributes=["cn", "displayName", "mail", "proxyAddresses",
                                                  "userPrincipalName", "mailNickname", "objectClass"])
    original, mail, upn = list(obj.get("proxyAddresses")), obj.first("mail"), obj.first("userPrincipalName")
    previous = item.facts["cloud_primary_smtp"]

    def restore() -> None:
        # Back to the seed's state on both sides: the cloud keeps its previous primary once proxyAddresses holds
        # only the X500 again, so it is set through an SMTP: value first.
        with active_directory() as directory:
            directory.modify(item.dn, replace={"proxyAddresses": [f"SMTP:{previous}", *original]})
        _sync()
        with active_directory() as directory:
            directory.modify(item.dn, replace={"proxyAddresses": original})
        _sync()

    request.addfinalizer(restore)
    assert not any(a.lower() == f"smtp:{mail}".lower() for a in _cloud_addresses(upn))

    found, skipped = evaluate([entry(dn=obj.dn, object_class=obj.get("objectClass"), attributes=obj.attributes)],
                              config=ScanConfig())
    scan = do_begin_scan(job=None, user=planner, scope=[])
    do_store_findings(scan=scan, findings=found)
    do_finish_scan(scan=scan, objects_read=1, cloud_objects_read=0, skipped=skipped)
    finding = scan.findings.get(rule="x500_only")
    with active_directory() as directory:
        fix = do_plan_fix(findings=[finding], user=planner, directory=directory)
    fix = do_approve_fix(fix=fix, user=approver, enqueue=False)
    job = run_job_inline(fix.job)
    fix.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert fix.status == FixStatus.APPLIED and fix.backup == {item.dn: {"proxyAddresses": original}}
    with active_directory() as directory:
        assert f"SMTP:{mail}" in directory.read(item.dn, attributes=["proxyAddresses"]).get("proxyAddresses")
    # Verify: the job runs the delta sync through the lab's Entra Connect server, then reads the cloud user.
    verify = run_job_inline(do_start_verify(fix=fix, user=planner, enqueue=False))
    fix.refresh_from_db()
    assert verify.status == "succeeded", (verify.error, fix.report.get("verification"))
    assert fix.report["verification"]["verified"] is True
    assert [r["ok"] for r in fix.report["verification"]["results"]] == [True]
    cloud = _cloud_addresses(upn)
    assert f"SMTP:{mail}".lower() in [a.lower() for a in cloud if a.startswith("SMTP:")], cloud

    undo = run_job_inline(do_start_undo(fix=fix, user=planner, enqueue=False))
    fix.refresh_from_db()
    assert undo.status == "succeeded" and fix.status == FixStatus.UNDONE
    with active_directory() as directory:
        assert directory.read(item.dn, attributes=["proxyAddresses"]).get("proxyAddresses") == original
