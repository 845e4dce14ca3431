"""Address repair's rules: IdFix's multi-tenant rule set per attribute (github.com/microsoft/idfix,
MultiTenantRuleCollection.cs), duplicates across the scope / attributes / tenant, the proxyAddresses cases of
docs/seed-field-notes.txt, the ProxyCalc comparison and certificateUserIds. Pure functions: no database."""

from __future__ import annotations

import pytest

from diagnostics_app.addresses.rules import (
    Action,
    Category,
    CloudObject,
    ErrorType,
    ExportError,
    Rule,
    ScanConfig,
    Severity,
    entry,
    evaluate,
)
from diagnostics_app.addresses.rules.certificates import corrected_certificate_user_id
from diagnostics_app.addresses.rules.duplicates import DuplicateIndex
from diagnostics_app.addresses.rules.idfix import check_entry, rfc2822, skip_reason

VERIFIED = ("contoso.com", "fabrikam.com")
CONFIG = ScanConfig(verified_domains=VERIFIED, initial_domain="contoso.onmicrosoft.com",
                    certificate_attribute="altSecurityIdentities")


def user(name: str = "Anna Berg", **attributes):
    alias = name.lower().replace(" ", ".")
    base = {"cn": name, "displayName": name, "givenName": name.split()[0], "sAMAccountName": alias[:20],
            "userPrincipalName": f"{alias}@contoso.com", "mail": f"{alias}@contoso.com", "mailNickname": alias,
            "proxyAddresses": [f"SMTP:{alias}@contoso.com"], "msExchRecipientTypeDetails": "2147483648"}
    base.update(attributes)
    base = {k: v for k, v in base.items() if v is not None}
    return entry(dn=f"CN={name},OU=Users,DC=contoso,DC=com", object_class=["top", "person", "user"],
                 attributes=base)


def idfix(e, attribute=None):
    return [f for f in check_entry(e, verified_domains=VERIFIED) if attribute is None or f.attribute == attribute]


def test_a_clean_mailbox_user_raises_nothing():
    found, skipped = evaluate([user()], config=CONFIG)
    assert found == [] and skipped == []


# --- per attribute, must fire ----------------------------------------------------------------------------

@pytest.mark.parametrize(("attribute", "value", "errors", "proposed"), [
    ("displayName", "x" * 256, {"Length"}, "x" * 255),
    ("displayName", " Pieter Peeters", {"Character"}, "Pieter Peeters"),
    ("displayName", "Rosa Romano ", {"Character"}, "Rosa Romano"),
    ("givenName", "g" * 64, {"Length"}, "g" * 63),
    ("mail", "bob.smith@@contoso.com", {"LocalPart"}, "bob.smith@contoso.com"),
    ("mail", "lee@contoso_corp.com", {"DomainPart"}, "lee@contosocorp.com"),
    ("mail", "karin..kim@contoso.com", {"LocalPart", "Format"}, "karin..kim@contoso.com"),
    ("mail", "a@contoso.local", {"TopLevelDomain"}, "a@contoso.local"),
    ("mailNickname", ".leading.period", {"Character"}, "leading.period"),
    ("mailNickname", "n" * 65, {"Length"}, "n" * 64),
    ("sAMAccountName", "averyverylongaccount1", {"Length"}, "averyverylongaccount"),
    ("sAMAccountName", "bad|name", {"Character"}, "badname"),
    ("targetAddress", "SMTP:anna berg@contoso.mail.onmicrosoft.com", {"Character"},
     "SMTP:annaberg@contoso.mail.onmicrosoft.com"),
    ("targetAddress", "SMTP:anna@contoso:mail.onmicrosoft.com", {"Character"},
     "SMTP:anna@contosomail.onmicrosoft.com"),
    ("userPrincipalName", "tom&jerry@contoso.com", {"Character"}, "tomjerry@contoso.com"),
    ("userPrincipalName", "zoë.müller@contoso.com", {"Character"}, "zo.mller@contoso.com"),
    ("userPrincipalName", "tara torres@contoso.com", {"Character"}, "taratorres@contoso.com"),
    ("userPrincipalName", "kim.lee@legacy.local", {"TopLevelDomain"}, "kim.lee@legacy.local"),
    ("userPrincipalName", ("u" * 110) + "@contoso.com", {"Length", "DomainPart", "Format"}, None),
    ("userPrincipalName", "noatsign.contoso.com", {"DomainPart", "LocalPart", "Format"}, "noatsign.contoso.com"),
])
def test_idfix_fires(attribute, value, errors, proposed):
    found = [f for f in idfix(user(**{attribute: value}), attribute) if f.rule is Rule.IDFIX and f.errors]
    assert found, f"no finding for {attribute}={value!r}"
    assert set(found[0].errors.labels) == errors
    assert found[0].action is Action.EDIT
    if proposed is not None:
        assert found[0].proposed_value == proposed


