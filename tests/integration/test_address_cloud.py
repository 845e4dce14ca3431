"""A mailbox whose Exchange attributes are cloud-managed (IsExchangeCloudManaged), in the lab: real Samba AD, the
lab's Exchange Online through the portal's connector, the lab's sync engine. AD's new mail no longer reaches the
cloud; the scan says so and proposes the fix in Exchange Online; plan, four eyes, apply (Set-Mailbox, never AD),
verify and undo restore Exchange's exact previous addresses."""

from __future__ import annotations

import json
import uuid
from io import StringIO

import pytest
from django.core.management import call_command

from diagnostics_app.models import AddressScan

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]


def _sync() -> None:
    from portal.connectors.registry import entra_connect

    with entra_connect() as sync:
        sync.wait_until_idle(timeout=300, poll=0.5)
        sync.start_sync_cycle(policy="Delta")
        assert sync.wait_until_idle(timeout=300, poll=0.5), "the lab sync cycle did not finish in 5 minutes"


def _exchange_addresses(oid: str) -> list[str]:
    from portal.connectors.registry import exchange_online

    with exchange_online() as exchange:
        return list(exchange.get_recipient(oid).email_addresses)


def test_cloud_managed_mailbox_fixed_in_exchange_online(lab_tenant, lab, make_user, request):
    from diagnostics_app.addresses.choices import FixStatus
    from diagnostics_app.addresses.fixes import do_approve_fix, do_plan_fix, do_start_undo, do_start_verify
    from portal.connectors.registry import active_directory, entra_graph, exchange_online
    from portal.jobs.services import run_job_inline

    planner, approver = make_user("cm-planner", "Administrator"), make_user("cm-approver", "Approver")
    item = lab.scenario("remote_mailbox_users").objects[-3]
    with active_directory() as directory:
        obj = directory.read(item.dn, attributes=["mail", "proxyAddresses", "userPrincipalName"])
    old_mail, old_proxies, upn = obj.first("mail"), list(obj.get("proxyAddresses")), obj.first("userPrincipalName")
    with entra_graph() as graph:
        oid = graph.get_user(upn, select=["id"]).id
    before = _exchange_addresses(oid)
    new_mail = f"cm.{uuid.uuid4().hex[:8]}@{old_mail.partition('@')[2]}"

    with exchange_online() as exchange:
        exchange.set_mailbox(oid, changes={"IsExchangeCloudManaged": True})

    def restore() -> None:
        with exchange_online() as exchange:
            exchange.set_mailbox(oid, changes={"EmailAddresses": before})
            exchange.set_mailbox(oid, changes={"IsExchangeCloudManaged": False})
        with active_directory() as directory:
            directory.modify(item.dn, replace={"mail": [old_mail], "proxyAddresses": old_proxies})
        _sync()

    request.addfinalizer(restore)
    with active_directory() as directory:
        directory.modify(item.dn, replace={"mail": [new_mail]})
    _sync()
    # The lab's sync honours IsExchangeCloudManaged: AD's addresses no longer reach Exchange Online.
    assert _exchange_addresses(oid) == before

    out = StringIO()
    call_command("address_scan", "--json", stdout=out)
    scan = AddressScan.objects.get(pk=json.loads(out.getvalue())["scan"])
    mine = list(scan.findings.filter(dn__iexact=item.dn))
    assert any(f.rule == "cloud_managed" for f in mine), [(f.rule, f.explanation) for f in mine]
    finding = next(f for f in mine if f.rule == "mail_not_primary")
    assert finding.fix["target"] == "exchange_online" and finding.fix["identity"] == oid

    with active_directory() as directory, exchange_online() as exchange:
        fix = do_plan_fix(findings=[finding], user=planner, directory=directory, exchange=exchange)
    assert [c["target"] for c in fix.changes] == ["exchange_online"]
    fix = do_approve_fix(fix=fix, user=approver, enqueue=False)
    job = run_job_inline(fix.job)
    fix.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert fix.status == FixStatus.APPLIED and fix.backup == {item.dn: {"proxyAddresses": before}}
    after = _exchange_addresses(oid)
    assert f"SMTP:{new_mail}" in after and f"smtp:{old_mail}".lower() in [a.lower() for a in after], after
    with active_directory() as directory:
        assert list(directory.read(item.dn, attributes=["proxyAddresses"]).get("proxyAddresses")) == old_proxies
    verify = run_job_inline(do_start_verify(fix=fix, user=planner, enqueue=False))
    fix.refresh_from_db()
    assert verify.status == "succeeded", (verify.error, fix.report.get("verification"))
    assert fix.report["verification"]["verified"] is True
    # A sync cycle does not take the Exchange change back (AD still holds the old proxyAddresses).
    _sync()
    assert f"SMTP:{new_mail}" in _exchange_addresses(oid)

    undo = run_job_inline(do_start_undo(fix=fix, user=planner, enqueue=False))
    fix.refresh_from_db()
    assert undo.status == "succeeded" and fix.status == FixStatus.UNDONE
    assert _exchange_addresses(oid) == before
