"""Cloud connectors without a server: httpx MockTransport stands in for Graph, Exchange Online and
the lab's PowerShell endpoint; a fake token source stands in for msal (one test drives msal itself
with a fake application to prove secrets stay out of error text).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from portal.connectors import exchange, graph, sync
from portal.connectors.exchange import (
    SWITCH,
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
from tests.conftest import wait_for

pytestmark = [
    # msgraph-sdk's generated builders warn about their own configuration classes when imported
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]

TENANT = "6f1d3c52-1b9e-4f2a-9c31-2a7f0e1b9d44"
SECRET = "s3cret~value-never-shown"
CREDS = graph.AppCredentials(tenant_id=TENANT, client_id="c0ffee00-0000-4000-8000-000000000001",
                             client_secret=SECRET)


class StaticTokens(graph.TokenSource):
    """A token source that never talks to an authority."""

    def __init__(self, roles: tuple[str, ...] = ("Exchange.ManageAsApp",)) -> None:
        super().__init__(CREDS)
        self.roles = roles
        self.issued = 0
        self.invalidated = 0

    def acquire(self, scope: str, *, claims: str | None = None) -> graph.AccessToken:
        self.issued += 1
        return graph.AccessToken(token=f"token-{self.issued}", expires_at=time.time() + 3600,
                                 claims={"tid": TENANT, "roles": list(self.roles)})

    def invalidate(self) -> None:
        self.invalidated += 1


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


# --------------------------------------------------------------------------------------------
# Graph over a mock transport


def make_graph(handler: Callable[[httpx.Request], httpx.Response], **overrides: Any) -> graph.EntraGraph:
    settings = graph.GraphSettings(credentials=CREDS, graph_url="https://graph.test/v1.0",
                                   **{"retry_delay": 0.0, "max_retries": 1, **overrides})
    return graph.EntraGraph(settings, token_source=StaticTokens(), transport=httpx.MockTransport(handler))


def graph_error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message,
                      "innerError": {"date": "2024-05-01T10:00:00", "request-id": "rid-42",
                                     "client-request-id": "cid-42"}}}


@pytest.mark.parametrize("status, code, error", [
    (400, "Request_UnsupportedQuery", graph.BadRequest),
    (401, "InvalidAuthenticationToken", graph.Unauthorized),
    (403, "Authorization_RequestDenied", graph.Forbidden),
    (404, "Request_ResourceNotFound", graph.NotFound),
    (500, "generalException", graph.ServiceUnavailable),
])
def test_graph_errors_are_mapped(status: int, code: str, error: type[graph.GraphError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=graph_error_body(code, "what Graph said"))

    with make_graph(handler, max_retries=0) as client, pytest.raises(error) as caught:
        client.get_user("pat@contoso.com")
    assert (caught.value.status, caught.value.code, caught.value.request_id) == (status, code, "rid-42")
    assert caught.value.server_message == "what Graph said"
    assert not isinstance(caught.value, graph.LicenceRequired)


def test_missing_premium_licence_is_licence_required_at_the_call() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/reports/authenticationMethods/userRegistrationDetails"
        body = graph_error_body("Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                                "Neither tenant is B2C or tenant doesn't have premium license")
        return httpx.Response(403, json=body)

    with make_graph(handler) as client, pytest.raises(graph.LicenceRequired, match="P1 or P2"):
        client.user_registration_details()


def test_graph_retries_429_after_retry_after_then_succeeds(graph_retry_waits: list[float]) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            return httpx.Response(429, json=graph_error_body("TooManyRequests", "slow down"),
                                  headers={"Retry-After": "1"})
        return httpx.Response(200, json={"id": "u1", "userPrincipalName": "pat@contoso.com"})

    with make_graph(handler, max_retries=2) as client:
        assert client.get_user("pat@contoso.com").user_principal_name == "pat@contoso.com"
        assert (client.stats.requests, client.stats.throttled) == (2, 1)
    assert len(calls) == 2 and graph_retry_waits == [1]  # the one Retry-After: 1 was waited, once


def test_graph_throttled_after_its_retries(graph_retry_waits: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json=graph_error_body("TooManyRequests", "slow down"), headers={"Retry-After": "1"})

    with make_graph(handler, max_retries=1) as client, pytest.raises(graph.Throttled) as caught:
        client.count_users()
    assert caught.value.retry_after == 1.0 and caught.value.status == 429
    assert graph_retry_waits == [1]  # its one retry waited as asked


def test_paging_follows_absolute_next_links_and_keeps_the_token_on_its_host() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        token = request.url.params.get("$skiptoken")
        if request.url.host == "graph.test" and token is None:
            return httpx.Response(200, json={"value": [{"id": "u1"}, {"id": "u2"}],
                                             "@odata.nextLink": "https://graph.test/v1.0/users?$skiptoken=p2"})
        if request.url.host == "graph.test":
            return httpx.Response(200, json={"value": [{"id": "u3"}],
                                             "@odata.nextLink": "https://elsewhere.test/v1.0/users?$skiptoken=p3"})
        return httpx.Response(200, json={"value": [{"id": "u4"}]})

    with make_graph(handler) as client:
        users = client.iter_users(select=["id"], filter=graph.odata_eq("userType", "Member"), advanced=True)
        assert [u.id for u in users] == ["u1", "u2", "u3", "u4"]
    assert seen[0][1] == "Bearer token-1" and seen[1][1] is not None
    assert "%24count=true" in seen[0][0] or "$count=true" in seen[0][0]
    assert seen[2][0].startswith("https://elsewhere.test/") and seen[2][1] is None


def test_a_relative_next_link_is_a_clear_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"value": [{"id": "u1"}], "@odata.nextLink": "/v1.0/users?$skiptoken=x"})

    with make_graph(handler) as client:
        users = client.iter_users()
        assert next(users).id == "u1"
        with pytest.raises(graph.GraphError, match="nextLink"):
            next(users)


def test_batched_auth_methods_split_retry_and_report_per_user() -> None:
    batches: list[list[dict[str, Any]]] = []
    throttled_once: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/$batch"
        items = json.loads(request.content)["requests"]
        batches.append(items)
        responses = []
        for item in items:
            user_id = item["url"].split("/")[2]
            assert item["url"] == f"/users/{user_id}/authentication/methods" and item["method"] == "GET"
            if user_id == "u7" and user_id not in throttled_once:
                throttled_once.add(user_id)
                responses.append({"id": item["id"], "status": 429, "headers": {"Retry-After": "0"},
                                  "body": graph_error_body("TooManyRequests", "slow down")})
            elif user_id == "u13":
                responses.append({"id": item["id"], "status": 404, "headers": {},
                                  "body": graph_error_body("Request_ResourceNotFound", "no such user")})
            else:
                responses.append({"id": item["id"], "status": 200, "headers": {"Content-Type": "application/json"},
                                  "body": {"value": [
                                      {"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
                                       "id": f"m-{user_id}", "displayName": "iPhone",
                                       "createdDateTime": "2024-02-01T08:00:00Z"}]}})
        return httpx.Response(200, json={"responses": responses})

    ids = [f"u{i}" for i in range(45)]
    with make_graph(handler, batch_concurrency=2) as client:
        result = client.user_auth_methods_many(ids)

    # 40 ids per round (2 batches in flight), u7 retried alone after its 429, then the last 5
    assert [len(b) for b in batches] == [20, 20, 1, 5]
    assert list(result) == ids
    assert result["u7"].ok and result["u7"].methods[0].method == "microsoftAuthenticator"
    assert result["u3"].methods[0].display_name == "iPhone" and result["u3"].methods[0].created is not None
    assert isinstance(result["u13"].error, graph.NotFound) and result["u13"].error.request_id == "rid-42"


def test_group_writeback_reads_beta() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/beta/groups/g1"
        config = {"isEnabled": None, "onPremisesGroupType": "universalDistributionGroup"}
        return httpx.Response(200, json={"id": "g1", "displayName": "Sales", "groupTypes": [],
                                         "writebackConfiguration": config})

    with make_graph(handler) as client:
        wb = client.group_writeback("g1")
    assert wb.is_enabled is None and wb.writeback_enabled and wb.on_premises_group_type == "universalDistributionGroup"


def test_path_segments_cannot_be_smuggled() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"id": "g1", "userPrincipalName": "ann_contoso.com#EXT#@fabrikam.com"})

    with make_graph(handler) as client:
        with pytest.raises(ValueError, match="is not an object id or user principal name"):
            client.get_user("../groups/x")
        guest = client.get_user("ann_contoso.com#EXT#@fabrikam.com", select=["id"])
    assert guest.user_principal_name == "ann_contoso.com#EXT#@fabrikam.com"
    assert seen == ["/v1.0/users/ann_contoso.com%23EXT%23%40fabrikam.com?$select=id"]


# --------------------------------------------------------------------------------------------
# msal: errors keep the secret out


def test_token_errors_never_show_the_secret(monkeypatch) -> None:
    import msal

    class RefusingApp:
        def __init__(self, client_id: str, **kwargs: Any) -> None:
            assert kwargs["client_credential"] == SECRET and kwargs["instance_discovery"] is False
            session = kwargs["http_client"]
            assert session.trust_env is False

        def acquire_token_for_client(self, scopes: list[str], claims_challenge: str | None = None) -> dict[str, Any]:
            return {"error": "invalid_client", "correlation_id": "corr-1",
                    "error_description": f"AADSTS7000215: Invalid client secret provided: {SECRET}"}

    monkeypatch.setattr(msal, "ConfidentialClientApplication", RefusingApp)
    source = graph.TokenSource(CREDS)
    with pytest.raises(graph.TokenError) as caught:
        source.acquire(graph.GRAPH_SCOPE)
    assert SECRET not in str(caught.value) and "AADSTS7000215" in str(caught.value)
    assert caught.value.code == "invalid_client" and caught.value.correlation_id == "corr-1"
    assert SECRET not in repr(CREDS)

    report = graph.EntraGraph(graph.GraphSettings(credentials=CREDS), token_source=source).check()
    assert not report.ok and SECRET not in str(report)


def test_certificate_credentials_go_to_msal_as_a_dict(monkeypatch) -> None:
    import msal

    seen: dict[str, Any] = {}

    class App:
        def __init__(self, client_id: str, **kwargs: Any) -> None:
            seen.update(kwargs)

        def acquire_token_for_client(self, scopes: list[str], claims_challenge: str | None = None) -> dict[str, Any]:
            return {"access_token": "a.b.c", "expires_in": 60}

    monkeypatch.setattr(msal, "ConfidentialClientApplication", App)
    creds = graph.AppCredentials(tenant_id=TENANT, client_id="c", certificate_key="-----BEGIN PRIVATE KEY-----\nx",
                                 certificate_thumbprint="AB:CD:EF", authority_host="https://127.0.0.1:8451",
                                 ca_file="/tmp/ca.pem")
    assert graph.TokenSource(creds).token(graph.GRAPH_SCOPE) == "a.b.c"
    assert seen["client_credential"] == {"private_key": "-----BEGIN PRIVATE KEY-----\nx", "thumbprint": "ABCDEF"}
    assert seen["authority"] == f"https://127.0.0.1:8451/{TENANT}" and seen["http_client"].verify == "/tmp/ca.pem"


def test_credentials_are_validated() -> None:
    with pytest.raises(ValueError, match="exactly one of client_secret or certificate_key"):
        graph.AppCredentials(tenant_id=TENANT, client_id="c")
    with pytest.raises(ValueError, match="only https authorities"):
        graph.AppCredentials(tenant_id=TENANT, client_id="c", client_secret="x", authority_host="http://lab")


# --------------------------------------------------------------------------------------------
# the lab PowerShell transport and EntraConnect


def test_lab_transport_posts_cmdlet_and_parameters_with_basic_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"output": [{"Result": "Success"}], "errors": [], "warnings": []})

    t = exchange.LabPowerShellTransport("https://lab.test/powershell/entra-connect", username="syncadmin",
                                        password=SECRET, transport=httpx.MockTransport(handler))
    assert t.run("Start-ADSyncSyncCycle", {"PolicyType": "Delta", "InteractiveMode": SWITCH}) == [{"Result": "Success"}]
    assert json.loads(seen[0].content) == {"cmdlet": "Start-ADSyncSyncCycle",
                                           "parameters": {"PolicyType": "Delta", "InteractiveMode": True}}
    assert seen[0].headers["authorization"].startswith("Basic ")


def test_lab_transport_errors() -> None:
    answers = [
        httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="WSMAN"'}),
        httpx.Response(429, json={"output": [], "errors": [{"exception_type": "System.Net.WebException",
                                                            "message": "busy"}]}, headers={"Retry-After": "3"}),
        httpx.Response(200, json={"output": [], "errors": [{
            "exception_type": "System.InvalidOperationException",
            "message": "Sync is already running. Cannot start a new run till this one completes.",
            "fq_error_id": "InvalidOperationException,Start-ADSyncSyncCycle", "category": "InvalidOperation"}]}),
    ]
    waits: list[float] = []
    t = exchange.LabPowerShellTransport("https://lab.test/powershell/entra-connect", username="syncadmin",
                                        password=SECRET, transport=httpx.MockTransport(lambda r: answers.pop(0)),
                                        sleep=waits.append)
    with pytest.raises(exchange.RemotingAuthFailed) as caught:
        t.run("Get-ADSyncScheduler", {})
    assert SECRET not in str(caught.value)
    with pytest.raises(sync.SyncAlreadyRunning) as failed:
        sync.EntraConnect(t).start_sync_cycle()
    assert waits == [3.0] and failed.value.exception_type == "InvalidOperationException"


class ScriptedTransport:
    endpoint = "fake://sync"

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def run(self, cmdlet: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append((cmdlet, dict(parameters)))
        answer = self.answers[cmdlet]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        pass


def test_entra_connect_typed_results_and_errors() -> None:
    not_found = exchange.CmdletFailed("Get-ADSyncExportError failed", cmdlet="Get-ADSyncExportError", records=[
        exchange.PSErrorRecord(message="The term 'Get-ADSyncExportError' is not recognized as a name of a cmdlet",
                               exception_type="CommandNotFoundException")])
    transport = ScriptedTransport({
        "Get-ADSyncScheduler": [{"CurrentlyEffectiveSyncCycleInterval": "00:30:00", "SyncCycleEnabled": True,
                                 "StagingModeEnabled": True, "NextSyncCyclePolicyType": "Delta",
                                 "NextSyncCycleStartTimeInUTC": "2024-05-01T10:30:00Z", "SyncCycleInProgress": False,
                                 "PurgeRunHistoryInterval": "7.00:00:00"}],
        "Get-ADSyncConnector": [{"Name": "lab.example", "Type": "AD", "Identifier": "x"}],
        "Get-ADSyncConnectorRunStatus": [],
        "Get-ADSyncExportError": not_found,
        "Start-ADSyncSyncCycle": exchange.CmdletFailed("x", cmdlet="Start-ADSyncSyncCycle", records=[
            exchange.PSErrorRecord(message="The lab sync engine is not attached: start the lab cloud with a runner",
                                   exception_type="InvalidOperationException")]),
    })
    connect = sync.EntraConnect(transport)
    status = connect.get_scheduler()
    assert status.interval.total_seconds() == 1800 and status.staging_mode_enabled is True
    assert status.next_start is not None and status.next_start.hour == 10
    report = connect.check()
    assert not report.ok and [i.name for i in report.failures()] == ["staging mode"]
    assert connect.wait_until_idle(timeout=1) is True
    with pytest.raises(sync.UnknownCmdlet, match="only the lab answers it"):
        connect.export_errors()
    with pytest.raises(sync.SyncEngineUnavailable, match="not attached"):
        connect.start_sync_cycle()
    with pytest.raises(sync.InvalidParameter):
        connect.start_sync_cycle(policy="Full")  # type: ignore[arg-type]
    assert ("Start-ADSyncSyncCycle", {"PolicyType": "Delta"}) in transport.calls


def test_exchange_onprem_typed_methods_send_checked_parameters() -> None:
    transport = ScriptedTransport({"Set-MailContact": [], "Update-Recipient": [], "Set-DynamicDistributionGroup": []})
    onprem = exchange.ExchangeOnPrem(transport)
    onprem.set_mail_contact("Ext Contact", changes={"ExternalEmailAddress": "SMTP:ext@partner.example",
                                                    "CustomAttribute2": None, "HiddenFromAddressListsEnabled": True})
    onprem.update_recipient("Ext Contact")
    onprem.set_dynamic_distribution_group("All Sales", changes={
        "RecipientFilter": opath_eq("Department", "Sales") & opath_eq("RecipientType", "UserMailbox"),
        "RecipientContainer": "OU=Sales,DC=lab,DC=example"})
    assert transport.calls == [
        ("Set-MailContact", {"Identity": "Ext Contact", "ExternalEmailAddress": "SMTP:ext@partner.example",
                             "CustomAttribute2": "", "HiddenFromAddressListsEnabled": True}),
        ("Update-Recipient", {"Identity": "Ext Contact", "Confirm": False}),
        ("Set-DynamicDistributionGroup", {
            "Identity": "All Sales",
            "RecipientFilter": opath_eq("Department", "Sales") & opath_eq("RecipientType", "UserMailbox"),
            "RecipientContainer": "OU=Sales,DC=lab,DC=example"}),
    ]
    with pytest.raises(exchange.InvalidFilter):
        onprem.set_dynamic_distribution_group("All Sales", changes={"RecipientFilter": "Department -eq 'x'"})
    with pytest.raises(exchange.InvalidParameter):
        onprem.set_dynamic_distribution_group("All Sales", changes={"RecipientContainer": "not a dn"})


def test_the_facade_survives_a_fork() -> None:
    """RQ runs each job in a forked work horse: the copy must get a loop of its own, not hang."""
    import os

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "u1", "userPrincipalName": "pat@contoso.com"})

    with make_graph(handler) as client:
        assert client.get_user("pat@contoso.com").id == "u1"
        pid = os.fork()
        if pid == 0:  # the child: exit status tells the parent whether the call worked
            code = 1
            try:
                code = 0 if client.get_user("pat@contoso.com").id == "u1" else 2
            finally:
                os._exit(code)

        def child_exited() -> tuple[int, int] | None:
            done, status = os.waitpid(pid, os.WNOHANG)
            return (done, status) if done else None

        try:
            _, status = wait_for(child_exited, timeout=20, interval=0.05,
                                 message="the forked child (hung on the parent's event loop?)")
        except AssertionError:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise
        assert os.waitstatus_to_exitcode(status) == 0


def test_entra_connect_group_writeback_configuration_real_server_and_lab() -> None:
    missing = exchange.CmdletFailed("x", cmdlet="Get-ADSyncGroupWritebackConfiguration", records=[
        exchange.PSErrorRecord(message="The term 'Get-ADSyncGroupWritebackConfiguration' is not recognized as a name "
                                       "of a cmdlet", exception_type="CommandNotFoundException")])
    real = sync.EntraConnect(ScriptedTransport({"Get-ADSyncAADCompanyFeature": [{"GroupWritebackV2": False}],
                                                "Get-ADSyncGroupWritebackConfiguration": missing}))
    # A real server tells whether writeback is on; the OU and the option are left to a person.
    assert real.group_writeback_configuration() == sync.GroupWritebackConfig(False, None, None)
    lab = sync.EntraConnect(ScriptedTransport({
        "Get-ADSyncAADCompanyFeature": [{"GroupWritebackV2": True}],
        "Get-ADSyncGroupWritebackConfiguration": [{"Enabled": True, "TargetOU": "OU=W,DC=lab,DC=example",
                                                   "WritebackGroupDnWithDisplayName": "True"}]}))
    assert lab.group_writeback_configuration() == sync.GroupWritebackConfig(True, "OU=W,DC=lab,DC=example", True)