@pytest.mark.parametrize(("value", "errors", "proposed", "action"), [
    ("smtp:carla(old)@contoso.com", {"Character"}, "smtp:carlaold@contoso.com", Action.EDIT),
    ("smtp: sven@fabrikam.com", {"Character"}, "smtp:sven@fabrikam.com", Action.EDIT),
    ("smtp:greta.contoso.com", {"DomainPart", "LocalPart", "Format"}, "smtp:greta.contoso.com", Action.EDIT),
    ("smtp:hugo@legacy.local", {"TopLevelDomain"}, "smtp:hugo@legacy.local", Action.EDIT),
    ("smtp:ivan@contoso..com", {"DomainPart", "Format"}, None, Action.EDIT),
    ("smtp:.julia@contoso.com", {"LocalPart", "Format"}, None, Action.EDIT),
    ("sip:anna@contoso.com:5061", {"Character"}, "sip:anna@contoso.com5061", Action.EDIT),
    ("X500:/o=ExchangeLabs/cn=" + "f" * 250, {"Length"}, None, Action.REMOVE),
    ("x500:/o=ExchangeLabs/cn=Recipients/cn=\"quoted\"", {"Character"}, None, Action.EDIT),
    ("X400:c=US;a= ;p=Contoso;o=Exchange;s=Berg(Anna);", {"Character"}, None, Action.EDIT),
])
def test_idfix_proxy_addresses_fire(value, errors, proposed, action):
    e = user(proxyAddresses=["SMTP:anna.berg@contoso.com", value])
    found = idfix(e, "proxyAddresses")
    assert len(found) == 1 and found[0].value == value
    assert set(found[0].errors.labels) == errors
    assert found[0].action is action
    if proposed is not None:
        assert found[0].proposed_value == proposed
    if action is Action.REMOVE:
        assert found[0].fix.remove == (value,) and found[0].fix.add == ()
    else:
        assert found[0].fix.remove == (value,) and found[0].fix.add == (found[0].proposed_value,)


# --- per attribute, must not fire ------------------------------------------------------------------------

@pytest.mark.parametrize(("attribute", "value"), [
    ("displayName", "x" * 255),
    ("displayName", "Anna (Sales) Berg; external"),
    ("givenName", "g" * 63),
    ("mail", "o'brien+tag@contoso.com"),
    ("mail", "anna@sub.contoso.com"),
    ("mail", "anna@contoso.london"),
    ("mailNickname", "anna.berg"),
    ("mailNickname", "n" * 64),
    ("sAMAccountName", "averyverylongaccount"),
    ("targetAddress", "SMTP:anna@contoso.mail.onmicrosoft.com"),
    ("targetAddress", "X500:/o=Contoso/ou=FirstAdministrativeGroup/cn=Recipients/cn=anna"),
    ("userPrincipalName", "anna_berg-1@contoso.com"),
    ("userPrincipalName", "anna@fabrikam.com"),
])
def test_idfix_does_not_fire(attribute, value):
    assert idfix(user(**{attribute: value}), attribute) == []


@pytest.mark.parametrize("value", [
    "smtp:anna.b@fabrikam.com",
    "x500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=233c7693-eed81dfa-24",
    "SIP:anna@contoso.com",
    "X400:c=US;a= ;p=Contoso;o=Exchange;s=Berg;g=Anna;".replace(" ", ""),
    "smtp:" + "a" * 60 + "@contoso.com",
])
def test_valid_proxy_addresses_do_not_fire(value):
    assert idfix(user(proxyAddresses=["SMTP:anna.berg@contoso.com", value]), "proxyAddresses") == []


def test_rfc2822_reports_nothing_for_a_valid_address_unlike_idfix_which_always_fails():
    assert rfc2822("smtp:anna@contoso.com") == (ErrorType.NONE, "smtp:anna@contoso.com")
    errors, fixed = rfc2822("SMTP:an<na@contoso.com")
    assert ErrorType.LOCAL_PART in errors and fixed == "SMTP:anna@contoso.com"


