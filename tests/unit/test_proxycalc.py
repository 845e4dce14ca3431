"""ProxyCalc computes the cloud addresses the way Microsoft documents it.

The scenario tests follow Microsoft Learn, "How the proxyAddresses attribute is populated in Microsoft
Entra ID" (KB 3190357), https://learn.microsoft.com/troubleshoot/entra/entra-id/user-prov-sync/
proxyaddresses-attribute-populate, with its example values (tenant Contoso, initial domain
Contoso.onmicrosoft.com). The field-note tests follow docs/seed-field-notes.txt. The conflict tests
follow "Identity synchronization and duplicate attribute resiliency". No database is needed.
"""

from __future__ import annotations

import re

import pytest

from portal.addressing.proxycalc import (
    CloudAddresses,
    ObjectKind,
    PrimarySource,
    ProxyCalcInput,
    ProxyCalcResult,
    Recipient,
    RemovalReason,
    calculate,
    is_valid_smtp_address,
    parse_proxy_address,
)
from portal.lab import layout

ARTICLE_VERIFIED = frozenset({"Contoso.com"})
ARTICLE_INITIAL = "Contoso.onmicrosoft.com"
LAB_VERIFIED = frozenset(layout.ACCEPTED_DOMAINS)
LAB_INITIAL = layout.TENANT_DOMAIN


def article(previous: ProxyCalcResult | None = None, in_use=frozenset(), **attributes) -> ProxyCalcResult:
    return calculate(source=ProxyCalcInput(**attributes), verified_domains=ARTICLE_VERIFIED,
                     initial_domain=ARTICLE_INITIAL, previous=previous, in_use_by_others=in_use)


def lab(previous=None, in_use=frozenset(), **attributes) -> ProxyCalcResult:
    return calculate(source=ProxyCalcInput(**attributes), verified_domains=LAB_VERIFIED,
                     initial_domain=LAB_INITIAL, previous=previous, in_use_by_others=in_use)


def removed(result: ProxyCalcResult) -> dict[str, RemovalReason]:
    return {address: reason for address, reason in result.removed}


# --- the article's scenarios ---------------------------------------------------------------------


def test_scenario_1_user_without_mail_mailnickname_or_proxyaddresses():
    """Scenario 1: User doesn't have the mail, mailNickName, or proxyAddresses attribute set.

    At the first sync only mailNickname is filled in (from the UPN prefix). Once the user has an Exchange
    Online licence, the UPN is the primary address and the MOERA (mailNickName@initial domain) a
    secondary one, and mail follows the primary address.
    """
    upn = "user1upn@Contoso.com"
    synced = article(recipient=Recipient.NOT_MAIL_ENABLED, user_principal_name=upn)
    assert synced.mail_nickname == "user1upn"
    assert synced.proxy_addresses == () and synced.mail is None

    licensed = article(synced, recipient=Recipient.MAILBOX, user_principal_name=upn)
    assert set(licensed.proxy_addresses) == {"smtp:user1upn@Contoso.onmicrosoft.com", "SMTP:user1upn@Contoso.com"}
    assert licensed.mail == "user1upn@Contoso.com"
    assert licensed.mail_nickname == "user1upn"
    assert licensed.primary_source is PrimarySource.USER_PRINCIPAL_NAME


def test_scenario_2_user_without_mailnickname_or_proxyaddresses():
    """Scenario 2: User doesn't have the mailNickName or proxyAddresses attribute set.

    mail gives the primary address and the alias at the first sync; the Exchange Online licence then adds
    the UPN and the MOERA as secondary addresses.
    """
    attributes = {"user_principal_name": "user2upn@Contoso.com", "mail": "user2mail@Contoso.com"}
    synced = article(recipient=Recipient.NOT_MAIL_ENABLED, **attributes)
    assert synced.proxy_addresses == ("SMTP:user2mail@Contoso.com",)
    assert synced.mail == "user2mail@Contoso.com" and synced.mail_nickname == "user2mail"

    licensed = article(synced, recipient=Recipient.MAILBOX, **attributes)
    assert set(licensed.proxy_addresses) == {
        "smtp:user2upn@Contoso.com", "smtp:user2mail@Contoso.onmicrosoft.com", "SMTP:user2mail@Contoso.com"}
    assert licensed.mail == "user2mail@Contoso.com" and licensed.mail_nickname == "user2mail"
    assert licensed.primary_source is PrimarySource.MAIL


