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