def test_blank_display_name_proposes_the_cn_as_idfix_does():
    found = idfix(user(displayName=None), "displayName")
    assert [(f.errors.labels, f.proposed_value) for f in found] == [(["Blank"], "Anna Berg")]


def test_mail_enabled_object_without_mail_or_alias_is_blank_beyond_idfix():
    found = idfix(user(mail=None, mailNickname=None))
    by_attribute = {f.attribute: f for f in found}
    assert by_attribute["mail"].errors is ErrorType.BLANK and by_attribute["mail"].beyond_idfix
    assert by_attribute["mail"].proposed_value == "anna.berg@contoso.com"
    assert by_attribute["mailNickname"].proposed_value == "anna.berg"
    assert "IdFix's multi-tenant rules do not check this" in by_attribute["mail"].explanation


def test_mail_contact_without_target_address_is_blank():
    contact = entry(dn="CN=Ext,OU=Contacts,DC=contoso,DC=com", object_class=["top", "contact"],
                    attributes={"cn": "Ext", "displayName": "Ext", "mail": "ext@partner.com", "mailNickname": "ext",
                                "proxyAddresses": ["SMTP:ext@partner.com"]})
    found = [f for f in idfix(contact) if f.attribute == "targetAddress"]
    assert found[0].errors is ErrorType.BLANK and found[0].proposed_value == "SMTP:ext@partner.com"


def test_upn_that_entra_refuses_though_idfix_passes_it():
    found = idfix(user(userPrincipalName=("a" * 70) + ".1@contoso.com"), "userPrincipalName")
    assert found and found[0].category is Category.DATA_VALIDATION_FAILURE and found[0].beyond_idfix
    assert found[0].errors is ErrorType.LENGTH


def test_unverified_upn_suffix_is_explained():
    found = idfix(user(userPrincipalName="anna@partner.com"), "userPrincipalName")
    assert any("not a verified domain" in f.explanation for f in found)


def test_mail_nickname_characters_from_idfix_dedicated_set_are_information():
    found = idfix(user(mailNickname="anna?^|berg"), "mailNickname")
    assert found[0].severity is Severity.INFO and found[0].proposed_value == "annaberg"


# --- bad input: reported, never a crash -------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "anna\x00berg@contoso.com", "anna\x1bberg@contoso.com", "anna\ud800@contoso.com", "a" * 10_000 + "@contoso.com",
])
def test_control_characters_surrogates_and_huge_values_are_reported(value):
    found = idfix(user(mail=value), "mail")
    assert found and found[0].errors & (ErrorType.CHARACTER | ErrorType.LENGTH)
    assert "\x00" not in found[0].value and "\ud800" not in found[0].value


@pytest.mark.parametrize("raw", [12, 3.5, True, b"\xff\xfe", ["ok@contoso.com", {"nested": 1}]])
def test_non_string_values_are_reported(raw):
    e = user(mail=raw)
    found, _ = evaluate([e], config=CONFIG)
    assert any(f.rule is Rule.BAD_VALUE and f.attribute == "mail" for f in found)


def test_script_in_display_name_is_only_data():
    found, _ = evaluate([user(displayName="<script>alert(1)</script>")], config=CONFIG)
    assert found == []  # IdFix's multi-tenant set has no character rule for displayName; the page escapes it


# --- skipped objects ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("attributes", "reason"), [
    ({"cn": "WS01$"}, "ends with $"),
    ({"cn": "krbtgt"}, "well-known"),
    ({"cn": "HealthMailbox0123"}, "well-known"),
    ({"isCriticalSystemObject": "TRUE"}, "isCriticalSystemObject"),
    ({"sAMAccountName": "MSOL_ab12cd"}, "MSOL_"),
    ({"mailNickname": "SystemMailbox{abc}"}, "SystemMailbox"),
    ({"msExchRecipientTypeDetails": str(0x800000)}, "system mailbox"),
])
def test_idfix_skips(attributes, reason):
    e = user(**attributes)
    assert reason in (skip_reason(e) or "")
    found, skipped = evaluate([e], config=CONFIG)
    assert found == [] and skipped[0][0] == e.dn


def test_groups_skipped_as_idfix_does():
    security = entry(dn="CN=Sec,DC=x", object_class=["group"], attributes={"cn": "Sec", "groupType": "-2147483646"})
    distribution = entry(dn="CN=Dl,DC=x", object_class=["group"], attributes={"cn": "Dl", "groupType": "8"})
    mail_security = entry(dn="CN=MSec,DC=x", object_class=["group"],
                          attributes={"cn": "MSec", "groupType": "-2147483646", "mail": "msec@contoso.com"})
    assert skip_reason(security) and skip_reason(distribution) and skip_reason(mail_security) is None


