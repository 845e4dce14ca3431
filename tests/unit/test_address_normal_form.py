"""The address scan reads each object's addresses once: the readable mail, UPN and proxyAddresses, the SMTP ones
split and lower-cased (Entry.addresses), shared by the field-notes cases, the UPN-as-secondary test, the soft match
and ProxyCalc's input; and IdFix's chains let a value none of their rules would change through without running
them (_Chain.passes), matching addresses with IdFix's expression rewritten for Python's engine (idfix.RFC2822).
None may change a finding: tests/unit/test_address_golden.py guards the findings, these tests the pieces themselves."""

from __future__ import annotations

import random
import re

import pytest

from diagnostics_app.addresses.rules import CloudObject, ErrorType, ScanConfig, entry, idfix
from diagnostics_app.addresses.rules import types as rule_types
from diagnostics_app.addresses.rules.addresses import may_show_upn_secondary, predict, proxy_address_cases
from diagnostics_app.addresses.rules.idfix import _chain, _chains
from diagnostics_app.addresses.rules.matching import soft_match
from diagnostics_app.addresses.rules.scan import Scanner
from diagnostics_app.addresses.rules.types import SmtpAddress, Unreadable

DOMAINS = ("contoso.com",)
INITIAL = "contoso.onmicrosoft.com"


def mixed_user():
    return entry(dn="CN=Anna,OU=Users,DC=contoso,DC=com", object_class=["user"], attributes={
        "cn": "Anna", "mail": [b"\xff\xfe", "Anna.Berg@Contoso.com"], "userPrincipalName": "anna@contoso.com",
        "proxyAddresses": ["X500:/o=Org/cn=anna", "smtp:anna@contoso.com", b"\xff", "SMTP:Anna.Berg@Contoso.com",
                           "Smtp:old@contoso.com"]})


def test_the_address_view_holds_the_readable_values_split_and_lower_cased():
    view = mixed_user().addresses
    assert view.mail == "Anna.Berg@Contoso.com"  # the first readable one: the bytes are left out
    assert view.user_principal_name == "anna@contoso.com"
    assert view.proxy_addresses == ("X500:/o=Org/cn=anna", "smtp:anna@contoso.com", "SMTP:Anna.Berg@Contoso.com",
                                    "Smtp:old@contoso.com")
    assert not any(isinstance(v, Unreadable) for v in view.proxy_addresses)
    assert view.smtp == (
        SmtpAddress("smtp:anna@contoso.com", "anna@contoso.com", "anna@contoso.com", False),
        SmtpAddress("SMTP:Anna.Berg@Contoso.com", "Anna.Berg@Contoso.com", "anna.berg@contoso.com", True),
        SmtpAddress("Smtp:old@contoso.com", "old@contoso.com", "old@contoso.com", False))
    assert [a.address for a in view.primaries] == ["Anna.Berg@Contoso.com"]


def test_the_rules_share_one_view_per_object(monkeypatch):
    item = mixed_user()
    view = item.addresses
    assert item.addresses is view  # computed once

    def again(_entry):
        raise AssertionError("the view was computed a second time for the same object")

    monkeypatch.setattr(rule_types, "_address_view", again)
    proxy_address_cases(item)
    may_show_upn_secondary(item, frozenset(DOMAINS) | {INITIAL}, INITIAL)
    cloud = CloudObject(id="c1", kind="contact", mail="anna.berg@contoso.com",
                        proxy_addresses=("SMTP:anna.berg@contoso.com",))
    assert soft_match(item, {}, {"anna.berg@contoso.com": cloud}, verified_domains=DOMAINS, initial_domain=INITIAL)
    assert predict(item, None, verified_domains=DOMAINS, initial_domain=INITIAL, in_use_by_others=lambda a: False)
    # A new object gets its own view.
    with pytest.raises(AssertionError, match="a second time"):
        Scanner(ScanConfig(verified_domains=DOMAINS, initial_domain=INITIAL)).feed(mixed_user())