def test_scenario_3_proxyaddresses_of_the_on_premises_user_change():
    """Scenario 3: You change the proxyAddresses attribute values of the on-premises user.

    Addresses in reserved domains (onmicrosoft.com, microsoftonline.com) are skipped, the on-premises SMTP:
    value is the primary address, the alias comes from its prefix. After the change the new SMTP: value
    replaces the primary address, while the old alias, the old MOERA and the UPN stay.
    """
    upn = "user3upn@Contoso.com"
    first = article(recipient=Recipient.MAILBOX, user_principal_name=upn, proxy_addresses=(
        "smtp:user3pa3@Fabrikam.microsoftonline.com", "smtp:user3pa2@Contoso.onmicrosoft.com",
        "SMTP:user3pa1@Contoso.com"))
    assert set(first.proxy_addresses) == {
        "smtp:user3upn@Contoso.com", "smtp:user3pa1@Contoso.onmicrosoft.com", "SMTP:user3pa1@Contoso.com"}
    assert first.mail == "user3pa1@Contoso.com" and first.mail_nickname == "user3pa1"
    assert removed(first) == {"smtp:user3pa3@Fabrikam.microsoftonline.com": RemovalReason.RESERVED_DOMAIN,
                              "smtp:user3pa2@Contoso.onmicrosoft.com": RemovalReason.RESERVED_DOMAIN}

    changed = article(first, recipient=Recipient.MAILBOX, user_principal_name=upn, proxy_addresses=(
        "smtp:user3new3@Fabrikam.microsoftonline.com", "smtp:user3new2@Contoso.onmicrosoft.com",
        "SMTP:user3new1@Contoso.com"))
    assert set(changed.proxy_addresses) == {
        "SMTP:user3new1@Contoso.com", "smtp:user3upn@Contoso.com", "smtp:user3pa1@Contoso.onmicrosoft.com"}
    assert changed.proxy_addresses[0] == "SMTP:user3new1@Contoso.com"
    assert changed.mail == "user3new1@Contoso.com"
    assert changed.mail_nickname == "user3pa1", "the old alias stays while mailNickname is not set on-premises"
    assert set(removed(changed)) == {"smtp:user3new3@Fabrikam.microsoftonline.com",
                                     "smtp:user3new2@Contoso.onmicrosoft.com"}


def test_scenario_4_exchange_online_license_is_removed():
    """Scenario 4: Exchange Online license is removed.

    With the licence, UPN primary plus MOERA. Without it, the UPN address goes and the MOERA becomes the
    primary address (and mail). A secondary smtp address added on-premises afterwards is added, the UPN
    comes back as a secondary address, and the MOERA stays primary.
    """
    upn = "user4upn@Contoso.com"
    licensed = article(recipient=Recipient.MAILBOX, user_principal_name=upn)
    assert set(licensed.proxy_addresses) == {"smtp:user4upn@Contoso.onmicrosoft.com", "SMTP:user4upn@Contoso.com"}
    assert licensed.mail == upn and licensed.mail_nickname == "user4upn"

    unlicensed = article(licensed, recipient=Recipient.NOT_MAIL_ENABLED, user_principal_name=upn)
    assert unlicensed.proxy_addresses == ("SMTP:user4upn@Contoso.onmicrosoft.com",)
    assert unlicensed.mail == "user4upn@Contoso.onmicrosoft.com"
    assert unlicensed.primary_source is PrimarySource.MOERA

    secondary_added = article(unlicensed, recipient=Recipient.NOT_MAIL_ENABLED, user_principal_name=upn,
                              proxy_addresses=("smtp:user4new@Contoso.com",))
    assert set(secondary_added.proxy_addresses) == {
        "smtp:user4upn@Contoso.com", "smtp:user4new@Contoso.com", "SMTP:user4upn@Contoso.onmicrosoft.com"}
    assert secondary_added.mail == "user4upn@Contoso.onmicrosoft.com"
    assert secondary_added.mail_nickname == "user4upn"
    assert secondary_added.primary_source is PrimarySource.PREVIOUS_CLOUD_PRIMARY