# --- duplicates -------------------------------------------------------------------------------------------

def test_duplicate_proxy_address_on_two_users_case_insensitive():
    a = user("Lars Larsen", proxyAddresses=["SMTP:lars.larsen@contoso.com", "smtp:helpdesk@contoso.com"])
    b = user("Lena Larsen", proxyAddresses=["SMTP:lena.larsen@contoso.com", "smtp:HelpDesk@Contoso.com"])
    found = [f for f in evaluate([a, b], config=CONFIG)[0] if f.rule is Rule.DUPLICATE]
    assert sorted(f.dn for f in found) == sorted([a.dn, b.dn])
    assert all(f.category is Category.DUPLICATE_ATTRIBUTE and f.action is Action.REMOVE for f in found)
    assert found[0].others == (b.dn,) or found[0].others == (a.dn,)


def test_duplicate_across_attributes_mail_of_one_is_proxy_of_another():
    a = user("Marco Meyer", mail="info@contoso.com", proxyAddresses=None)
    b = user("Maria Meyer", proxyAddresses=["SMTP:maria.meyer@contoso.com", "smtp:info@contoso.com"])
    found = [f for f in evaluate([a, b], config=CONFIG)[0] if f.rule is Rule.DUPLICATE]
    assert {(f.dn, f.attribute) for f in found} == {(a.dn, "mail"), (b.dn, "proxyAddresses")}
    assert all(f.beyond_idfix for f in found)


def test_upn_of_one_is_an_address_of_another():
    a = user("Anna Berg")
    b = user("Ben Berg", proxyAddresses=["SMTP:ben.berg@contoso.com", "smtp:anna.berg@contoso.com"])
    found = {f.dn: f for f in evaluate([a, b], config=CONFIG)[0] if f.rule is Rule.DUPLICATE}
    # Anna's mail, UPN and primary address are one value of hers: reported once, on the first attribute.
    assert found[b.dn].attribute == "proxyAddresses" and found[b.dn].others == (a.dn,)
    assert found[a.dn].others == (b.dn,)


def test_the_same_address_in_mail_upn_and_primary_of_one_object_is_no_duplicate():
    assert [f for f in evaluate([user()], config=CONFIG)[0] if f.rule is Rule.DUPLICATE] == []


def test_an_address_listed_twice_on_one_object_is_a_duplicate():
    e = user(proxyAddresses=["SMTP:anna.berg@contoso.com", "smtp:a@contoso.com", "smtp:A@contoso.com"])
    found = [f for f in evaluate([e], config=CONFIG)[0] if f.rule is Rule.DUPLICATE]
    assert len(found) == 1 and found[0].value == "smtp:A@contoso.com"


def test_duplicate_against_a_cloud_only_object():
    a = user("Anna Berg", proxyAddresses=["SMTP:anna.berg@contoso.com", "smtp:sales@contoso.com"])
    cloud = CloudObject(id="c1", kind="group", proxy_addresses=("SMTP:sales@contoso.com",))
    found = [f for f in evaluate([a], config=CONFIG, tenant=[cloud])[0] if f.rule is Rule.DUPLICATE]
    assert len(found) == 1 and found[0].others == ("cloud:c1",)
    assert "cloud-only object already has it" in found[0].explanation


def test_the_objects_own_cloud_copy_is_not_a_duplicate():
    a = user("Anna Berg")
    twin = CloudObject(id="c2", synced=True, on_premises_dn=a.dn, mail="anna.berg@contoso.com",
                       user_principal_name="anna.berg@contoso.com", proxy_addresses=("SMTP:anna.berg@contoso.com",))
    assert [f for f in evaluate([a], config=CONFIG, tenant=[twin])[0] if f.rule is Rule.DUPLICATE] == []


def test_per_attribute_duplicates_of_idfix():
    a, b = user("Nils Nielsen", mailNickname="nielsen"), user("Nadia Nielsen", mailNickname="nielsen")
    found = [f for f in evaluate([a, b], config=CONFIG)[0] if f.rule is Rule.DUPLICATE]
    assert {f.attribute for f in found} == {"mailNickname"} and found[0].severity is Severity.WARNING


