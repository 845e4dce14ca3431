"""The ProxyCalc explainer: portal.addressing.explain (pure), `manage.py proxycalc` and the page, which all run
the same code; bad input gets a message naming the field and computes nothing."""

from __future__ import annotations

import io
import json
from urllib.parse import urlencode

import pytest
from django.core.management import CommandError, call_command

from portal.addressing.explain import ExplainInputError, explain
from tests.support.forms import form_fields

URL = "/diagnostics/address-repair/proxycalc/"
FORM = f"{URL}#explain-result"
X500 = "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=9f1c-mailonly"
TENANT = {"verified_domains": ["contoso.com"], "initial_domain": "contoso.onmicrosoft.com"}
# The field notes' case: hybrid writeback put only an X500 into proxyAddresses, then mail was changed.
MAIL_ONLY = {"userPrincipalName": "mo@contoso.com", "mail": "totally.new@contoso.com", "proxyAddresses": [X500],
             "cloud": {"mailNickname": "mo",
                       "proxyAddresses": ["SMTP:mo@contoso.com", "smtp:mo@contoso.onmicrosoft.com"]},
             **TENANT}


def test_x500_only_keeps_the_cloud_primary_and_says_mail_is_ignored():
    answer = explain(MAIL_ONLY)
    assert answer["primary_smtp"] == "mo@contoso.com" and answer["mail_ignored"] is True
    rules = {a["address"]: a["rule"] for a in answer["addresses"]}
    assert rules["SMTP:mo@contoso.com"].startswith("rule 3: proxyAddresses holds no SMTP: value")
    assert rules["smtp:mo@contoso.onmicrosoft.com"].startswith("rule 7")
    assert any("totally.new@contoso.com" in s and "does not decide" in s for s in answer["steps"])


def test_each_address_names_its_rule_and_dropped_addresses_their_reason():
    answer = explain({"userPrincipalName": "ann@contoso.com", "mailNickname": "ann",
                      "proxyAddresses": ["SMTP:ann.lee@contoso.com", "smtp:ann@fabrikam.com", "smtp:bad address",
                                         "SMTP:second@contoso.com"], **TENANT})
    rules = {a["address"]: a["rule"] for a in answer["addresses"]}
    assert rules["SMTP:ann.lee@contoso.com"].startswith("rule 3: proxyAddresses is set on-premises")
    assert rules["smtp:ann@contoso.com"].startswith("rule 8")
    assert rules["smtp:second@contoso.com"].startswith("rule 3: a secondary")
    removed = {r["address"]: r["code"] for r in answer["removed"]}
    assert removed == {"smtp:ann@fabrikam.com": "UNVERIFIED_DOMAIN", "smtp:bad address": "MALFORMED"}
    assert answer["cloud"]["mail"] == "ann.lee@contoso.com"
    assert answer["cloud"]["moera"] == "ann@contoso.onmicrosoft.com"


def test_mail_decides_when_proxy_addresses_is_empty():
    answer = explain({"userPrincipalName": "b@contoso.com", "mail": "bee@contoso.com", **TENANT})
    assert answer["primary_smtp"] == "bee@contoso.com"
    assert answer["addresses"][0]["rule"].startswith("rule 4")


@pytest.mark.parametrize("change,field,message", [
    ({"mail": "<script>alert(1)</script>"}, "mail", "< or >"),
    ({"mail": "no-at-sign"}, "mail", "not a valid mail address"),
    ({"userPrincipalName": "a b@contoso.com"}, "userPrincipalName", "not a valid user principal name"),
    ({"mailNickname": "has space"}, "mailNickname", "not a valid alias"),
    ({"proxyAddresses": ["smtp:a@contoso.com\n"]}, "proxyAddresses", "control character"),
    ({"proxyAddresses": ["smtp:" + "a" * 2000]}, "proxyAddresses", "at most 1024"),
    ({"proxyAddresses": ["smtp:\ud800@contoso.com"]}, "proxyAddresses", "surrogate"),
    ({"proxyAddresses": [5]}, "proxyAddresses", "must be text"),
    ({"mail": 7}, "mail", "must be text, not int"),
    ({"kind": "printer"}, "kind", "must be one of"),
    ({"initial_domain": ""}, "initial_domain", "is required"),
    ({"verified_domains": ["not a domain"]}, "verified_domains", "not a domain name"),
    ({"targetAddress": "SMTP:nope"}, "targetAddress", "not an SMTP address"),
    ({"kind": "group", "recipient": "mailbox"}, "recipient", "only a user"),
    ({"colour": "red"}, "input", "unknown field"),
])
def test_bad_input_names_the_field(change, field, message):
    with pytest.raises(ExplainInputError, match=message) as caught:
        explain({**MAIL_ONLY, **change})
    assert message in caught.value.problems[field]


