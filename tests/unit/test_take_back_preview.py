"""The take-back preview's comparison: what the cloud changed since an in-place conversion and what AD's values
overwrite, per attribute, without the noise of the two directories' different spellings."""

from __future__ import annotations

from migrations_app.takeback import cloud_document, compare_for_take_back

AT_CONVERSION = cloud_document(exchange={
    "DisplayName": "Sales Team", "PrimarySmtpAddress": "sales@contoso.com", "Alias": "sales",
    "EmailAddresses": ["SMTP:sales@contoso.com", "smtp:sales.team@contoso.com",
                       "smtp:sales@contoso.mail.onmicrosoft.com",
                       "X500:/o=ExchangeLabs/ou=Exchange Administrative Group/cn=Recipients/cn=abc-sales"],
    "HiddenFromAddressListsEnabled": False, "RequireSenderAuthenticationEnabled": True, "ModerationEnabled": False,
    "ReportToOriginatorEnabled": True, "CustomAttribute1": "", "CustomAttribute3": "cost-42",
}, graph={"description": "All of sales"})

# AD spells the same list its own way: absent flags, other address order and case, its own X500, no routing address.
AD = {"cn": ["Sales Team"], "displayName": ["Sales Team"], "description": ["All of sales"],
      "mail": ["Sales@contoso.com"], "mailNickname": ["sales"],
      "proxyAddresses": ["smtp:Sales.Team@contoso.com", "SMTP:sales@contoso.com", "X500:/o=First Org/cn=sales"],
      "msExchRequireAuthToSendTo": ["TRUE"], "extensionAttribute3": ["cost-42"]}


def rows(**cloud_changes):
    now = {**AT_CONVERSION, **cloud_changes}
    return {c.attribute: c for c in compare_for_take_back(at_conversion=AT_CONVERSION, cloud_now=now,
                                                          ad_attributes=AD)}


def test_nothing_shows_when_the_three_sides_agree_in_their_own_spellings():
    assert rows() == {}


def test_a_cloud_change_since_the_conversion_shows_with_the_value_ad_puts_back():
    found = rows(DisplayName="Sales (cloud)", HiddenFromAddressListsEnabled=True)
    assert set(found) == {"displayName / DisplayName",
                          "msExchHideFromAddressLists / HiddenFromAddressListsEnabled"}
    name = found["displayName / DisplayName"]
    assert name.changed_in_cloud and name.overwritten
    assert (name.at_conversion, name.cloud_now, name.ad_value) == ("Sales Team", "Sales (cloud)", "Sales Team")
    assert name.describe() == ("displayName / DisplayName: changed in the cloud since the conversion "
                               "(Sales Team -> Sales (cloud)); "
                               "AD's value will overwrite it (Sales (cloud) -> Sales Team)")
    hidden = found["msExchHideFromAddressLists / HiddenFromAddressListsEnabled"]
    assert (hidden.cloud_now, hidden.ad_value) == (True, False)


def test_an_added_cloud_address_shows_but_the_clouds_own_addresses_do_not():
    found = rows(EmailAddresses=[*AT_CONVERSION["EmailAddresses"], "smtp:extra@contoso.com",
                                 "smtp:migrated@contoso.onmicrosoft.com", "X500:/o=ExchangeLabs/cn=other"])
    assert list(found) == ["proxyAddresses / EmailAddresses"]
    change = found["proxyAddresses / EmailAddresses"]
    assert "smtp:extra@contoso.com" in change.cloud_now and "smtp:extra@contoso.com" not in change.ad_value
    assert not any("onmicrosoft" in a or "x500" in a.lower() for a in change.cloud_now)


def test_a_description_changed_in_the_cloud_through_graph_shows():
    found = rows(**{"graph.description": "Sales, managed in the cloud"})
    change = found["description"]
    assert change.changed_in_cloud and change.ad_value == "All of sales"


def test_ad_values_that_differ_without_a_cloud_change_show_as_overwrite_only():
    ad = {**AD, "mailNickname": ["sales-old"]}
    found = {c.attribute: c for c in compare_for_take_back(at_conversion=AT_CONVERSION, cloud_now=AT_CONVERSION,
                                                           ad_attributes=ad)}
    change = found["mailNickname / Alias"]
    assert change.overwritten and not change.changed_in_cloud
    assert change.describe() == "mailNickname / Alias: AD's value will overwrite it (sales -> sales-old)"


def test_a_cloud_change_ad_already_has_is_not_an_overwrite():
    ad = {**AD, "extensionAttribute1": ["tagged"]}
    found = {c.attribute: c for c in compare_for_take_back(
        at_conversion=AT_CONVERSION, cloud_now={**AT_CONVERSION, "CustomAttribute1": "tagged"}, ad_attributes=ad)}
    change = found["extensionAttribute1 / CustomAttribute1"]
    assert change.changed_in_cloud and not change.overwritten
    assert "will overwrite" not in change.describe()


def test_a_group_without_display_name_in_ad_compares_with_its_cn_and_report_to_originator_defaults_true():
    ad = {k: v for k, v in AD.items() if k != "displayName"}
    assert compare_for_take_back(at_conversion=AT_CONVERSION, cloud_now=AT_CONVERSION, ad_attributes=ad) == []
    found = {c.attribute for c in compare_for_take_back(
        at_conversion=AT_CONVERSION, cloud_now={**AT_CONVERSION, "ReportToOriginatorEnabled": False},
        ad_attributes=ad)}
    assert found == {"reportToOriginator / ReportToOriginatorEnabled"}