def test_sam_account_name_duplicates_only_count_without_upn():
    a = user("A One", sAMAccountName="same", userPrincipalName=None)
    b = user("B Two", sAMAccountName="same", userPrincipalName=None)
    c = user("C Three", sAMAccountName="same")
    found = [f for f in evaluate([a, b, c], config=CONFIG)[0] if f.attribute == "sAMAccountName"
             and f.rule is Rule.DUPLICATE]
    assert sorted(f.dn for f in found) == sorted([a.dn, b.dn])


def test_duplicate_index_is_one_entry_per_distinct_value():
    index = DuplicateIndex()
    for n in range(2000):
        index.add_entry(user(f"User {n}"))
    # mail, UPN and the primary address are one value: one slot, plus the alias (sAMAccountName only counts
    # for an object without UPN).
    assert len(index._first) == 2000 * 2
    assert list(index.findings()) == []


def test_duplicate_index_holds_nothing_the_garbage_collector_walks():
    # Kept for the whole scan, one entry per distinct value: a container the collector tracks would be walked in
    # full by every collection of the oldest generation while the scan runs. Only the list of owners (one string
    # per object, not per value) is.
    import gc

    index = DuplicateIndex(certificate_attribute="altSecurityIdentities")
    for n in range(500):
        index.add_entry(user(f"User {n}", altSecurityIdentities=[f"X509:<PN>user{n}@contoso.com"],
                             proxyAddresses=[f"SMTP:user.{n}@contoso.com", f"X500:/o=Org/cn=user{n}"]))
    assert list(index.findings()) == []
    assert [name for name, held in vars(index).items() if gc.is_tracked(held)] == ["_owners"]


@pytest.mark.parametrize(("other_dn", "other_class"), [
    ("CN=a:1u", "ser"), ("CN=a:12", "user"), ("CN=a:1\x00:7:2:", "user"), ("CN=a:1\x00user", "user"),
    ("4:CN=a", "contact")])
def test_duplicate_index_tells_owners_apart_whatever_their_dn_holds(other_dn, other_class):
    # Each value's first holder is kept as one string (owner, class, attribute, value): an owner whose DN and
    # class run into another's, or hold the separators, is still another owner, and every field comes back whole.
    from diagnostics_app.addresses.rules.types import Entry

    value = "SMTP:Shared:1@contoso.com"
    first = Entry(dn="CN=a:1", object_class="user", attributes={"proxyaddresses": (value, "smtp:x@contoso.com")})
    second = Entry(dn=other_dn, object_class=other_class, attributes={"proxyaddresses": ("smtp:shared:1@CONTOSO.com",)})
    index = DuplicateIndex()
    index.add_entry(first)
    index.add_entry(second)
    found = sorted(index.findings(), key=lambda f: f.dn)
    assert [(f.dn, f.object_class, f.attribute, f.value, f.others) for f in found] == sorted([
        (first.dn, "user", "proxyAddresses", value, (second.dn,)),
        (second.dn, second.object_class, "proxyAddresses", "smtp:shared:1@CONTOSO.com", (first.dn,))])


def test_duplicate_index_same_object_rules_unchanged():
    # Its own mail, UPN and primary address are one value; the same proxy address listed twice is a duplicate.
    from diagnostics_app.addresses.rules.types import Entry

    twice = Entry(dn="CN=t", object_class="user", attributes={
        "mail": ("t@contoso.com",), "userprincipalname": ("T@contoso.com",),
        "proxyaddresses": ("SMTP:t@contoso.com", "smtp:alias@contoso.com", "smtp:ALIAS@contoso.com")})
    index = DuplicateIndex()
    index.add_entry(twice)
    found = list(index.findings())
    assert [(f.dn, f.value, f.others) for f in found] == [("CN=t", "smtp:ALIAS@contoso.com", ())]


@pytest.mark.parametrize("value", [
    "SMTP:anna@contoso.com", "smtp:Anna.Berg@Contoso.com", "X500:/o=ExchangeLabs/ou=Exchange Administrative Group "
    "(FYDIBOHF23SPDLT)/cn=Recipients/cn=7f3a-anna", "anna@contoso.com", "ÉLODIE@contoso.com", "straße@contoso.com",
    "İstanbul@contoso.com", "SMTP:" + "A" * 300 + "@contoso.com", "X" * 250 + "y" * 10, "smtp:", "ABC", "a\x00B:c",
    "x509:<PN>Anna@Contoso.com", "SIP:Anna@contoso.com", "\ud800Z@contoso.com"])