def test_scenario_5_mailnickname_value_is_changed():
    """Scenario 5: The mailNickName attribute value is changed.

    The cloud mailNickName follows the on-premises value; mail and proxyAddresses stay as they are (the
    MOERA is not rebuilt from the new alias).
    """
    upn = "user5upn@Contoso.com"
    first = article(recipient=Recipient.MAILBOX, user_principal_name=upn)
    assert set(first.proxy_addresses) == {"smtp:user5upn@Contoso.onmicrosoft.com", "SMTP:user5upn@Contoso.com"}

    renamed = article(first, recipient=Recipient.MAILBOX, user_principal_name=upn, mail_nickname="user5new1")
    assert renamed.mail_nickname == "user5new1"
    assert renamed.mail == "user5upn@Contoso.com"
    assert set(renamed.proxy_addresses) == set(first.proxy_addresses)
    assert renamed.moera == "user5upn@Contoso.onmicrosoft.com"


def test_scenario_6_two_users_have_the_same_mailnickname():
    """Scenario 6: Two users have the same mailNickName attribute.

    The first user gets the MOERA user6mnn@Contoso.onmicrosoft.com. For the second it is taken, so four
    digits are appended to the alias in the MOERA (the article shows user6mnn5236; the digits are random
    there and derived from the object here); mailNickName itself stays user6mnn.
    """
    first = article(recipient=Recipient.MAILBOX, user_principal_name="user6a@Contoso.com", mail_nickname="user6mnn")
    assert set(first.proxy_addresses) == {"smtp:user6mnn@Contoso.onmicrosoft.com", "SMTP:user6a@Contoso.com"}
    assert first.mail == "user6a@Contoso.com" and first.mail_nickname == "user6mnn"

    taken = {"user6mnn@contoso.onmicrosoft.com"}
    second = article(in_use=taken, recipient=Recipient.MAILBOX, user_principal_name="user6b@Contoso.com",
                     mail_nickname="user6mnn", source_anchor="b-anchor")
    assert second.mail == "user6b@Contoso.com" and second.mail_nickname == "user6mnn"
    assert re.fullmatch(r"user6mnn\d{4}@Contoso\.onmicrosoft\.com", second.moera or "")
    assert set(second.proxy_addresses) == {f"smtp:{second.moera}", "SMTP:user6b@Contoso.com"}
    assert removed(second) == {"smtp:user6mnn@Contoso.onmicrosoft.com": RemovalReason.IN_USE_BY_ANOTHER_OBJECT}

    again = article(second, in_use=taken, recipient=Recipient.MAILBOX, user_principal_name="user6b@Contoso.com",
                    mail_nickname="user6mnn", source_anchor="b-anchor")
    assert again.moera == second.moera, "the next sync cycle does not draw new digits"


# --- the article's general rules ---------------------------------------------------------------------


def test_malformed_and_legacy_addresses_are_discarded():
    """The article's list of what proxy calculation discards: legacy protocols (MSMAIL, X400), addresses
    without a protocol prefix, with a space or otherwise not RFC 5322; an X500 in /o=MicrosoftOnline
    (2020 revision of the article)."""
    result = lab(recipient=Recipient.MAILBOX, user_principal_name="ann@contoso.com", proxy_addresses=(
        "SMTP:ann@contoso.com", "X400:c=US;a= ;p=Contoso;o=Exchange;s=Ann;", "MS:CONTOSO/ANN", "ann2@contoso.com",
        "smtp:ann 3@contoso.com", "smtp:ann(old)@contoso.com", "smtp:ann.contoso.com", "smtp:ann@contoso..com",
        "smtp:.ann@contoso.com", "x500:/o=MicrosoftOnline/ou=External (FYDIBOHF25SPDLT)/cn=Recipients/cn=ann"))
    reasons = removed(result)
    assert reasons["X400:c=US;a= ;p=Contoso;o=Exchange;s=Ann;"] is RemovalReason.LEGACY_ADDRESS_TYPE
    assert reasons["MS:CONTOSO/ANN"] is RemovalReason.LEGACY_ADDRESS_TYPE
    assert reasons["ann2@contoso.com"] is RemovalReason.MALFORMED
    for bad in ("smtp:ann 3@contoso.com", "smtp:ann(old)@contoso.com", "smtp:ann.contoso.com",
                "smtp:ann@contoso..com", "smtp:.ann@contoso.com"):
        assert reasons[bad] is RemovalReason.MALFORMED, bad
    assert reasons["x500:/o=MicrosoftOnline/ou=External (FYDIBOHF25SPDLT)/cn=Recipients/cn=ann"] \
        is RemovalReason.RESERVED_DOMAIN
    assert set(result.proxy_addresses) == {"SMTP:ann@contoso.com", "smtp:ann@contoso.onmicrosoft.com"}