VALUES = ["anna@contoso.com", "SMTP:anna@contoso.com", "smtp:anna@contoso.invalidtld", "x500:/o=Org/cn=a(b)",
          "X400:c=US;a= ;p=Org", "sip:anna@contoso.com", " Anna ", "Anna Berg", ".anna", "an na@contoso.com",
          "anna@@contoso.com", "anna@contoso", "smtp:a:b@contoso.com", "SMTP:anna@contoso.com:", "a" * 300,
          "anna\x07@contoso.com", "anna\ud800", "anna&co@contoso.com", "ann'a@contoso.com", "", "ä@contoso.com",
          "anna@contoso.corp", "anna.@contoso.com", "ANNA@CONTOSO.COM", "x.400:foo", "anna\\x", "a,b", "a|b"]


@pytest.mark.parametrize("control", [False, True])
@pytest.mark.parametrize("tlds", [(), ("corp", "com")])
def test_a_chain_lets_a_value_through_exactly_when_none_of_its_rules_would_change_it(control, tlds):
    item = entry(dn="CN=Anna,DC=contoso,DC=com", object_class=["user"], attributes={"cn": "Anna"})
    for name, chain in _chains(tlds, control=control).items():
        for value in VALUES:
            errors = _chain(item, value, chain.rules)[0]
            assert chain.passes(value) is (errors == ErrorType.NONE), (name, value)


def _upn_secondary(item, scanner):
    from diagnostics_app.addresses.rules import Rule
    from diagnostics_app.addresses.rules.addresses import upn_and_cloud_primary

    cfg = scanner.config
    calc = predict(item, None, verified_domains=cfg.verified_domains, initial_domain=cfg.initial_domain,
                   in_use_by_others=lambda a: scanner.cloud_addresses.get(a) is not None)
    return calc is not None and any(f.rule is Rule.UPN_SECONDARY for f in upn_and_cloud_primary(item, None, calc))


@pytest.mark.parametrize("verified", [("contoso.com",), ("contoso.com", "fabrikam.com", "contoso.mail.onmicrosoft.com"),
                                      ()])
def test_the_upn_secondary_pre_check_never_skips_an_object_proxycalc_reports(verified):
    # The scan runs ProxyCalc on an object without a cloud copy only when may_show_upn_secondary allows a finding:
    # on the varied directory of the golden test and the benchmark's generated one, every object it rules out gets
    # no UPN_SECONDARY from ProxyCalc, and it does rule out the recipients whose addresses are all unverified.
    from portal.lab.address_objects import generated_entries
    from tests.unit.address_dataset import dataset

    entries, tenant, _ = dataset()
    entries += list(generated_entries(users=100_000, groups=20_000, limit=3000))
    scanner = Scanner(ScanConfig(verified_domains=verified, initial_domain=INITIAL), tenant)
    ruled_out = reported = 0
    for item in entries:
        if scanner.twin(item) is not None:
            continue
        if may_show_upn_secondary(item, scanner._verified, INITIAL):
            reported += _upn_secondary(item, scanner)
        else:
            ruled_out += 1
            assert not _upn_secondary(item, scanner), item.dn
    assert reported and ruled_out
    unverified = entry(dn="CN=Umar,OU=Users,DC=contoso,DC=com", object_class=["user"], attributes={
        "cn": "Umar", "userPrincipalName": "umar@unverified.org", "mail": "umar@unverified.org",
        "proxyAddresses": ["SMTP:umar@unverified.org", "X500:/o=Org/cn=umar"], "msExchRecipientTypeDetails": "1"})
    assert not may_show_upn_secondary(unverified, scanner._verified, INITIAL)
    assert not _upn_secondary(unverified, scanner)


# IdFix's own expression (Settings/Constants.cs), as idfix.RFC2822 stood before it was rewritten for speed.
IDFIX_RFC2822 = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@"
                           r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:[a-z]{2,17})", re.IGNORECASE | re.ASCII)