def test_duplicate_index_recipes_write_every_value_back(value):
    # A holder keeps how to write its value back from the slot (the lower-cased end of the value): whatever the
    # value holds, the value comes back exactly.
    from diagnostics_app.addresses.rules.duplicates import _certificate_key, _recipe, _written

    for key in {value.lower(), value.partition(":")[2].lower(), _certificate_key(value).lower()}:
        if value.lower().endswith(key) or key == value.lower():
            assert _written(_recipe(value, key), key) == value


def test_duplicate_index_recipes_of_values_alike_are_one():
    # Values written alike (Exchange's X500 addresses, lower-case addresses behind SMTP:) share one recipe: what the
    # index holds per value stays one number, not a copy of the value.
    index = DuplicateIndex()
    for n in range(300):
        index.add_entry(user(f"User {n}", proxyAddresses=[
            f"SMTP:user.{n}@contoso.com", f"smtp:user.{n}@contoso.mail.onmicrosoft.com",
            f"X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={n:032x}-u"]))
    assert len(index._recipes) <= 4
    assert list(index.findings()) == []
    # A value whose recipe was found by its prefix and head alone comes back as it was written.
    x500 = "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=" + f"{7:032x}-u"
    index.add_entry(user("Other", proxyAddresses=["SMTP:other@contoso.com", x500.lower()]))
    assert [(f.dn, f.value) for f in index.findings()] == [("CN=User 7,OU=Users,DC=contoso,DC=com", x500),
                                                         ("CN=Other,OU=Users,DC=contoso,DC=com", x500.lower())]


@pytest.mark.parametrize("second", [
    "x500:/O=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=abc-u",
    "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=ABC-U"])
def test_duplicate_index_x500_slots_abbreviated_stay_one_to_one(second):
    # Exchange's X500 prefix is kept abbreviated in the slot: the same address in any case is still one slot, and
    # an address that holds the abbreviation's own characters is not taken for one that was abbreviated.
    from diagnostics_app.addresses.rules.duplicates import EXCHANGE_X500, _lowered, _slot_key

    first = "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=abc-u"
    index = DuplicateIndex()
    index.add_entry(user("One", proxyAddresses=["SMTP:one@contoso.com", first]))
    index.add_entry(user("Two", proxyAddresses=["SMTP:two@contoso.com", second, "X500:\x001abc-u",
                                                "X500:\x000x", "X500:\x00"]))
    assert sorted((f.dn.split(",")[0], f.value) for f in index.findings()) == [("CN=One", first), ("CN=Two", second)]
    for lowered in (EXCHANGE_X500 + "abc", "\x001abc", "\x000", "\x00", "", "/o=other"):
        assert _lowered(f"X500:{_slot_key(lowered)}") == lowered
    assert len({_slot_key(v) for v in (EXCHANGE_X500 + "abc", "\x001abc", "1abc")}) == 3


def test_duplicate_index_told_the_tenant_finds_what_it_finds_remembering_every_entry():
    # Told the tenant up front, the index remembers only the entries a tenant object may be the copy of: the
    # findings are the same as when it remembers every entry's anchor and DN.
    from tests.unit.address_dataset import CONFIGS, dataset

    entries, tenant, _ = dataset()
    found = []
    for told in (None, tenant):
        index = DuplicateIndex(certificate_attribute=CONFIGS["full"].certificate_attribute, tenant=told)
        for item in entries:
            index.add_entry(item)
        for obj in tenant:
            index.add_cloud(obj)
        found.append(sorted(repr(f) for f in index.findings()))
    assert found[0] == found[1] and len(found[0]) > 20
    assert len(index._anchors) < len([e for e in entries if e.anchor]) / 2


# --- proxyAddresses cases of the field notes ---------------------------------------------------------------

X500 = "x500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=233c7693-eed81dfa-24"


def test_only_x500_in_proxy_addresses_proposes_smtp_mail():
    e = user("Mail Only", mail="TotallyNewAddress@contoso.com", proxyAddresses=[X500],
             msExchRecipientTypeDetails=None, mailNickname=None)
    found = [f for f in evaluate([e], config=CONFIG)[0] if f.rule is Rule.X500_ONLY]
    assert len(found) == 1 and found[0].fix.add == ("SMTP:TotallyNewAddress@contoso.com",)
    assert "will not reach Exchange Online" in found[0].explanation


def test_primary_differs_from_mail():
    e = user(mail="new@contoso.com", proxyAddresses=["SMTP:old@contoso.com", "smtp:new@contoso.com", X500])
    found = [f for f in evaluate([e], config=CONFIG)[0] if f.rule is Rule.MAIL_NOT_PRIMARY]
    assert len(found) == 1
    assert set(found[0].fix.remove) == {"SMTP:old@contoso.com", "smtp:new@contoso.com"}
    assert set(found[0].fix.add) == {"SMTP:new@contoso.com", "smtp:old@contoso.com"}