def test_unverified_domain_is_removed_from_a_licensed_user():
    """The article: addresses with a non-verified domain suffix are removed once the user has an Exchange Online
    licence; the field notes' lab domain legacy.local is not verified."""
    result = lab(recipient=Recipient.MAILBOX, user_principal_name="hugo@contoso.com", mail_nickname="hugo",
                 proxy_addresses=("SMTP:hugo@contoso.com", "smtp:hugo@legacy.local",
                                  "smtp:hugo@contoso.mail.onmicrosoft.com"))
    assert removed(result) == {"smtp:hugo@legacy.local": RemovalReason.UNVERIFIED_DOMAIN}
    assert set(result.proxy_addresses) == {"SMTP:hugo@contoso.com", "smtp:hugo@contoso.mail.onmicrosoft.com",
                                           "smtp:hugo@contoso.onmicrosoft.com"}, \
        "the verified hybrid routing domain is kept; only the initial domain is the cloud's"
    assert any("legacy.local is not a verified domain" in line for line in result.explanation)


def test_unverified_domain_is_kept_without_an_exchange_online_license():
    """The article removes non-verified domains only 'if the user is assigned an Exchange Online license':
    an unlicensed user keeps them (scenario 2's first sync, with an unverified mail domain)."""
    result = lab(recipient=Recipient.NOT_MAIL_ENABLED, user_principal_name="kim@contoso.com",
                 mail="kim@legacy.local")
    assert result.proxy_addresses == ("SMTP:kim@legacy.local",)
    assert result.removed == ()
    licensed = lab(result, recipient=Recipient.MAILBOX, user_principal_name="kim@contoso.com", mail="kim@legacy.local")
    assert removed(licensed) == {"SMTP:kim@legacy.local": RemovalReason.UNVERIFIED_DOMAIN}
    assert licensed.primary_smtp == "kim@contoso.com", "the next rule: the UPN"
    assert set(licensed.proxy_addresses) == {"SMTP:kim@contoso.com", "smtp:kim@contoso.onmicrosoft.com"}


def test_list_whose_primary_is_in_an_unverified_domain_falls_back_to_the_moera():
    """The seed's non-accepted-domain list: its SMTP: value in legacy.local is removed; mail is ignored because
    proxyAddresses is set, a group has no UPN, so the MOERA is the primary address."""
    result = lab(kind=ObjectKind.GROUP, recipient=Recipient.MAIL_ENABLED, mail="old-sales-desk@legacy.local",
                 mail_nickname="old-sales-desk", proxy_addresses=(
                     "SMTP:old-sales-desk@legacy.local", "smtp:old-sales-desk@contoso.mail.onmicrosoft.com"))
    assert result.primary_smtp == "old-sales-desk@contoso.onmicrosoft.com"
    assert result.primary_source is PrimarySource.MOERA
    assert result.proxy_addresses[0] == "SMTP:old-sales-desk@contoso.onmicrosoft.com"
    assert "smtp:old-sales-desk@contoso.mail.onmicrosoft.com" in result.proxy_addresses
    assert removed(result) == {"SMTP:old-sales-desk@legacy.local": RemovalReason.UNVERIFIED_DOMAIN}


def test_case_of_the_prefix_marks_the_primary_and_duplicates_collapse_case_insensitively():
    """SMTP: is the primary, smtp: a secondary; the same address in another case is one address; X500, SIP and
    other types pass through as written."""
    result = lab(recipient=Recipient.MAILBOX, user_principal_name="Eva.Berg@contoso.com", mail_nickname="eva.berg",
                 proxy_addresses=("smtp:eva.berg@fabrikam.com", "SMTP:Eva.Berg@contoso.com",
                                  "smtp:EVA.BERG@CONTOSO.COM", "SIP:eva.berg@contoso.com",
                                  "X500:/o=Contoso/ou=First/cn=Recipients/cn=eva",
                                  "x500:/O=CONTOSO/OU=FIRST/CN=RECIPIENTS/CN=EVA", "EUM:1234;phone-context=x"))
    assert result.proxy_addresses == (
        "SMTP:Eva.Berg@contoso.com", "smtp:eva.berg@fabrikam.com", "smtp:eva.berg@contoso.onmicrosoft.com",
        "SIP:eva.berg@contoso.com", "X500:/o=Contoso/ou=First/cn=Recipients/cn=eva", "EUM:1234;phone-context=x")
    assert result.mail == "Eva.Berg@contoso.com"


