"""The fix plan: before/after per object and attribute from the findings' fixes, the pinned hash, and the
drift check the apply job will run (issue #13 part 3's planning step; pure, no directory)."""

from __future__ import annotations

from diagnostics_app.addresses.fixplan import build_plan, drift
from diagnostics_app.addresses.rules import Fix, ScanConfig, entry, evaluate

DN = "CN=Mail Only,OU=Users,DC=contoso,DC=com"
X500 = "x500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=233c"


def test_the_field_notes_fix_adds_smtp_mail_beside_the_x500():
    attrs = {"cn": "Mail Only", "displayName": "Mail Only", "mail": "new@contoso.com", "proxyAddresses": [X500],
             "mailNickname": "mailonly", "userPrincipalName": "mailonly@contoso.com"}
    findings, _ = evaluate([entry(dn=DN, object_class=["user"], attributes=attrs)], config=ScanConfig())
    fixes = [(f.dn, f.fix) for f in findings if f.rule == "x500_only"]
    plan = build_plan(fixes, {DN: attrs})
    assert [(c.attribute, c.before, c.after) for c in plan.changes] == [
        ("proxyAddresses", (X500,), (X500, "SMTP:new@contoso.com"))]
    assert len(plan.hash) == 64 and plan.hash == build_plan(fixes, {DN: attrs}).hash


def test_fixes_of_one_attribute_combine_and_a_replace_is_planned():
    current = {DN: {"proxyAddresses": ["SMTP:old@contoso.com", "smtp:new@contoso.com"], "mailNickname": [".x"]}}
    plan = build_plan([
        (DN, Fix(attribute="proxyAddresses", remove=("SMTP:old@contoso.com", "smtp:new@contoso.com"),
                 add=("SMTP:new@contoso.com", "smtp:old@contoso.com"))),
        (DN, Fix(attribute="mailNickname", replace="x")),
    ], current)
    after = {c.attribute: c.after for c in plan.changes}
    assert after == {"proxyAddresses": ("SMTP:new@contoso.com", "smtp:old@contoso.com"), "mailNickname": ("x",)}


def test_vanished_objects_and_values_are_refused_not_planned():
    plan = build_plan([("CN=Gone,DC=x", Fix(attribute="mail", replace="a@b.com")),
                       (DN, Fix(attribute="proxyAddresses", remove=("smtp:never@contoso.com",)))],
                      {DN: {"proxyAddresses": ["SMTP:a@contoso.com"]}})
    assert plan.changes == () and len(plan.refused) == 2
    assert "not in AD any more" in plan.refused[0] and "no longer holds" in plan.refused[1]


def test_drift_names_the_objects_changed_since_the_plan():
    current = {DN: {"proxyAddresses": [X500]}}
    plan = build_plan([(DN, Fix(attribute="proxyAddresses", add=("SMTP:new@contoso.com",)))], current)
    assert drift(plan, current) == []
    assert drift(plan, {DN: {"proxyAddresses": [X500.upper()]}}) == []  # case is not a change
    assert drift(plan, {DN: {"proxyAddresses": [X500, "smtp:x@contoso.com"]}}) == list(plan.changes)
    assert drift(plan, {}) == list(plan.changes)