def test_mail_equal_to_primary_in_another_case_raises_nothing():
    e = user(mail="Anna.Berg@Contoso.com")
    assert [f for f in evaluate([e], config=CONFIG)[0] if f.rule is Rule.MAIL_NOT_PRIMARY] == []


def test_no_primary_and_several_primaries():
    none = user(proxyAddresses=["smtp:anna.berg@contoso.com", "smtp:ab@contoso.com"])
    found = [f for f in evaluate([none], config=CONFIG)[0] if f.rule is Rule.NO_PRIMARY]
    assert found[0].fix.add == ("SMTP:anna.berg@contoso.com",)
    two = user(proxyAddresses=["SMTP:anna.berg@contoso.com", "SMTP:ab@contoso.com"])
    found = [f for f in evaluate([two], config=CONFIG)[0] if f.rule is Rule.SEVERAL_PRIMARIES]
    assert found[0].fix.add == ("smtp:ab@contoso.com",)


# --- the cloud against ProxyCalc -------------------------------------------------------------------------

def twin_of(e, **kw):
    base = dict(id="c9", synced=True, on_premises_dn=e.dn, recipient="mailbox")
    base.update(kw)
    return CloudObject(**base)


def test_cloud_primary_pending_after_a_proxy_address_change():
    e = user(proxyAddresses=["SMTP:anna.new@contoso.com", "smtp:anna.berg@contoso.com"], mail="anna.new@contoso.com")
    cloud = twin_of(e, mail="anna.berg@contoso.com", proxy_addresses=("SMTP:anna.berg@contoso.com",))
    found = [f for f in evaluate([e], config=CONFIG, tenant=[cloud])[0] if f.rule is Rule.CLOUD_PRIMARY_DIFFERS]
    assert found[0].severity is Severity.INFO and "anna.new@contoso.com" in found[0].explanation
    assert "Sync pending" in found[0].explanation


def test_cloud_primary_blocked_by_an_export_error():
    e = user(proxyAddresses=["SMTP:anna.new@contoso.com"], mail="anna.new@contoso.com")
    cloud = twin_of(e, mail="anna.berg@contoso.com", proxy_addresses=("SMTP:anna.berg@contoso.com",))
    config = ScanConfig(verified_domains=VERIFIED, initial_domain="contoso.onmicrosoft.com",
                        export_errors=(ExportError(dn=e.dn, error_type="DataValidationFailed", message="x"),))
    found, _ = evaluate([e], config=config, tenant=[cloud])
    blocked = [f for f in found if f.rule is Rule.CLOUD_PRIMARY_DIFFERS]
    assert blocked[0].severity is Severity.ERROR and "blocked" in blocked[0].explanation
    assert any(f.rule is Rule.EXPORT_ERROR and f.category is Category.DATA_VALIDATION_FAILURE for f in found)


def test_cloud_equal_to_prediction_raises_nothing():
    e = user()
    cloud = twin_of(e, mail="anna.berg@contoso.com", user_principal_name="anna.berg@contoso.com",
                    proxy_addresses=("SMTP:anna.berg@contoso.com", "smtp:anna.berg@contoso.onmicrosoft.com"))
    assert evaluate([e], config=CONFIG, tenant=[cloud])[0] == []


def test_upn_as_secondary_address_is_information_by_design():
    e = user(userPrincipalName="anna@fabrikam.com")
    found = [f for f in evaluate([e], config=CONFIG)[0] if f.rule is Rule.UPN_SECONDARY]
    assert found[0].severity is Severity.INFO and "by design" in found[0].explanation and found[0].fix is None


def test_cloud_managed_mailbox_fix_targets_exchange_online():
    e = user(mail="new@contoso.com", proxyAddresses=["SMTP:old@contoso.com"])
    cloud = twin_of(e, exchange_cloud_managed=True, proxy_addresses=("SMTP:old@contoso.com",))
    found, _ = evaluate([e], config=CONFIG, tenant=[cloud])
    mail = [f for f in found if f.rule is Rule.MAIL_NOT_PRIMARY][0]
    assert mail.fix.target == "exchange_online"
    assert any(f.rule is Rule.CLOUD_MANAGED for f in found)