def test_moera_is_always_present_on_a_mail_recipient():
    """MOERA: every mail recipient (mailbox, mail user, mail-enabled group) gets alias@initial domain, even when
    on-premises supplies an address in the initial domain itself (that one is discarded as reserved)."""
    for source in (
        ProxyCalcInput(recipient=Recipient.MAILBOX, user_principal_name="a.b@contoso.com", mail_nickname="a.b",
                       proxy_addresses=("SMTP:a.b@contoso.com", "smtp:other@contoso.onmicrosoft.com")),
        ProxyCalcInput(recipient=Recipient.MAIL_ENABLED, user_principal_name="c.d@contoso.com", mail="c.d@contoso.com"),
        ProxyCalcInput(kind=ObjectKind.GROUP, recipient=Recipient.MAIL_ENABLED, mail_nickname="sales",
                       proxy_addresses=("SMTP:sales@contoso.com",)),
    ):
        result = calculate(source=source, verified_domains=LAB_VERIFIED, initial_domain=LAB_INITIAL)
        moeras = [a for a in result.proxy_addresses if a.lower().endswith("@contoso.onmicrosoft.com")]
        assert len(moeras) == 1 and result.moera and moeras == [f"smtp:{result.moera}"], result.proxy_addresses
    assert calculate(source=ProxyCalcInput(recipient=Recipient.MAILBOX, user_principal_name="a.b@contoso.com",
                                           mail_nickname="a.b", proxy_addresses=("SMTP:a.b@contoso.com",)),
                     verified_domains=LAB_VERIFIED, initial_domain=LAB_INITIAL).moera == "a.b@contoso.onmicrosoft.com"


def test_contact_keeps_its_external_address_and_gets_no_moera_or_upn():
    """A mail contact's address is outside the tenant by nature: no verified-domain filter, no MOERA, no UPN;
    without proxyAddresses or mail its targetAddress is its address."""
    result = lab(kind=ObjectKind.CONTACT, recipient=Recipient.MAIL_ENABLED, mail_nickname="ext.ann",
                 target_address="SMTP:ann@partner.example")
    assert result.proxy_addresses == ("SMTP:ann@partner.example",)
    assert result.primary_source is PrimarySource.TARGET_ADDRESS and result.moera is None
    with_proxy = lab(kind=ObjectKind.CONTACT, recipient=Recipient.MAIL_ENABLED, mail="ann@partner.example",
                     proxy_addresses=("SMTP:ann@partner.example",), target_address="SMTP:ann@partner.example")
    assert with_proxy.proxy_addresses == ("SMTP:ann@partner.example",) and with_proxy.removed == ()


# --- the field notes ---------------------------------------------------------------------------------


def test_field_notes_mail_only_user_then_mail_change_reaches_exchange_online():
    """Field notes, "Provisioning Exchange Online mailboxes with only a mail attribute": a user with only mail
    is not a recipient until licensed; licensed, its primary address is mail; a mail change (no proxyAddresses
    on-premises) changes the primary address, and the UPN stays as a secondary address."""
    upn = "MailOnly@e-domain.net"
    verified = {"e-domain.net", "e-domain.com"}
    initial = "domain.onmicrosoft.com"

    def run(previous, recipient, mail):
        return calculate(source=ProxyCalcInput(recipient=recipient, user_principal_name=upn, mail=mail),
                         verified_domains=verified, initial_domain=initial, previous=previous)

    licensed = run(None, Recipient.MAILBOX, "mailOnly@e-domain.net")
    assert set(licensed.proxy_addresses) == {"SMTP:mailOnly@e-domain.net", "smtp:mailOnly@domain.onmicrosoft.com"}
    changed = run(licensed, Recipient.MAILBOX, "mailOnly@e-domain.com")
    assert set(changed.proxy_addresses) == {"SMTP:mailOnly@e-domain.com", "smtp:MailOnly@e-domain.net",
                                            "smtp:mailOnly@domain.onmicrosoft.com"}
    assert not changed.mail_ignored


