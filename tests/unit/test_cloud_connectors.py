"""Cloud connectors without a server: httpx MockTransport stands in for Graph, a scripted transport for the lab's
PowerShell endpoint (the sync server, Exchange on-premises); a fake token source stands in for msal (one test
drives msal itself with a fake application to prove secrets stay out of error text). Exchange Online's client has
its own module, test_exchange_online_connector.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from portal.connectors import exchange, graph, sync
from portal.connectors.exchange import (
    SWITCH,
    opath_eq,
)
from tests.conftest import wait_for
from tests.support.cloud_fakes import CREDS, SECRET, TENANT, ScriptedTransport, StaticTokens

pytestmark = [
    # msgraph-sdk's generated builders warn about their own configuration classes when imported
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]


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


def test_batched_auth_methods_name_a_guest_upn_as_one_path_segment_and_refuse_a_slash() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)["requests"]
        urls.extend(item["url"] for item in items)
        return httpx.Response(200, json={"responses": [{"id": item["id"], "status": 200, "body": {"value": []}}
                                                       for item in items]})

    with make_graph(handler) as client:
        result = client.user_auth_methods_many(["zoe_fabrikam.com#EXT#@contoso.onmicrosoft.com"])
        assert result["zoe_fabrikam.com#EXT#@contoso.onmicrosoft.com"].methods == ()
        with pytest.raises(graph.GraphError, match="is not an object id or user principal name"):
            client.user_auth_methods_many(["../groups/x"])
    # percent-encoded as the SDK's request builders encode a path parameter
    assert urls == ["/users/zoe_fabrikam.com%23EXT%23%40contoso.onmicrosoft.com/authentication/methods"]


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