def address_like_values() -> list[str]:
    """Addresses and near-addresses: the generated directories' values, random strings over the characters the
    expression treats apart (and the ones case-insensitive matching might confuse: K, the Kelvin sign, the long s),
    control characters, surrogates, 10 kB values, and values at the chains' length limits."""
    from portal.lab.address_objects import generated_entries
    from tests.unit.address_dataset import dataset

    values = set(VALUES)
    objects = dataset()[0] + list(generated_entries(users=2000, groups=500, limit=600))
    for item in objects:
        for name in ("mail", "userPrincipalName", "proxyAddresses", "targetAddress", "mailNickname"):
            values.update(v for v in item.values(name) if not isinstance(v, Unreadable))
    r = random.Random(13)
    alphabet = "aZk0-9.@@..--_!#'+/=?^`{|}~&*%$ :;,<>()[]\"\t\x00\x1f\x7f\x85\xa0äÄK\u212a\u017f\ud800"
    values.update("".join(r.choice(alphabet) for _ in range(r.randint(0, 24))) for _ in range(4000))
    parts = ["a", "Z9", "a-b", "-a", "a-", "a--b", "", "a.b", ".a", "a..b", "x" * 17, "x" * 18, "k\u212a", "\u017fmtp",
             "o'brien", "a+b", "!#$%&'*+/=?^_`{|}~-", "a b", "ä", "a\x00"]
    values.update(f"{r.choice(parts)}@{r.choice(parts)}.{r.choice(parts)}" for _ in range(2000))
    values.update(f"smtp:{v}" for v in list(values)[:500])
    for tld in ("c", "co", "c" * 17, "c" * 18, "c0", "C" * 17):
        values.add(f"anna@contoso.{tld}")
    for length in (0, 1, 20, 21, 63, 64, 65, 113, 114, 255, 256, 257, 10_000):
        for value in ("a" * length, f"{'a' * max(0, length - 12)}@contoso.com",
                      f"smtp:{'a' * max(0, length - 11)}@c.com"):
            values.update((value, value[:-1] + "\x01", value + "\ud800", value[:-1] + "-"))
    values.add("a@" + "b-" * 5000 + ".com")
    values.add("a." * 5000 + "@contoso.com!")
    return sorted(values)


def test_the_address_expression_matches_exactly_what_idfixs_own_matches():
    for value in address_like_values():
        assert bool(idfix.RFC2822.fullmatch(value)) is bool(IDFIX_RFC2822.fullmatch(value)), repr(value[:80])


def test_every_chain_gives_the_same_output_with_idfixs_own_expression(monkeypatch):
    values = address_like_values()
    item = entry(dn="CN=Anna,DC=contoso,DC=com", object_class=["user"], attributes={"cn": "Anna"})

    def outputs():
        idfix._address.cache_clear()
        idfix._address_shape.cache_clear()
        return [(name, value, chain.passes(value), _chain(item, value, chain.rules))
                for control in (False, True) for name, chain in _chains(("corp",), control=control).items()
                for value in values]

    ours = outputs()
    monkeypatch.setattr(idfix, "RFC2822", IDFIX_RFC2822)
    try:
        assert outputs() == ours
    finally:
        idfix._address.cache_clear()
        idfix._address_shape.cache_clear()


def test_every_control_character_and_surrogate_is_one_isprintable_refuses():
    # check_entry looks for control characters only in an object with a value str.isprintable refuses.
    flagged = [chr(c) for c in range(0x110000) if idfix._CONTROL_OR_SURROGATE.fullmatch(chr(c))]
    assert len(flagged) == 32 + 33 + 2048
    assert not any(c.isprintable() for c in flagged)


def test_the_upn_character_class_refuses_what_idfixs_case_insensitive_one_does():
    idfixs = re.compile(idfix.INVALID_UPN.pattern, re.IGNORECASE)
    assert not idfix.INVALID_UPN.flags & re.IGNORECASE
    assert [c for c in range(0x110000) if bool(idfix.INVALID_UPN.match(chr(c))) != bool(idfixs.match(chr(c)))] == []
