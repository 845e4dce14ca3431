"""The lab's Exchange on-premises (portal/lab/onprem/) against the test suite's lab AD.

Most tests call ``run()`` in-process, as the lab cloud would; one goes end to end: a lab cloud
service of its own (port DIROPS_TEST_ONPREM_PORT, default from tests/support/labs.py, data in a temporary
directory) with ``onprem_runner="portal.lab.onprem:run"``, driven by the portal's ExchangeOnPrem client over HTTPS.
Everything created lives in an OU of this module's own under the seed's NotSynced OU (out of the
sync scope), deleted with its contents at the end; seeded objects that are changed are restored.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from portal.connectors import ad, exchange
from portal.connectors.registry import active_directory
from portal.lab import config, layout
from portal.lab.cloud import server
from portal.lab.onprem import run
from tests.support import labs

pytestmark = pytest.mark.integration

PORT = int(os.environ.get("DIROPS_TEST_ONPREM_PORT") or labs.own_port(labs.LAB_ONPREM))
NOT_FOUND = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"


def ok(cmdlet: str, **parameters: Any) -> list[dict[str, Any]]:
    result = run(cmdlet, parameters)
    assert result["errors"] == [], result["errors"]
    return result["output"]


def fails(cmdlet: str, **parameters: Any) -> dict[str, Any]:
    result = run(cmdlet, parameters)
    assert result["output"] == [] and len(result["errors"]) == 1, result
    return result["errors"][0]


@pytest.fixture(scope="module")
def directory(seeded_lab: Any) -> Iterator[ad.ActiveDirectory]:
    with active_directory() as connection:
        yield connection


@pytest.fixture(scope="module")
def area(directory: ad.ActiveDirectory) -> Iterator[str]:
    ou = directory.create_ou(parent=layout.non_sync_ou(config.base_dn()), name=f"onprem-{uuid.uuid4().hex[:8]}")
    yield ou
    directory.delete(ou, recursive=True)


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


def test_accepted_domains_and_not_found(lab_ad: Any) -> None:
    domains = ok("Get-AcceptedDomain")
    assert [d["DomainName"] for d in domains] == ["contoso.com", "fabrikam.com", "legacy.local",
                                                  "contoso.mail.onmicrosoft.com"]
    assert [d["Name"] for d in domains if d["Default"]] == ["contoso.com"]
    assert all(d["DomainType"] == "Authoritative" for d in domains)
    assert ok("Get-AcceptedDomain", Identity="FABRIKAM.com")[0]["Name"] == "fabrikam.com"
    error = fails("Get-AcceptedDomain", Identity="contoso.onmicrosoft.com")
    assert error["exception_type"] == NOT_FOUND
    assert error["message"] == ("The operation couldn't be performed because object 'contoso.onmicrosoft.com' "
                                "couldn't be found on 'dc1.lab.example'.")


def test_get_recipient_by_every_identity_form(directory: ad.ActiveDirectory, seeded_lab: Any) -> None:
    contact_dn = seeded_lab.first("mail_contacts").dn
    contact = directory.read(contact_dn, attributes=["mailNickname", "mail", "objectGUID"])
    forms = [contact.first("mailNickname"), contact.first("mail"), contact.first("mail").upper(), contact_dn,
             str(contact.guid), f"{{{contact.guid}}}", ad.parse_dn(contact_dn).rdn_value]
    for identity in forms:
        [found] = ok("Get-Recipient", Identity=identity)
        assert ad.same_dn(found["DistinguishedName"], contact_dn), identity
    assert found["RecipientType"] == found["RecipientTypeDetails"] == "MailContact"
    assert found["PrimarySmtpAddress"] == contact.first("mail")
    assert found["Identity"].startswith("lab.example/Contoso/Synced/Contacts/")
    [by_canonical] = ok("Get-Recipient", Identity=found["Identity"])
    assert by_canonical["Guid"] == str(contact.guid)
    remote = ok("Get-Recipient", Identity=seeded_lab.first("remote_mailbox_users").dn)[0]
    assert (remote["RecipientType"], remote["RecipientTypeDetails"]) == ("MailUser", "RemoteUserMailbox")
    for missing in ("nobody-at-all", "CN=Nobody,DC=lab,DC=example", str(uuid.uuid4()), "*",
                    "x)(objectClass=*", "lab.example/Contoso/Nowhere"):
        error = fails("Get-Recipient", Identity=missing)
        assert error["exception_type"] == NOT_FOUND, missing
        assert f"object '{missing}' couldn't be found on 'dc1.lab.example'" in error["message"]


def test_binding_errors() -> None:
    error = fails("Get-Mailboxx", Identity="x")
    assert error["exception_type"].endswith("CommandNotFoundException")
    assert error["message"].startswith("The term 'Get-Mailboxx' is not recognized as the name of a cmdlet")
    error = fails("Get-Recipient", Identity="x", Bogus=1)
    assert error["exception_type"] == "System.Management.Automation.ParameterBindingException"
    assert error["message"] == "A parameter cannot be found that matches parameter name 'Bogus'."
    assert fails("Set-MailContact", Identity="x", ModeratedBy=["y"])["exception_type"] == \
        "System.NotSupportedException"
    assert "missing mandatory parameters: Identity." in fails("Set-MailContact", Alias="x")["message"]
    assert "specified more than once" in fails("Get-Recipient", Identity="x", identity="y")["message"]
    assert "Boolean parameters accept only" in fails("Set-MailContact", Identity="x",
                                                     HiddenFromAddressListsEnabled="perhaps")["message"]


def test_dynamic_group_lifecycle_and_filters(directory: ad.ActiveDirectory, area: str, seeded_lab: Any,
                                             tag: str) -> None:
    staff = directory.create_ou(parent=area, name=f"staff-{tag}")
    for i, dept in enumerate(["Sales 'EMEA'", "Sales 'EMEA'", "IT"]):
        directory.create_contact(parent=staff, name=f"Member {tag} {i}", mail=f"m{i}.{tag}@partner.example",
                                 alias=f"m{i}-{tag}", attributes={"department": dept,
                                                                  "msExchRecipientTypeDetails": 64})
    name, alias, address = f"Sales EMEA {tag}", f"sales-emea-{tag}", f"sales-emea-{tag}@contoso.com"
    [created] = ok("New-DynamicDistributionGroup", Name=name, Alias=alias, PrimarySmtpAddress=address,
                   OrganizationalUnit=area, RecipientContainer=staff,
                   RecipientFilter="Department -eq 'Sales ''EMEA''' -and RecipientType -eq 'MailContact'")
    assert created["RecipientTypeDetails"] == created["RecipientType"] == "DynamicDistributionGroup"
    assert created["RecipientFilter"] == "((Department -eq 'Sales ''EMEA''') -and (RecipientType -eq 'MailContact'))"
    assert created["EmailAddresses"] == [f"SMTP:{address}"] and created["PrimarySmtpAddress"] == address
    assert created["RecipientContainer"] == ad_canonical(staff)
    assert created["LegacyExchangeDN"].startswith("/o=Contoso/ou=Exchange Administrative Group")
    members = sorted(o.first("mailNickname") for o in directory.dynamic_members(created["DistinguishedName"]))
    assert members == [f"m0-{tag}", f"m1-{tag}"]

    duplicate = fails("New-DynamicDistributionGroup", Name=name, RecipientFilter="Department -eq 'x'",
                      OrganizationalUnit=area)
    assert duplicate["exception_type"].endswith("ADObjectAlreadyExistsException")
    taken = directory.read(seeded_lab.first("distribution_lists_flat").dn, attributes=["mail"]).first("mail")
    in_use = fails("New-DynamicDistributionGroup", Name=f"Other {tag}", PrimarySmtpAddress=taken,
                   RecipientFilter="Department -eq 'x'", OrganizationalUnit=area)
    assert in_use["exception_type"].endswith("ProxyAddressExistsException")
    assert f'The proxy address "SMTP:{taken}" is already being used by' in in_use["message"]
    bad_filter = fails("New-DynamicDistributionGroup", Name=f"Bad {tag}", RecipientFilter="Colour -eq 'red'")
    assert "\"Colour\" is not a recognized filterable property" in bad_filter["message"]
    assert fails("New-DynamicDistributionGroup", Name=f"Neither {tag}")["message"].startswith("Parameter set cannot")

    ok("Set-DynamicDistributionGroup", Identity=alias, HiddenFromAddressListsEnabled=True,
       EmailAddresses={"@odata.type": "#Exchange.GenericHashTable", "Add": [f"smtp:{alias}@fabrikam.com"]},
       RecipientFilter="(Department -eq 'IT') -and (RecipientType -eq 'MailContact')", CustomAttribute5="hybrid")
    [after] = ok("Get-DynamicDistributionGroup", Identity=address)
    assert after["HiddenFromAddressListsEnabled"] is True and after["CustomAttribute5"] == "hybrid"
    assert after["EmailAddresses"] == [f"SMTP:{address}", f"smtp:{alias}@fabrikam.com"]
    assert after["RecipientFilter"] == "((Department -eq 'IT') -and (RecipientType -eq 'MailContact'))"
    assert [o.first("mailNickname") for o in directory.dynamic_members(after["DistinguishedName"])] == [f"m2-{tag}"]
    ok("Set-DynamicDistributionGroup", Identity=alias, PrimarySmtpAddress=f"{alias}@fabrikam.com")
    [swapped] = ok("Get-DynamicDistributionGroup", Identity=alias)
    assert swapped["EmailAddresses"] == [f"smtp:{address}", f"SMTP:{alias}@fabrikam.com"]
    assert swapped["WindowsEmailAddress"] == f"{alias}@fabrikam.com"
    listed = ok("Get-DynamicDistributionGroup", OrganizationalUnit=area)
    # The module's OU may also hold other tests' groups (any order): this test's tag picks its own.
    assert [g["Alias"] for g in listed if tag in g["Alias"]] == [alias]

    # Injection attempts stay literal values in the stored LDAP filter.
    ok("Set-DynamicDistributionGroup", Identity=alias, RecipientFilter="Name -eq '*)(objectClass=*'")
    [literal] = ok("Get-DynamicDistributionGroup", Identity=alias)
    assert literal["LdapRecipientFilter"] == "(name=\\2a\\29\\28objectClass=\\2a)"
    assert literal["RecipientFilter"] == "(Name -eq '*)(objectClass=*')"
    assert list(directory.dynamic_members(literal["DistinguishedName"])) == []

    prompt = fails("Remove-DynamicDistributionGroup", Identity=alias)
    assert prompt["exception_type"] == "System.Management.Automation.Host.HostException"
    assert ok("Remove-DynamicDistributionGroup", Identity=alias, Confirm=False) == []
    assert fails("Get-DynamicDistributionGroup", Identity=alias)["exception_type"] == NOT_FOUND


def test_seeded_dynamic_lists_render_their_filter(seeded_lab: Any) -> None:
    rendered = {g["Alias"]: g["RecipientFilter"] for g in ok("Get-DynamicDistributionGroup",
                                                             OrganizationalUnit=seeded_lab.ous["groups"])}
    assert rendered["all-remote-mailboxes"] == \
        "((ObjectClass -eq 'user') -and (RecipientTypeDetails -eq 'RemoteUserMailbox'))"
    assert rendered["all-partner-contacts"] == \
        "((ObjectClass -eq 'contact') -and (PrimarySmtpAddress -like '*@partner.example'))"


def test_update_recipient_stamps_only_what_is_missing(directory: ad.ActiveDirectory, area: str, tag: str) -> None:
    bare = directory.add(ad.child_dn(area, "CN", f"Bare {tag}"), object_class="contact", attributes={
        "mailNickname": f"bare-{tag}", "mail": f"bare.{tag}@supplier.example",
        "targetAddress": f"SMTP:bare.{tag}@supplier.example"})
    assert ok("Update-Recipient", Identity=f"bare-{tag}", Confirm=False) == []
    stamped = directory.read(bare)
    assert stamped.get("proxyAddresses") == [f"SMTP:bare.{tag}@supplier.example"]
    assert stamped.first("legacyExchangeDN").startswith("/o=Contoso/")
    assert (stamped.first("msExchRecipientTypeDetails"), stamped.first("msExchRecipientDisplayType")) == ("64", "6")
    usn = stamped.usn_changed
    ok("Update-Recipient", Identity=bare)
    assert directory.read(bare, attributes=["uSNChanged"]).usn_changed == usn  # nothing left to stamp

    ddl = directory.create_dynamic_distribution_list(parent=area, name=f"Plain DDL {tag}", alias=f"plain-{tag}",
                                                     recipient_filter=ad.eq("department", "none"))
    ok("Update-Recipient", Identity=ddl)
    plain = directory.read(ddl)
    assert plain.get("proxyAddresses") == [f"SMTP:plain-{tag}@contoso.com"]
    assert plain.first("mail") == f"plain-{tag}@contoso.com" and plain.first("legacyExchangeDN")
    assert plain.first("msExchRecipientTypeDetails") == "2048"


def test_set_mail_contact_addresses(directory: ad.ActiveDirectory, area: str, tag: str, seeded_lab: Any) -> None:
    dn = directory.create_contact(parent=area, name=f"Pat {tag}", mail=f"pat.{tag}@agency.example",
                                  alias=f"pat-{tag}")
    ok("Set-MailContact", Identity=dn, EmailAddresses={"Add": [f"pat-{tag}@contoso.com"]}, Alias=f"pat2-{tag}",
       DisplayName="Pat (agency)")
    ok("Set-MailContact", Identity=f"pat2-{tag}", ExternalEmailAddress=f"pat.{tag}@supplier.example")
    contact = directory.read(dn)
    assert contact.first("targetAddress") == f"SMTP:pat.{tag}@supplier.example"
    # The primary address followed the external one; the old external address is not kept.
    assert contact.get("proxyAddresses") == [f"smtp:pat-{tag}@contoso.com", f"SMTP:pat.{tag}@supplier.example"]
    assert contact.first("mail") == f"pat.{tag}@supplier.example" and contact.first("displayName") == "Pat (agency)"

    together = fails("Set-MailContact", Identity=dn, EmailAddresses=["a@b.example"], PrimarySmtpAddress="a@b.example")
    assert "can't be used in the same command" in together["message"]
    primary = fails("Set-MailContact", Identity=dn, EmailAddresses={"Remove": [f"pat.{tag}@supplier.example"]})
    assert "primary SMTP address" in primary["message"]
    bad = fails("Set-MailContact", Identity=dn, PrimarySmtpAddress="not an address")
    assert bad["exception_type"].endswith("ParameterBindingArgumentTransformationException")
    assert "isn't correct" in bad["message"]
    alias = fails("Set-MailContact", Identity=dn, Alias="has space")
    assert alias["exception_type"] == "Microsoft.Exchange.Data.DataValidationException"
    taken = directory.read(seeded_lab.first("distribution_lists_flat").dn, attributes=["mail"]).first("mail")
    conflict = fails("Set-MailContact", Identity=dn, EmailAddresses={"Add": [taken]})
    assert conflict["exception_type"].endswith("ProxyAddressExistsException")
    ok("Set-MailContact", Identity=dn, EmailAddresses=[f"pat.{tag}@supplier.example", f"smtp:pat-{tag}@contoso.com"],
       HiddenFromAddressListsEnabled=True, WhatIf=True)
    assert directory.read(dn).get("proxyAddresses") == contact.get("proxyAddresses")  # -WhatIf wrote nothing


def test_set_distribution_group(directory: ad.ActiveDirectory, area: str, tag: str) -> None:
    dn = directory.create_group(parent=area, name=f"Team {tag}", mail=f"team-{tag}@contoso.com", alias=f"team-{tag}")
    ok("Set-DistributionGroup", Identity=f"team-{tag}@contoso.com", HiddenFromAddressListsEnabled=True,
       EmailAddresses=[f"SMTP:team-{tag}@fabrikam.com", f"team-{tag}@contoso.com"])
    [group] = ok("Get-Recipient", Identity=f"team-{tag}")
    assert group["RecipientTypeDetails"] == "MailUniversalDistributionGroup"
    assert group["EmailAddresses"] == [f"SMTP:team-{tag}@fabrikam.com", f"smtp:team-{tag}@contoso.com"]
    assert group["HiddenFromAddressListsEnabled"] is True
    ok("Set-DistributionGroup", Identity=dn, HiddenFromAddressListsEnabled=False)
    assert directory.read(dn, attributes=["msExchHideFromAddressLists"]).get("msExchHideFromAddressLists") == []
    assert fails("Set-DistributionGroup", Identity=f"team-{tag}", Bogus=True)["message"].endswith("'Bogus'.")


# ---------------------------------------------------------------------------------------------
# end to end: the lab cloud service with this runner, and the portal's client


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, seeded_lab: Any) -> Iterator[server.CloudStatus]:
    data_dir = tmp_path_factory.mktemp("onprem-cloud")
    started = time.monotonic()
    status = server.start(data_dir=data_dir, port=PORT, onprem_runner="portal.lab.onprem:run")
    print(f"\nlab cloud with the on-premises runner up in {time.monotonic() - started:.2f} s")
    try:
        yield status
    finally:
        server.stop(data_dir=data_dir)


def test_end_to_end_through_the_lab_cloud(cloud: server.CloudStatus, directory: ad.ActiveDirectory, area: str,
                                          seeded_lab: Any, tag: str) -> None:
    creds = server.lab_credentials(data_dir=cloud.data_dir)
    transport = exchange.LabPowerShellTransport(cloud.exchange_onprem_url, username=creds.powershell_username,
                                                password=creds.powershell_password, ca_file=str(cloud.ca_file))

    def call(cmdlet: str, **parameters: Any) -> list[dict[str, Any]]:
        try:
            return transport.run(cmdlet, parameters)
        except exchange.PowerShellError as exc:
            raise exchange.exchange_error_from(exc) from None

    contact_dn = seeded_lab.first("mail_contacts").dn
    before = directory.read(contact_dn, attributes=["proxyAddresses", "msExchHideFromAddressLists", "mail"])
    with exchange.ExchangeOnPrem(transport) as onprem:
        report = onprem.check()
        assert report.ok and report.details["default_domain"] == "contoso.com"
        domains = [exchange.AcceptedDomain.from_dict(d) for d in call("Get-AcceptedDomain")]
        assert {d.domain_name for d in domains} >= {"contoso.com", "legacy.local", "contoso.mail.onmicrosoft.com"}

        flt = exchange.opath_eq("Department", f"Hybrid {tag}") & exchange.opath_eq("RecipientType", "MailContact")
        created = onprem.new_dynamic_distribution_group(
            name=f"Migrated {tag}", alias=f"migrated-{tag}", recipient_filter=flt, organizational_unit=area,
            primary_smtp_address=f"migrated-{tag}@contoso.com")
        assert created.recipient_filter == f"({flt})"
        assert created.primary_smtp_address == f"migrated-{tag}@contoso.com" and created.guid
        onprem.set_dynamic_distribution_group(f"migrated-{tag}", changes={
            "HiddenFromAddressListsEnabled": True,
            "EmailAddresses": exchange.MultiValuedUpdate(add=(f"smtp:migrated-{tag}@fabrikam.com",))})
        fetched = onprem.get_dynamic_distribution_group(created.guid)
        assert fetched.hidden_from_address_lists_enabled is True
        assert fetched.email_addresses == (f"SMTP:migrated-{tag}@contoso.com", f"smtp:migrated-{tag}@fabrikam.com")
        assert fetched.recipient_container == ad_canonical(area)

        try:
            onprem.set_mail_contact(contact_dn, changes={
                "HiddenFromAddressListsEnabled": True,
                "EmailAddresses": exchange.MultiValuedUpdate(add=(f"smtp:contact-{tag}@contoso.com",))})
            [contact] = call("Get-Recipient", Identity=contact_dn)
            assert contact["HiddenFromAddressListsEnabled"] is True
            assert f"smtp:contact-{tag}@contoso.com" in contact["EmailAddresses"]
        finally:
            restore = {name: before.get(name) for name in ("proxyAddresses", "msExchHideFromAddressLists", "mail")}
            directory.modify(contact_dn, replace=restore)

        with pytest.raises(exchange.ObjectNotFound) as missing:
            onprem.get_dynamic_distribution_group(f"nobody-{tag}")
        assert "couldn't be found on 'dc1.lab.example'" in str(missing.value)
        with pytest.raises(exchange.InvalidParameter, match="Colour"):
            call("Get-DynamicDistributionGroup", Identity=f"migrated-{tag}", Colour="blue")
        with pytest.raises(exchange.AddressInUse):
            call("Set-MailContact", Identity=contact_dn, PrimarySmtpAddress=f"migrated-{tag}@contoso.com")

        assert call("Remove-DynamicDistributionGroup", Identity=f"migrated-{tag}", Confirm=False) == []
        with pytest.raises(exchange.ObjectNotFound):
            onprem.get_dynamic_distribution_group(f"migrated-{tag}")
    password = config.ad_admin_password(create=False)
    assert password not in cloud.log_file.read_text(errors="replace")
    assert password not in json.dumps(run("Get-Recipient", {"Identity": f"nobody-{tag}"}))


def ad_canonical(dn: str) -> str:
    from portal.lab.onprem import canonical_name

    return canonical_name(dn)
