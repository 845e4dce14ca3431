"""The lab's Exchange Online Set-Mailbox and Set-MailContact, answered in-process: a directory-synchronized
mailbox refuses address changes until its Exchange attributes are cloud-managed (IsExchangeCloudManaged); a
contact created in Exchange Online takes them; each change reaches the Entra object (forward sync)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from portal.lab.cloud.api import ApiRequest
from portal.lab.cloud.app import LabCloud
from portal.lab.cloud.auth import EXCHANGE_RESOURCE, issue_access_token


@pytest.fixture
def cloud(tmp_path: Path) -> LabCloud:
    lab = LabCloud(data_dir=tmp_path, tenant_id=str(uuid.uuid4()), initial_domain="contoso.onmicrosoft.com",
                   sync_runner=None, onprem_runner=None, public_base_url=None, token_lifetime=600,
                   sync_in_background=False)
    lab.store.add_accepted_domain(domain_name="contoso.com")
    return lab


def cmdlet(cloud: LabCloud, name: str, **parameters):
    token = issue_access_token(key=cloud._key, tenant_id=cloud.tenant_id, client_id="app",
                               audience=EXCHANGE_RESOURCE, roles=("Exchange.ManageAsApp",))
    body = {"CmdletInput": {"CmdletName": name, "Parameters": parameters}}
    req = ApiRequest(method="POST", path=f"/adminapi/beta/{cloud.tenant_id}/InvokeCommand", query=[],
                     headers={"authorization": f"Bearer {token}"}, body=json.dumps(body).encode(),
                     base_url="https://lab")
    return cloud.handle(req)


def test_synced_mailbox_takes_addresses_only_once_cloud_managed(cloud: LabCloud) -> None:
    user = cloud.store.create_user(display_name="Ann", user_principal_name="ann@contoso.com", mail="ann@contoso.com",
                                   mail_nickname="ann", on_premises_sync_enabled=True, source_anchor="a-ann")
    cloud.store.create_recipient(recipient_type_details="UserMailbox", name="ann", alias="ann",
                                 primary_smtp_address="ann@contoso.com", email_addresses=["SMTP:ann@contoso.com"],
                                 object_id=user["id"], display_name="Ann", is_dir_synced=True)
    refused = cmdlet(cloud, "Set-Mailbox", Identity=user["id"], EmailAddresses={"Add": ["smtp:a@contoso.com"]})
    assert refused.status == 400 and "synchroniz" in json.dumps(refused.body).lower()
    assert cmdlet(cloud, "Set-Mailbox", Identity=user["id"], IsExchangeCloudManaged=True).status == 200
    changed = cmdlet(cloud, "Set-Mailbox", Identity=user["id"],
                     EmailAddresses=["SMTP:ann.new@contoso.com", "smtp:ann@contoso.com"])
    assert changed.status == 200, changed.body
    row = cmdlet(cloud, "Get-Mailbox", Filter="IsExchangeCloudManaged -eq $true").body["value"]
    assert [r["PrimarySmtpAddress"] for r in row] == ["ann.new@contoso.com"]
    assert cloud.store.get_object(object_id=user["id"])["proxyAddresses"] == ["SMTP:ann.new@contoso.com",
                                                                            "smtp:ann@contoso.com"]


def test_cloud_contact_addresses_changed_with_set_mail_contact(cloud: LabCloud) -> None:
    contact = cloud.store.create_contact(display_name="Partner", mail="p@fabrikam.com", mail_nickname="p")
    cloud.store.create_recipient(recipient_type_details="MailContact", name="p", alias="p",
                                 primary_smtp_address="p@fabrikam.com", email_addresses=["SMTP:p@fabrikam.com"],
                                 object_id=contact["id"], display_name="Partner")
    bad = cmdlet(cloud, "Set-MailContact", Identity=contact["id"], EmailAddresses=["smtp:x@contoso.com"])
    assert bad.status == 400 and "exactly one primary" in json.dumps(bad.body)
    ok = cmdlet(cloud, "Set-MailContact", Identity=contact["id"], Alias="partner")
    assert ok.status == 200 and cloud.store.get_object(object_id=contact["id"])["mailNickname"] == "partner"