def test_field_notes_x500_only_proxyaddresses_stop_mail_changes():
    """Field notes: hybrid writeback wrote the cloud X500 into proxyAddresses of a mail-only user. From then on
    proxyAddresses decides: it holds no SMTP address, so the change of mail never reaches Exchange Online
    and the primary address stays what the cloud had. Stamping an SMTP: value on-premises fixes it."""
    x500 = ("x500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/"
            "cn=233c7693141f41d2b6ad1a2e24a5bf63-eed81dfa-24")
    upn = "MailOnly@e-domain.net"
    verified = {"e-domain.net", "e-domain.com"}
    initial = "domain.onmicrosoft.com"
    cloud = CloudAddresses(mail="MailOnly@e-domain.net", mail_nickname="mailOnly",
                           proxy_addresses=("SMTP:MailOnly@e-domain.net", "smtp:mailOnly@domain.onmicrosoft.com"))

    stuck = calculate(source=ProxyCalcInput(recipient=Recipient.MAILBOX, user_principal_name=upn,
                                            mail="TotallyNewAddress@e-domain.com", proxy_addresses=(x500,),
                                            cloud_legacy_exchange_dn=x500),
                      verified_domains=verified, initial_domain=initial, previous=cloud)
    assert stuck.primary_smtp == "MailOnly@e-domain.net" and stuck.mail == "MailOnly@e-domain.net"
    assert set(stuck.proxy_addresses) == {"SMTP:MailOnly@e-domain.net", "smtp:mailOnly@domain.onmicrosoft.com"}
    assert stuck.mail_ignored
    assert stuck.primary_source is PrimarySource.PREVIOUS_CLOUD_PRIMARY
    assert "proxyAddresses is set on-premises, so mail is ignored for the primary address." in stuck.explanation
    assert any("calculation from mail stops" in line for line in stuck.explanation)

    # Without the cloud's own legacyExchangeDN at hand the X500 is passed through like any other X500.
    passed = calculate(source=ProxyCalcInput(recipient=Recipient.MAILBOX, user_principal_name=upn,
                                             mail="TotallyNewAddress@e-domain.com", proxy_addresses=(x500,)),
                       verified_domains=verified, initial_domain=initial, previous=cloud)
    assert x500 in passed.proxy_addresses and passed.primary_smtp == "MailOnly@e-domain.net"

    fixed = calculate(source=ProxyCalcInput(recipient=Recipient.MAILBOX, user_principal_name=upn,
                                            mail="TotallyNewAddress@e-domain.com", cloud_legacy_exchange_dn=x500,
                                            proxy_addresses=("SMTP:totallyDifferentAddress@e-domain.com", x500)),
                      verified_domains=verified, initial_domain=initial, previous=stuck)
    assert set(fixed.proxy_addresses) == {"SMTP:totallyDifferentAddress@e-domain.com", "smtp:MailOnly@e-domain.net",
                                          "smtp:mailOnly@domain.onmicrosoft.com"}
    assert fixed.primary_source is PrimarySource.ON_PREMISES_PROXY_ADDRESSES


def test_field_notes_mail_change_ignored_when_proxyaddresses_has_a_primary():
    """Field notes: once proxyAddresses is set on-premises, changing mail alone changes nothing in the cloud."""
    result = lab(recipient=Recipient.MAILBOX, user_principal_name="jo@contoso.com", mail="jo.new@contoso.com",
                 mail_nickname="jo", proxy_addresses=("SMTP:jo@contoso.com",))
    assert result.primary_smtp == "jo@contoso.com" and result.mail == "jo@contoso.com"
    assert result.mail_ignored
    assert any("mail is jo.new@contoso.com on-premises" in line for line in result.explanation)


def test_field_notes_upn_is_a_secondary_address_of_a_mail_recipient():
    """Field notes, "ProxyCalc and User Principal Names": a remote mailbox whose UPN (UPNTest@domain.net) is not
    among its proxyAddresses still gets it as a secondary smtp address in Entra ID, whatever its licence."""
    x500 = ("x500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/"
            "cn=a0b7e9472d3b4f678b47d62d2908575e-f80c3258-a7")
    for recipient in (Recipient.MAILBOX, Recipient.MAIL_ENABLED):
        result = calculate(source=ProxyCalcInput(recipient=recipient, user_principal_name="UPNTest@domain.net",
                                                 mail="UPNTest@domain.com", mail_nickname="UPNTest",
                                                 proxy_addresses=(x500, "SMTP:UPNTest@domain.com"),
                                                 cloud_legacy_exchange_dn=x500),
                           verified_domains={"domain.com", "domain.net"}, initial_domain="domain.onmicrosoft.com")
        assert set(result.proxy_addresses) == {"smtp:UPNTest@domain.net", "smtp:UPNTest@domain.onmicrosoft.com",
                                               "SMTP:UPNTest@domain.com"}
        assert removed(result) == {x500: RemovalReason.OWN_LEGACY_EXCHANGE_DN}


