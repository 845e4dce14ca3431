"""The Exchange Online connector without a server: OPATH and OData quoting, and the REST client over an httpx
MockTransport (paging, errors, throttling, retries, typed cmdlets, dependency searches); a fake token source
stands in for msal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from portal.connectors import exchange, graph
from portal.connectors.exchange import (
    ExchangeOnline,
    ExchangeOnlineSettings,
    MultiValuedUpdate,
    opath_all,
    opath_any,
    opath_eq,
    opath_like,
    opath_not,
    opath_present,
    opath_quote,
)
from tests.support.cloud_fakes import CREDS, TENANT, ScriptedTransport, StaticTokens

# --------------------------------------------------------------------------------------------
# OPATH


def test_opath_quotes_values_as_exchange_wants() -> None:
    assert opath_quote("O'Hara") == "'O''Hara'"
    assert opath_quote("it’s") == "'it’’s'"  # PowerShell treats typographic quotes as quotes too
    assert opath_quote("$(Remove-Mailbox) -or Name -like '*'") == "'$(Remove-Mailbox) -or Name -like ''*'''"
    assert str(opath_eq("ManagedBy", "CN=O'Hara\\, Pat,OU=Users,DC=lab")) == \
        "ManagedBy -eq 'CN=O''Hara\\, Pat,OU=Users,DC=lab'"
    assert str(opath_eq("IsDirSynced", True)) == "IsDirSynced -eq $true"
    assert str(opath_eq("CustomAttribute1", None)) == "CustomAttribute1 -eq $null"
    assert str(opath_like("Alias", prefix="dl-")) == "Alias -like 'dl-*'"
    combined = opath_all(opath_eq("RecipientTypeDetails", "MailUniversalDistributionGroup"),
                         opath_any(opath_present("ManagedBy"), opath_not(opath_eq("Name", "x"))))
    assert str(combined) == ("(RecipientTypeDetails -eq 'MailUniversalDistributionGroup') -and ((ManagedBy -ne $null)"
                             " -or (-not (Name -eq 'x')))")
    assert combined == (opath_eq("RecipientTypeDetails", "MailUniversalDistributionGroup")
                        & (opath_present("ManagedBy") | ~opath_eq("Name", "x")))


@pytest.mark.parametrize(("build", "error", "message"), [
    (lambda: opath_eq("Managed By", "x"), exchange.InvalidFilter, "'Managed By' is not an OPATH property name"),
    (lambda: opath_eq("Name -or 1", "x"), exchange.InvalidFilter, "'Name -or 1' is not an OPATH property name"),
    (lambda: opath_like("Alias", prefix="a*b"), exchange.InvalidFilter, "cannot be matched literally"),
    (lambda: opath_eq("Name", 1.5), exchange.InvalidFilter, "unsupported OPATH value type float"),
    (lambda: opath_quote("nul\x00"), exchange.InvalidParameter, "contains a control character"),
    (lambda: exchange.OpathFilter("Name -eq 'x'", object()), TypeError, "build OPATH filters with the helper"),
])
def test_opath_refuses_what_it_cannot_quote(build: Callable[[], Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        build()


def test_odata_literals_are_quoted() -> None:
    assert graph.odata_literal("o'hara@contoso.com") == "'o''hara@contoso.com'"
    assert str(graph.odata_any_eq("proxyAddresses", "smtp:a'b@x")) == "proxyAddresses/any(x:x eq 'smtp:a''b@x')"
    flt = graph.odata_eq("accountEnabled", True) & graph.odata_startswith("mail", "dl-")
    assert str(flt) == "(accountEnabled eq true) and (startswith(mail,'dl-'))"
    with pytest.raises(ValueError, match="is not a Graph property name"):
        graph.odata_eq("mail eq 'x' or true", "y")


# --------------------------------------------------------------------------------------------
# Exchange Online over a mock transport


class FakeExchange:
    """Answers InvokeCommand like the admin API; ``script`` holds queued answers (status, body, headers)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.script: list[tuple[int, Any, dict[str, str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.script:
            status, body, headers = self.script.pop(0)
        else:
            status, body, headers = 200, {"value": []}, {}
        if body is None:
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


def exchange_error(exception: str, message: str, status: int = 400) -> tuple[int, Any, dict[str, str]]:
    """The admin API's error shape: generic message, the cmdlet's own text in details."""
    return status, {"error": {
        "code": "NotFound" if status == 404 else "BadRequest", "message": "Error executing cmdlet",
        "details": [{"code": "Client", "target": "", "message": f"Ex6F9304|{exception}|{message}"}],
        "innererror": {"message": "Error executing cmdlet",
                       "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"}}}, {"request-id": "req-1"}


@pytest.fixture
def exo() -> tuple[ExchangeOnline, FakeExchange, list[float], StaticTokens]:
    fake = FakeExchange()
    waits: list[float] = []
    tokens = StaticTokens()
    settings = ExchangeOnlineSettings(credentials=CREDS, base_url="https://outlook.test",
                                      organization="contoso.onmicrosoft.com", max_retries=3, max_retry_wait=30)
    client = ExchangeOnline(settings, token_source=tokens, transport=httpx.MockTransport(fake), sleep=waits.append)
    return client, fake, waits, tokens


def test_invoke_sends_cmdlet_and_parameters_as_json(exo) -> None:
    client, fake, _, _ = exo
    client.set_distribution_group("Sales; Remove-DistributionGroup x", changes={
        "ManagedBy": ["pat@contoso.com"], "HiddenFromAddressListsEnabled": True,
        "EmailAddresses": MultiValuedUpdate(add=["smtp:sales2@contoso.com"]), "CustomAttribute5": None,
    }, bypass_security_group_manager_check=True)

    [request] = fake.requests
    assert request.url == f"https://outlook.test/adminapi/beta/{TENANT}/InvokeCommand"
    assert request.headers["authorization"] == "Bearer token-1"
    assert request.headers["x-anchormailbox"].endswith("@contoso.onmicrosoft.com")
    assert json.loads(request.content) == {"CmdletInput": {"CmdletName": "Set-DistributionGroup", "Parameters": {
        "ManagedBy": ["pat@contoso.com"], "HiddenFromAddressListsEnabled": True,
        "EmailAddresses": {"@odata.type": "#Exchange.GenericHashTable", "Add": ["smtp:sales2@contoso.com"]},
        "CustomAttribute5": None, "Identity": "Sales; Remove-DistributionGroup x",
        "BypassSecurityGroupManagerCheck": True}}}


def test_invoke_follows_next_links_with_the_same_body(exo) -> None:
    client, fake, _, _ = exo
    fake.script = [
        (200, {"value": [{"Name": "a"}], "@odata.nextLink":
               f"https://outlook.test/adminapi/beta/{TENANT}/InvokeCommand?$skiptoken=abc"}, {}),
        (200, {"value": [{"Name": "b"}]}, {}),
    ]
    names = [r.name for r in client.iter_recipients(filter=opath_eq("IsDirSynced", False))]
    assert names == ["a", "b"]
    assert fake.requests[1].url.params["$skiptoken"] == "abc"
    assert fake.bodies()[0] == fake.bodies()[1]
    assert fake.bodies()[0]["CmdletInput"]["Parameters"]["Filter"] == "IsDirSynced -eq $false"


def test_next_link_to_another_host_gets_no_token(exo) -> None:
    client, fake, _, _ = exo
    fake.script = [(200, {"value": [{"Name": "a"}], "@odata.nextLink": "https://evil.test/steal"}, {})]
    with pytest.raises(exchange.ExchangeError, match="refusing to send the token"):
        client.invoke("Get-Recipient")
    assert len(fake.requests) == 1


@pytest.mark.parametrize("answer, error", [
    (exchange_error("Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
                    "The operation couldn't be performed because object 'x' couldn't be found on 'EX1'.", 404),
     exchange.ObjectNotFound),
    (exchange_error("System.Management.Automation.CommandNotFoundException",
                    "The term 'Get-Nothing' is not recognized as a name of a cmdlet"), exchange.UnknownCmdlet),
    (exchange_error("System.Management.Automation.ParameterBindingException",
                    "A parameter cannot be found that matches parameter name 'Bogus'."), exchange.InvalidParameter),
    (exchange_error("System.InvalidOperationException",
                    "The action 'Set-DistributionGroup', 'ManagedBy', can't be performed on the object 'Sales' because "
                    "the object is being synchronized from your on-premises organization."), exchange.DirSyncedObject),
    (exchange_error("Microsoft.Exchange.Data.Directory.ProxyAddressExistsException",
                    'The proxy address "SMTP:a@x" is already being used'), exchange.AddressInUse),
    (exchange_error("Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException",
                    "matches multiple entries"), exchange.AmbiguousObject),
    ((403, None, {}), exchange.UnknownCmdlet),  # the service's empty 403 for an unknown or unassigned cmdlet
    ((403, {"error": {"code": "Forbidden", "message": "The role assigned to application isn't supported"}}, {}),
     exchange.AccessDenied),
    ((500, {"error": {"code": "InternalServerError", "message": "boom"}}, {}), exchange.ServiceUnavailable),
])
def test_exchange_errors_are_mapped(exo, answer, error) -> None:
    client, fake, _, _ = exo
    fake.script = [answer]
    with pytest.raises(error) as caught:
        client.invoke("Set-DistributionGroup", Identity="Sales", DisplayName="x")
    if answer[1] is not None and "details" in answer[1]["error"]:
        detail = answer[1]["error"]["details"][0]["message"]
        assert caught.value.exception_type == detail.split("|")[1].rsplit(".", 1)[-1]
        assert caught.value.server_message == detail.split("|")[2]
        assert caught.value.request_id == "req-1"
        assert "Error executing cmdlet" not in str(caught.value)


def test_empty_403_is_also_access_denied(exo) -> None:
    client, fake, _, _ = exo
    fake.script = [(403, None, {})]
    with pytest.raises(exchange.AccessDenied, match="not in the Exchange roles"):
        client.invoke("Get-Nothing")


def test_member_helpers_are_idempotent(exo) -> None:
    client, fake, _, _ = exo
    fake.script = [exchange_error("Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException",
                                  'The recipient "pat" is already a member of the group "Sales".'),
                   exchange_error("Microsoft.Exchange.Management.Tasks.MemberNotFoundException",
                                  'The recipient "pat" isn\'t a member of the group "Sales".')]
    assert client.add_distribution_group_member("Sales", member="pat") is False
    assert client.remove_distribution_group_member("Sales", member="pat") is False


TWO_SALES = [
    {"Name": "Sales", "DisplayName": "Sales", "PrimarySmtpAddress": "sales@contoso.com",
     "DistinguishedName": "CN=Sales,OU=Groups,DC=contoso,DC=com", "Guid": "0f6b3a8e-0000-4000-8000-000000000001"},
    {"Name": "Sales team", "DisplayName": "Sales team", "PrimarySmtpAddress": "sales-team@contoso.com",
     "Guid": "0f6b3a8e-0000-4000-8000-000000000002"},
]


@pytest.mark.parametrize("call", [
    lambda client: client.get_distribution_group("Sales"),
    lambda client: client.get_recipient("Sales"),
])
def test_a_lookup_by_identity_refuses_to_pick_one_of_several(exo, call) -> None:
    client, fake, _, _ = exo
    fake.script = [(200, {"value": TWO_SALES}, {})]
    with pytest.raises(exchange.AmbiguousIdentity) as caught:
        call(client)
    assert isinstance(caught.value, exchange.AmbiguousObject) and isinstance(caught.value, exchange.ExchangeError)
    assert caught.value.matches == (
        "Sales <sales@contoso.com> (CN=Sales,OU=Groups,DC=contoso,DC=com)",
        "Sales team <sales-team@contoso.com> (0f6b3a8e-0000-4000-8000-000000000002)")
    assert "Sales matches 2" in str(caught.value) and "sales-team@contoso.com" in str(caught.value)


def test_a_lookup_by_identity_still_returns_the_one_match_and_says_when_there_is_none(exo) -> None:
    client, fake, _, _ = exo
    fake.script = [(200, {"value": TWO_SALES[:1]}, {}), (200, {"value": []}, {})]
    assert client.get_distribution_group("Sales").primary_smtp_address == "sales@contoso.com"
    with pytest.raises(exchange.ObjectNotFound, match="Get-DistributionGroup: no group Sales"):
        client.get_distribution_group("Sales")


def test_an_onprem_lookup_by_identity_refuses_to_pick_one_of_several() -> None:
    onprem = exchange.ExchangeOnPrem(ScriptedTransport({"Get-DynamicDistributionGroup": TWO_SALES}))
    with pytest.raises(exchange.AmbiguousIdentity, match="matches 2 groups, not one"):
        onprem.get_dynamic_distribution_group("Sales")


def test_retry_on_429_honours_retry_after(exo) -> None:
    client, fake, waits, _ = exo
    fake.script = [(429, {"error": {"code": "TooManyRequests", "message": "wait"}}, {"Retry-After": "7"}),
                   (503, {"error": {"code": "ServiceUnavailable", "message": "wait"}}, {"Retry-After": "2"}),
                   (200, {"value": [{"Name": "a", "PrimarySmtpAddress": "a@x.com"}]}, {})]
    assert client.get_recipient("a").primary_smtp_address == "a@x.com"
    assert waits == [7.0, 2.0]
    assert len(fake.requests) == 3


def test_throttled_after_the_retries(exo) -> None:
    client, fake, waits, _ = exo
    fake.script = [(429, {"error": {"code": "TooManyRequests", "message": "wait"}}, {"Retry-After": "5"})] * 4
    with pytest.raises(exchange.Throttled) as caught:
        client.get_recipient("a")
    assert waits == [5.0, 5.0, 5.0] and caught.value.retry_after == 5.0 and caught.value.status == 429


def test_a_retry_after_beyond_the_limit_is_not_waited_for(exo) -> None:
    client, fake, waits, _ = exo
    fake.script = [(429, {"error": {"code": "TooManyRequests", "message": "wait"}}, {"Retry-After": "600"})]
    with pytest.raises(exchange.Throttled):
        client.get_recipient("a")
    assert waits == []


def test_a_write_is_not_repeated_on_503_without_retry_after(exo) -> None:
    client, fake, waits, _ = exo
    fake.script = [(503, {"error": {"code": "ServiceUnavailable", "message": "down"}}, {})]
    with pytest.raises(exchange.ServiceUnavailable):
        client.remove_distribution_group("Sales")
    assert len(fake.requests) == 1 and waits == []


def test_401_gets_one_fresh_token_then_unauthorized(exo) -> None:
    client, fake, _, tokens = exo
    fake.script = [(401, None, {"WWW-Authenticate": 'Bearer error="invalid_token"'})] * 2
    with pytest.raises(exchange.Unauthorized):
        client.get_accepted_domains()
    assert tokens.invalidated == 1 and len(fake.requests) == 2


def test_lost_connection_on_a_write_is_outcome_unknown() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    client = ExchangeOnline(ExchangeOnlineSettings(credentials=CREDS, base_url="https://outlook.test"),
                            token_source=StaticTokens(), transport=httpx.MockTransport(broken), sleep=lambda s: None)
    with pytest.raises(exchange.OutcomeUnknown, match="re-read before retrying"):
        client.remove_distribution_group("Sales")


@pytest.mark.parametrize("call", [
    lambda c: c.new_distribution_group(name="Sales", alias="sales dl", primary_smtp_address="sales@contoso.com"),
    lambda c: c.new_distribution_group(name="Sales", alias="sales", primary_smtp_address="not-an-address"),
    lambda c: c.new_distribution_group(name="Sales", alias="sales", primary_smtp_address="s@contoso.com",
                                       member_join_restriction="Sometimes"),
    lambda c: c.set_distribution_group("Sales", changes={"Bogus": 1}),
    lambda c: c.set_distribution_group("Sales", changes={"HiddenFromAddressListsEnabled": "yes"}),
    lambda c: c.set_distribution_group("Sales", changes={"ManagedBy": "pat"}),
    lambda c: c.set_distribution_group("Sales", changes={"EmailAddresses": ["smtp:broken@"]}),
    lambda c: c.set_distribution_group("Sales", changes={"MemberJoinRestriction": "Whenever"}),
    lambda c: c.find_recipients_with(attribute="Description", dn_or_id="CN=x"),
    lambda c: c.iter_recipients(filter="Name -eq 'x'"),
    lambda c: c.invoke("Get-Recipient; Remove-Recipient"),
    lambda c: c.invoke("Get-Recipient", **{"Identity -Confirm": "x"}),
])
def test_values_are_checked_before_a_cmdlet_runs(exo, call) -> None:
    client, fake, _, _ = exo
    with pytest.raises(exchange.InvalidParameter):
        call(client)
    assert fake.requests == []


def test_new_distribution_group_parameters(exo) -> None:
    client, fake, _, _ = exo
    fake.script = [(200, {"value": [{"Name": "Sales", "PrimarySmtpAddress": "sales@contoso.com",
                                     "ManagedBy": ["Pat"], "IsDirSynced": False}]}, {})]
    group = client.new_distribution_group(name="Sales", alias="sales", primary_smtp_address="sales@contoso.com",
                                          managed_by=["pat@contoso.com"], members=["a@contoso.com"])
    assert group.managed_by == ("Pat",) and group.is_dir_synced is False
    params = fake.bodies()[0]["CmdletInput"]["Parameters"]
    assert params["IgnoreNamingPolicy"] is True and params["Type"] == "Distribution"
    assert params["Members"] == ["a@contoso.com"] and params["MemberJoinRestriction"] == "Closed"


def test_dependency_search_filters_by_dn_on_each_cmdlet(exo) -> None:
    client, fake, _, _ = exo
    dn = "CN=Sales O'Hara,OU=Groups,DC=lab,DC=example"
    fake.script = [(200, {"value": [{"Name": "m1", "Guid": "1"}]}, {}), (200, {"value": []}, {}),
                   (200, {"value": [{"Name": "m1", "Guid": "1"}]}, {}), (200, {"value": [{"Name": "g", "Guid": "2"}]},
                                                                          {})]
    found = client.find_recipients_with(attribute="ModeratedBy", dn_or_id=dn)
    assert [(r.name, r.found_by) for r in found] == [("m1", "Get-Mailbox"), ("g", "Get-DistributionGroup")]
    cmdlets = [b["CmdletInput"]["CmdletName"] for b in fake.bodies()]
    assert cmdlets == ["Get-Mailbox", "Get-MailUser", "Get-MailContact", "Get-DistributionGroup"]
    assert {b["CmdletInput"]["Parameters"]["Filter"] for b in fake.bodies()} == {
        "ModeratedBy -eq 'CN=Sales O''Hara,OU=Groups,DC=lab,DC=example'"}


def test_dependents_of_many_properties_cost_one_read_per_cmdlet_when_nobody_names_the_object(exo) -> None:
    client, fake, _, _ = exo
    dn = "CN=Sales,OU=Groups,DC=lab,DC=example"
    props = ("ManagedBy", "AcceptMessagesOnlyFromSendersOrMembers", "ModeratedBy", "GrantSendOnBehalfTo",
             "ForwardingAddress")
    fake.script = [(200, {"value": []}, {})] * 4
    found, refused = client.find_dependents(attributes=props, dn_or_id=dn, cloud_only=True)
    assert found == {p: [] for p in props} and refused == {}
    bodies = [b["CmdletInput"] for b in fake.bodies()]
    assert sorted(b["CmdletName"] for b in bodies) == ["Get-DistributionGroup", "Get-MailContact", "Get-MailUser",
                                                      "Get-Mailbox"]
    mailbox = next(b["Parameters"]["Filter"] for b in bodies if b["CmdletName"] == "Get-Mailbox")
    assert mailbox == ("((AcceptMessagesOnlyFromSendersOrMembers -eq 'CN=Sales,OU=Groups,DC=lab,DC=example') -or "
                       "(ModeratedBy -eq 'CN=Sales,OU=Groups,DC=lab,DC=example') -or "
                       "(GrantSendOnBehalfTo -eq 'CN=Sales,OU=Groups,DC=lab,DC=example') -or "
                       "(ForwardingAddress -eq 'CN=Sales,OU=Groups,DC=lab,DC=example')) -and (IsDirSynced -eq $false)")


def test_a_cmdlet_that_finds_dependents_is_asked_again_property_by_property(exo) -> None:
    client, fake, _, _ = exo
    dn = "CN=Sales,OU=Groups,DC=lab,DC=example"
    hit = (200, {"value": [{"Name": "g", "Guid": "2"}]}, {})
    none = (200, {"value": []}, {})
    # Get-DistributionGroup (ManagedBy, ModeratedBy) answers; then ManagedBy: nobody, ModeratedBy: g; the others: none.
    fake.script = [hit, none, hit, none, none, none]
    found, refused = client.find_dependents(attributes=("ManagedBy", "ModeratedBy"), dn_or_id=dn)
    assert [r.name for r in found["ModeratedBy"]] == ["g"] and found["ManagedBy"] == [] and refused == {}
    assert [b["CmdletInput"]["CmdletName"] for b in fake.bodies()] == [
        "Get-DistributionGroup", "Get-DistributionGroup", "Get-DistributionGroup", "Get-Mailbox", "Get-MailUser",
        "Get-MailContact"]
    assert [b["CmdletInput"]["Parameters"]["Filter"] for b in fake.bodies()][1:3] == [
        f"ManagedBy -eq '{dn}'", f"ModeratedBy -eq '{dn}'"]


def test_dependents_of_many_objects_cost_one_read_per_cmdlet_and_chunk_and_ask_again_only_where_found(exo) -> None:
    client, fake, _, _ = exo
    dns = [f"CN=List {n},OU=Groups,DC=lab,DC=example" for n in range(3)]
    hit = (200, {"value": [{"Name": "g", "Guid": "2"}]}, {})
    none = (200, {"value": []}, {})
    # Get-DistributionGroup filters on two properties: two chunks (lists 0-1, list 2); the others on one: one chunk.
    # Its first chunk answers: lists 0 and 1 are asked again on that cmdlet alone (0: nobody; 1: g, by
    # ModeratedBy), no other cmdlet is asked again.
    fake.script = [hit, none, none, none, none, none, hit, none, hit]
    answers = client.find_dependents_of_many(attributes=("ManagedBy", "ModeratedBy"), dns=dns, cloud_only=True,
                                             max_filter_chars=300)
    assert [b["CmdletInput"]["CmdletName"] for b in fake.bodies()] == [
        "Get-DistributionGroup", "Get-DistributionGroup", "Get-Mailbox", "Get-MailUser", "Get-MailContact",
        "Get-DistributionGroup", "Get-DistributionGroup", "Get-DistributionGroup", "Get-DistributionGroup"]
    first = fake.bodies()[0]["CmdletInput"]["Parameters"]["Filter"]
    assert dns[0] in first and dns[1] in first and dns[2] not in first and "IsDirSynced -eq $false" in first
    assert answers[dns[0]] == ({"ManagedBy": [], "ModeratedBy": []}, {})
    assert [r.name for r in answers[dns[1]][0]["ModeratedBy"]] == ["g"] and answers[dns[1]][0]["ManagedBy"] == []
    assert answers[dns[2]] == ({"ManagedBy": [], "ModeratedBy": []}, {})


def test_which_groups_are_present_is_one_filtered_read_per_chunk_of_ids(exo) -> None:
    client, fake, _, _ = exo
    ids = [f"00000000-0000-0000-0000-00000000000{n}" for n in range(3)]
    fake.script = [(200, {"value": [{"ExternalDirectoryObjectId": ids[1].upper()}]}, {}), (200, {"value": []}, {})]
    assert client.distribution_groups_present(ids, max_filter_chars=160) == {ids[1]}
    filters = [b["CmdletInput"]["Parameters"]["Filter"] for b in fake.bodies()]
    assert filters == [f"(ExternalDirectoryObjectId -eq '{ids[0]}') -or (ExternalDirectoryObjectId -eq '{ids[1]}')",
                       f"ExternalDirectoryObjectId -eq '{ids[2]}'"]


def test_exchange_check_reports_a_missing_role() -> None:
    fake = FakeExchange()
    client = ExchangeOnline(ExchangeOnlineSettings(credentials=CREDS, base_url="https://outlook.test"),
                            token_source=StaticTokens(roles=("User.Read.All",)), transport=httpx.MockTransport(fake))
    report = client.check()
    assert not report.ok and "Exchange.ManageAsApp" in report.failures()[0].detail