# --- certificateUserIds -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "proposed"), [
    ("x509:<PN>anna@contoso.com", "X509:<PN>anna@contoso.com"),
    ("X509:<pn>anna@contoso.com", "X509:<PN>anna@contoso.com"),
    ("x509:<rfc822>anna@contoso.com", "X509:<RFC822>anna@contoso.com"),
    ("X509:<sha1-pukey>cD2eF3gH", "X509:<SHA1-PUKEY>cD2eF3gH"),
    ("x509:<I>DC=com,DC=contoso,CN=CA<SR>eF3gH4", "X509:<I>DC=com,DC=contoso,CN=CA<SR>eF3gH4"),
])
def test_certificate_user_id_case_is_corrected(value, proposed):
    found, _ = evaluate([user(altSecurityIdentities=[value])], config=CONFIG)
    cert = [f for f in found if f.rule is Rule.CERTIFICATE_USER_IDS]
    assert cert[0].proposed_value == proposed and cert[0].category is Category.DATA_VALIDATION_FAILURE
    assert "DataValidationFailed" in cert[0].explanation


@pytest.mark.parametrize("value", [
    "X509:<PN>anna@contoso.com", "X509:<S>DC=com,DC=contoso,OU=UserAccounts,CN=mfatest",
    "X509:<I>DC=com,DC=contoso,CN=CONTOSO-DC-CA<S>DC=com,DC=contoso,CN=mfatest", "X509:<SKI>aB1cD2eF3gH4",
])
def test_valid_certificate_user_ids_pass(value):
    assert evaluate([user(altSecurityIdentities=[value])], config=CONFIG)[0] == []


@pytest.mark.parametrize(("values", "fragment"), [
    (["X509:<XX>abc"], "unknown mapping type <XX>"),
    (["anna@contoso.com"], "does not start with X509"),
    (["X509:<I>DC=com,CN=CA"], "needs <S>"),
    (["X509:<PN>" + "a" * 1100], "longer than 1024"),
    ([f"X509:<PN>u{n}@contoso.com" for n in range(11)], "over 10"),
])
def test_bad_certificate_user_ids(values, fragment):
    found = [f for f in evaluate([user(altSecurityIdentities=values)], config=CONFIG)[0]
             if f.rule is Rule.CERTIFICATE_USER_IDS]
    assert any(fragment in f.explanation for f in found) and all(f.proposed_value is None for f in found)


def test_certificate_user_id_already_held_in_the_tenant():
    e = user(altSecurityIdentities=["X509:<PN>anna@contoso.com"])
    cloud = CloudObject(id="c5", certificate_user_ids=("X509:<PN>anna@contoso.com",))
    found = [f for f in evaluate([e], config=CONFIG, tenant=[cloud])[0] if f.rule is Rule.DUPLICATE]
    assert found and found[0].attribute == "altSecurityIdentities" and found[0].severity is Severity.ERROR


def test_corrected_certificate_user_id_refuses_what_case_does_not_fix():
    assert corrected_certificate_user_id("x509:<XX>abc") is None
    assert corrected_certificate_user_id("smtp:anna@contoso.com") is None


# --- manage.py check_values -------------------------------------------------------------------------------

def test_check_values_command_prints_findings_and_skipped(monkeypatch):
    import io
    import json

    from django.core.management import call_command

    payload = {"objects": [
        {"dn": "CN=Tom,DC=x", "objectClass": ["user"], "attributes": {
            "cn": "Tom", "displayName": "Tom", "userPrincipalName": "tom&jerry@contoso.com"}},
        {"dn": "CN=krbtgt,DC=x", "objectClass": ["user"], "attributes": {"cn": "krbtgt"}},
    ], "verified_domains": ["contoso.com"]}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(payload)))
    out = io.StringIO()
    call_command("check_values", stdout=out)
    result = json.loads(out.getvalue())
    assert result["skipped"] == ["CN=krbtgt,DC=x"]
    upn = [f for f in result["findings"] if f["attribute"] == "userPrincipalName"][0]
    assert upn["errors"] == ["Character"] and upn["proposed_value"] == "tomjerry@contoso.com"
    assert upn["proposed_action"] == "Edit" and upn["rule"] == "idfix"


@pytest.mark.parametrize("text", ["not json", "[]", '{"objects": [{"dn": 5}]}'])
def test_check_values_refuses_bad_input_with_a_message(monkeypatch, text):
    import io

    from django.core.management import CommandError, call_command

    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    with pytest.raises(CommandError, match="JSON|objects"):
        call_command("check_values", stdout=io.StringIO())