def test_upn_with_an_unverified_suffix_is_replaced_by_the_initial_domain():
    """The seed's .local UPN: Entra ID gives the user prefix@initial domain as UPN, so the UPN address added is
    in the initial domain and the on-premises UPN never becomes an address."""
    result = lab(recipient=Recipient.MAILBOX, user_principal_name="kim.lee@legacy.local", mail_nickname="kim.lee",
                 mail="kim.lee@contoso.com")
    assert result.user_principal_name == "kim.lee@contoso.onmicrosoft.com"
    assert set(result.proxy_addresses) == {"SMTP:kim.lee@contoso.com", "smtp:kim.lee@contoso.onmicrosoft.com"}
    assert removed(result) == {"smtp:kim.lee@legacy.local": RemovalReason.UNVERIFIED_DOMAIN}


# --- proxy address conflicts ---------------------------------------------------------------------------


def test_conflicting_address_is_removed_from_the_newcomer_not_the_holder():
    """Duplicate attribute resiliency: the address another object holds is quarantined on the object that
    brings it; the holder, recalculated, keeps it."""
    holder_first = lab(recipient=Recipient.MAILBOX, user_principal_name="lars@contoso.com", mail_nickname="lars",
                       proxy_addresses=("SMTP:lars@contoso.com", "smtp:helpdesk@contoso.com"))
    assert "smtp:helpdesk@contoso.com" in holder_first.proxy_addresses

    taken = {"helpdesk@contoso.com"}
    newcomer = lab(in_use=taken, recipient=Recipient.MAILBOX, user_principal_name="lena@contoso.com",
                   mail_nickname="lena", proxy_addresses=("SMTP:lena@contoso.com", "smtp:helpdesk@contoso.com"))
    assert "smtp:helpdesk@contoso.com" not in newcomer.proxy_addresses
    assert removed(newcomer) == {"smtp:helpdesk@contoso.com": RemovalReason.IN_USE_BY_ANOTHER_OBJECT}
    assert any("quarantines" in line for line in newcomer.explanation)

    # The holder is recalculated while the newcomer exists: its own address is not taken from it.
    holder_again = lab(holder_first, in_use=lambda address: address == "helpdesk@contoso.com",
                       recipient=Recipient.MAILBOX, user_principal_name="lars@contoso.com", mail_nickname="lars",
                       proxy_addresses=("SMTP:lars@contoso.com", "smtp:helpdesk@contoso.com"))
    assert "smtp:helpdesk@contoso.com" in holder_again.proxy_addresses


def test_conflicting_primary_falls_to_the_next_rule():
    """A primary address held by another object is removed; the next rule (here mail → UPN) gives the primary."""
    result = lab(in_use={"info@contoso.com"}, recipient=Recipient.MAILBOX, user_principal_name="maria@contoso.com",
                 mail_nickname="maria", mail="info@contoso.com")
    assert result.primary_smtp == "maria@contoso.com"
    assert result.primary_source is PrimarySource.USER_PRINCIPAL_NAME
    assert removed(result) == {"SMTP:info@contoso.com": RemovalReason.IN_USE_BY_ANOTHER_OBJECT}


# --- building blocks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "ok"), [
    ("a@contoso.com", True), ("a.b+c@sub.contoso.com", True), ("a..b@contoso.com", False),
    ("a@contoso_corp.com", False), ("a@@contoso.com", False), ("a@contoso", False), ("a b@contoso.com", False),
    ("zoë@contoso.com", False), ("-a@contoso.com", True),
])
def test_smtp_address_syntax(value, ok):
    assert is_valid_smtp_address(value) is ok


def test_parse_proxy_address_keeps_the_case_of_the_prefix():
    parsed = parse_proxy_address("SMTP:A@contoso.com")
    assert parsed is not None and parsed.is_primary and parsed.key == ("SMTP", "a@contoso.com")
    assert parse_proxy_address("a@contoso.com") is None


def test_only_a_user_can_have_a_mailbox():
    with pytest.raises(ValueError, match="only a user can have an Exchange Online mailbox"):
        ProxyCalcInput(kind=ObjectKind.GROUP, recipient=Recipient.MAILBOX)