def test_command_prints_the_same_answer_as_the_code(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(MAIL_ONLY)))
    out = io.StringIO()
    call_command("proxycalc", stdout=out)
    assert json.loads(out.getvalue()) == explain(MAIL_ONLY)


@pytest.mark.parametrize("text,match", [("not json", "not JSON"), ('{"mail": "<script>"}', "holds < or >"),
                                        ("[1]", "must be an object")])
def test_command_refuses_bad_input_with_a_message(monkeypatch, text, match):
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    with pytest.raises(CommandError, match=match):
        call_command("proxycalc", stdout=io.StringIO())


# --- the page -----------------------------------------------------------------------------------------



@pytest.mark.django_db
@pytest.mark.parametrize("role,allowed", [("Administrator", True), ("Auditor", True), ("Approver", True),
                                          ("Helpdesk", False)])
def test_page_per_role(client, role_users, role, allowed):
    client.force_login(role_users[role])
    assert client.get(URL).status_code == (200 if allowed else 403)


@pytest.mark.django_db
def test_page_explains_the_values_typed_into_its_form(client, role_users):
    client.force_login(role_users["Administrator"])
    fields = form_fields(client.get(URL).content.decode(), FORM)
    assert {"kind", "recipient", "userPrincipalName", "mail", "proxyAddresses", "targetAddress",
            "initial_domain", "cloud_proxyAddresses"} <= set(fields)
    fields.update({"userPrincipalName": "mo@contoso.com", "mail": "totally.new@contoso.com", "proxyAddresses": X500,
                   "verified_domains": "contoso.com", "initial_domain": "contoso.onmicrosoft.com",
                   "cloud_proxyAddresses": "SMTP:mo@contoso.com\nsmtp:mo@contoso.onmicrosoft.com"})
    page = client.get(f"{URL}?{urlencode(fields)}", HTTP_HX_REQUEST="true").content.decode()
    assert '<code data-testid="primary">mo@contoso.com</code>' in page
    assert "ignored" in page and "rule 7: the MOERA" in page


@pytest.mark.django_db
def test_page_shows_a_clear_message_for_script_and_computes_nothing(client, role_users):
    client.force_login(role_users["Administrator"])
    fields = form_fields(client.get(URL).content.decode(), FORM)
    fields.update({"userPrincipalName": "a@contoso.com", "mail": "<script>alert(1)</script>",
                   "initial_domain": "contoso.onmicrosoft.com"})
    page = client.get(f"{URL}?{urlencode(fields)}").content.decode()
    assert "mail holds &lt; or &gt;" in page and "nothing was computed" in page
    assert "<script>alert(1)" not in page and 'data-testid="primary"' not in page


@pytest.mark.django_db
def test_prefill_reads_the_object_and_says_when_the_directory_cannot(client, role_users, monkeypatch):
    from diagnostics_app.addresses import views

    client.force_login(role_users["Administrator"])
    monkeypatch.setattr(views, "_prefill", lambda dn: ({**MAIL_ONLY, "kind": "user", "recipient": "mailbox"}, None))
    page = client.get(URL, {"dn": "CN=Mail Only,OU=Sync,DC=contoso,DC=com"}).content.decode()
    assert 'value="totally.new@contoso.com"' in page and '<code data-testid="primary">mo@contoso.com</code>' in page

    def unreachable(dn):
        raise views.NotConfigured("AD is not configured")

    monkeypatch.setattr(views, "_prefill", unreachable)
    page = client.get(URL, {"dn": "CN=Gone,DC=contoso,DC=com"}, follow=True).content.decode()
    assert "could not be read: AD is not configured" in page
