"""The lab cloud service (portal.lab.cloud) answers the real Microsoft client libraries as the
cloud does: msal gets tokens from it, msgraph-sdk pages, filters, batches and retries against it,
and the Exchange InvokeCommand and Entra Connect endpoints answer in their services' shapes.

One service runs for the whole module on a port of its own (tests/support/labs.py; DIROPS_TEST_CLOUD_PORT
overrides) with its data in a temporary directory, and is stopped at the end. Its tenant is seeded
through store.py directly, as the sync engine will do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import msal
import pytest
import requests
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.serialization import Parsable, ParseNode, SerializationWriter
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory, PageIterator

from portal.lab.cloud import server
from portal.lab.cloud.auth import issue_access_token
from portal.lab.cloud.store import CloudStore
from portal.lab.cloud.store.common import utc_now
from tests.support import labs

pytestmark = pytest.mark.integration

PORT = int(os.environ.get("DIROPS_TEST_CLOUD_PORT") or labs.own_port(labs.LAB_CLOUD))
USERS = 10_000
GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]
EXCHANGE_SCOPE = ["https://outlook.office365.com/.default"]


@dataclass
class Lab:
    status: server.CloudStatus
    creds: server.LabCredentials
    store: CloudStore
    msal_app: msal.ConfidentialClientApplication

    def token(self, scopes: list[str]) -> str:
        result = self.msal_app.acquire_token_for_client(scopes=scopes)
        assert "access_token" in result, result.get("error_description")
        return result["access_token"]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.status.ca_file))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    data_dir = tmp_path_factory.mktemp("cloud")
    status = server.start(data_dir=data_dir, port=PORT)
    session = requests.Session()
    try:
        creds = server.lab_credentials(data_dir=data_dir)
        store = CloudStore.open(data_dir=data_dir)
        _seed(store)
        # REQUESTS_CA_BUNDLE would override msal's verify= (lab-cloud.md): a session that ignores
        # the environment and trusts only the lab CA.
        session.trust_env = False
        session.verify = str(status.ca_file)
        app = msal.ConfidentialClientApplication(
            creds.client_id, client_credential=creds.client_secret, authority=status.authority,
            instance_discovery=False, http_client=session,
        )
        yield Lab(status, creds, store, app)
    finally:
        session.close()
        server.stop(data_dir=data_dir)


def _seed(store: CloudStore) -> None:
    store.add_accepted_domain(domain_name="contoso.com", default=True)
    with store.transaction():
        for i in range(USERS):
            store.create_user(
                user_principal_name=f"user{i:05d}@contoso.com", display_name=f"User {i:05d}",
                mail=f"user{i:05d}@contoso.com",
                proxy_addresses=[f"SMTP:user{i:05d}@contoso.com", f"smtp:u{i}@contoso.onmicrosoft.com"],
                on_premises_sync_enabled=i % 3 != 0, source_anchor=f"anchor-{i}",
                extra={"department": "Sales" if i % 2 else "Finance"},
            )
        for i in range(5):
            user = store.get_user(id_or_upn=f"user{i:05d}@contoso.com")
            assert user
            store.create_recipient(recipient_type_details="UserMailbox", name=f"user{i:05d}", alias=f"user{i:05d}",
                                   primary_smtp_address=f"user{i:05d}@contoso.com", object_id=user["id"],
                                   is_dir_synced=True)
        synced = store.create_group(display_name="Synced Sales", mail_enabled=True, security_enabled=False,
                                    mail="synced-sales@contoso.com", mail_nickname="synced-sales",
                                    proxy_addresses=["SMTP:synced-sales@contoso.com"], on_premises_sync_enabled=True,
                                    source_anchor="group-anchor-1")
        store.create_recipient(recipient_type_details="MailUniversalDistributionGroup", name="Synced Sales",
                               alias="synced-sales", primary_smtp_address="synced-sales@contoso.com",
                               object_id=synced["id"], is_dir_synced=True)


# --------------------------------------------------------------------------------------------
# msgraph-sdk wiring: the lab base URL, a token provider backed by msal, the lab CA


class _MsalTokenProvider(AccessTokenProvider):
    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] | None = None
                                      ) -> str:
        return await asyncio.to_thread(self.lab.token, GRAPH_SCOPE)

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator([self.lab.status.host])


@contextlib.asynccontextmanager
async def _graph_client(lab: Lab) -> AsyncIterator[tuple[GraphServiceClient, GraphRequestAdapter]]:
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=lab.ssl_context(), trust_env=False, timeout=30))
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(_MsalTokenProvider(lab)), client=http)
    adapter.base_url = lab.status.graph_url
    try:
        yield GraphServiceClient(request_adapter=adapter), adapter
    finally:
        await http.aclose()


def _users_config(**query: Any) -> RequestConfiguration:
    params = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(**query)
    return RequestConfiguration(query_parameters=params)


class _UserRef(Parsable):
    """A user reduced to id and UPN: msgraph's generated User model costs about 4 ms per object to
    parse (measured here), which would make 10,000 users a 40-second test of the SDK, not of the lab."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.user_principal_name: str | None = None

    @staticmethod
    def create_from_discriminator_value(parse_node: ParseNode) -> _UserRef:
        return _UserRef()

    def get_field_deserializers(self) -> dict[str, Any]:
        return {"id": lambda n: setattr(self, "id", n.get_str_value()),
                "userPrincipalName": lambda n: setattr(self, "user_principal_name", n.get_str_value())}

    def serialize(self, writer: SerializationWriter) -> None:
        writer.write_str_value("id", self.id)


class _UserRefPage(Parsable):
    def __init__(self) -> None:
        self.odata_next_link: str | None = None
        self.value: list[Any] = []

    @staticmethod
    def create_from_discriminator_value(parse_node: ParseNode) -> _UserRefPage:
        return _UserRefPage()

    def get_field_deserializers(self) -> dict[str, Any]:
        return {"@odata.nextLink": lambda n: setattr(self, "odata_next_link", n.get_str_value()),
                "value": lambda n: setattr(self, "value", n.get_collection_of_object_values(_UserRef))}

    def serialize(self, writer: SerializationWriter) -> None:
        writer.write_str_value("@odata.nextLink", self.odata_next_link)


# --------------------------------------------------------------------------------------------
# tokens


def test_msal_gets_tokens_for_graph_and_exchange_from_the_lab_authority(lab: Lab) -> None:
    graph = lab.msal_app.acquire_token_for_client(scopes=GRAPH_SCOPE)
    exchange = lab.msal_app.acquire_token_for_client(scopes=EXCHANGE_SCOPE)
    assert graph["token_type"] == "Bearer" and graph["expires_in"] > 3000
    assert graph["access_token"] != exchange["access_token"]

    wrong = msal.ConfidentialClientApplication(
        lab.creds.client_id, client_credential="not-the-secret", authority=lab.status.authority,
        instance_discovery=False, http_client=lab.msal_app.http_client,
    ).acquire_token_for_client(scopes=GRAPH_SCOPE)
    assert wrong["error"] == "invalid_client"
    assert wrong["error_codes"] == [7000215]


def test_graph_refuses_missing_garbled_expired_foreign_and_misaddressed_tokens(lab: Lab) -> None:
    key = lab.store.signing_key()
    expired = issue_access_token(key=key, tenant_id=lab.creds.tenant_id, client_id=lab.creds.client_id,
                                 audience="https://graph.microsoft.com", now=utc_now() - timedelta(hours=2))
    foreign = issue_access_token(key=key, tenant_id="00000000-1111-2222-3333-444444444444",
                                 client_id=lab.creds.client_id, audience="https://graph.microsoft.com")
    cases = {
        None: "Access token is empty.",
        "not-a-jwt": "IDX14100",
        expired: "Lifetime validation failed, the token is expired.",
        foreign: "Invalid issuer",
        lab.token(EXCHANGE_SCOPE): "Invalid audience",
    }
    with httpx.Client(verify=lab.ssl_context(), trust_env=False) as http:
        for token, message in cases.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = http.get(f"{lab.status.graph_url}/users", headers=headers)
            assert response.status_code == 401
            error = response.json()["error"]
            assert error["code"] == "InvalidAuthenticationToken"
            assert message in error["message"]
            assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --------------------------------------------------------------------------------------------
# Graph through the real SDK


def test_sdk_pages_through_ten_thousand_users_with_absolute_next_links(lab: Lab) -> None:
    async def page_all() -> tuple[list[str], str]:
        async with _graph_client(lab) as (client, adapter):
            # The first page through the generated client and model, as the portal's connector reads it...
            first = await client.users.get(request_configuration=_users_config(top=999,
                                                                               select=["id", "userPrincipalName"]))
            assert first is not None and first.odata_next_link and len(first.value) == 999
            # ...the rest through the SDK's PageIterator, which follows the absolute nextLinks through
            # the same adapter and middleware (with a lean model, see _UserRef).
            page = _UserRefPage()
            page.odata_next_link, page.value = first.odata_next_link, list(first.value)
            seen: list[str] = []

            def collect(user: Any) -> bool:
                seen.append(user.user_principal_name)
                return True

            await PageIterator(page, adapter).iterate(collect)
            return seen, first.odata_next_link

    upns, next_link = asyncio.run(page_all())
    assert next_link.startswith(f"{lab.status.graph_url}/users?")
    assert len(upns) == USERS and len(set(upns)) == USERS
    assert upns[:2] == ["user00000@contoso.com", "user00001@contoso.com"]


def test_sdk_select_filter_and_count_as_graph_answers_them(lab: Lab) -> None:
    async def queries() -> dict[str, Any]:
        async with _graph_client(lab) as (client, _adapter):
            return await _queries(client)

    async def _queries(client: GraphServiceClient) -> dict[str, Any]:
        counted = _users_config(filter="startswith(displayName,'User 0012') and onPremisesSyncEnabled eq true",
                                count=True, select=["displayName", "mail"], top=5)
        counted.headers.add("ConsistencyLevel", "eventual")
        by_address = _users_config(filter="proxyAddresses/any(p:p eq 'smtp:u42@contoso.onmicrosoft.com')")
        results: dict[str, Any] = {
            "counted": await client.users.get(request_configuration=counted),
            "by_address": await client.users.get(request_configuration=by_address),
        }
        for name, config in {
            "count_without_header": _users_config(count=True),
            "bad_filter": _users_config(filter="displayName eq 'x' andd"),
        }.items():
            try:
                await client.users.get(request_configuration=config)
            except ODataError as exc:
                results[name] = exc
        return results

    results = asyncio.run(queries())
    counted = results["counted"]
    # User 00120..00129, minus 120, 123, 126, 129 (every third user is cloud-only).
    assert counted.odata_count == 6
    assert [u.display_name for u in counted.value] == ["User 00121", "User 00122", "User 00124", "User 00125",
                                                       "User 00127"]
    assert counted.value[0].mail == "user00121@contoso.com" and counted.value[0].id is None
    assert counted.odata_next_link
    assert [u.user_principal_name for u in results["by_address"].value] == ["user00042@contoso.com"]
    assert results["count_without_header"].response_status_code == 400
    assert results["bad_filter"].response_status_code == 400
    assert results["bad_filter"].error.code == "BadRequest"
    assert results["bad_filter"].error.message.startswith("Invalid filter clause")


def test_sdk_batch_of_twenty_and_the_limit_beyond_it(lab: Lab) -> None:
    try:
        from msgraph_core.requests.batch_request_content import BatchRequestContent
    except ModuleNotFoundError as exc:  # msgraph-core 1.5.2 imports 'deprecated' without declaring it
        pytest.fail(f"msgraph-core's batch support cannot be imported ({exc}); install the 'deprecated' package")
    from msgraph_core.requests.batch_request_item import BatchRequestItem

    async def run() -> dict[str, int]:
        async with _graph_client(lab) as (client, _adapter):
            content = BatchRequestContent()
            for i in range(19):
                info = client.users.by_user_id(f"user{i:05d}@contoso.com").to_get_request_information()
                content.add_request(None, BatchRequestItem(info, id=str(i)))
            missing = client.users.by_user_id("nobody@contoso.com").to_get_request_information()
            content.add_request(None, BatchRequestItem(missing, id="missing"))
            response = await client.batch.post(batch_request_content=content)
            return response.get_response_status_codes()

    statuses = asyncio.run(run())
    assert len(statuses) == 20
    assert statuses.pop("missing") == 404
    assert set(statuses.values()) == {200}

    with httpx.Client(verify=lab.ssl_context(), trust_env=False) as http:
        headers = {"Authorization": f"Bearer {lab.token(GRAPH_SCOPE)}"}
        steps = [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(21)]
        too_many = http.post(f"{lab.status.graph_url}/$batch", json={"requests": steps}, headers=headers)
        assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "BadRequest"
        one = http.post(f"{lab.status.graph_url}/$batch", headers=headers, json={"requests": [
            {"id": "1", "method": "GET", "url": "/users/user00007@contoso.com?$select=displayName"}]})
        assert one.json()["responses"][0]["body"]["displayName"] == "User 00007"


def test_sdk_retry_middleware_rides_out_a_burst_of_429(lab: Lab, graph_retry_waits: list[float]) -> None:
    async def one_user() -> Any:
        async with _graph_client(lab) as (client, _adapter):
            return await client.users.get(request_configuration=_users_config(top=1))

    lab.store.set_faults(throttle=2, retry_after=1, scope="graph")
    try:
        users = asyncio.run(one_user())
    finally:
        lab.store.clear_faults()
    assert users is not None and len(users.value) == 1
    assert graph_retry_waits == [1, 1]  # both 429s answered with Retry-After: 1, each wait honoured
    assert lab.store.settings().throttle_remaining == 0

    lab.store.set_faults(throttle=1, retry_after=7, scope="graph")
    try:
        with httpx.Client(verify=lab.ssl_context(), trust_env=False) as http:
            response = http.get(f"{lab.status.graph_url}/users",
                                headers={"Authorization": f"Bearer {lab.token(GRAPH_SCOPE)}"})
    finally:
        lab.store.clear_faults()
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()["error"]["code"] == "TooManyRequests"


def test_beta_group_writeback_configuration_and_graph_refusals_on_synced_and_mail_lists(lab: Lab) -> None:
    group = lab.store.create_group(display_name="Project X", group_types=["Unified"], mail_enabled=True,
                                   mail="project-x@contoso.com", mail_nickname="project-x")
    synced = lab.store.find_by_source_anchor(source_anchor="group-anchor-1", kind="group")
    assert synced
    headers = {"Authorization": f"Bearer {lab.token(GRAPH_SCOPE)}"}
    base = lab.status.base_url
    with httpx.Client(verify=lab.ssl_context(), trust_env=False, headers=headers) as http:
        beta = http.get(f"{base}/beta/groups/{group['id']}").json()
        v1 = http.get(f"{base}/v1.0/groups/{group['id']}").json()
        changed = http.patch(f"{base}/beta/groups/{group['id']}", json={"writebackConfiguration": {
            "isEnabled": True, "onPremisesGroupType": "universalDistributionGroup"}})
        after = http.get(f"{base}/beta/groups/{group['id']}?$select=id,writebackConfiguration").json()
        invalid = http.patch(f"{base}/beta/groups/{group['id']}", json={"writebackConfiguration": {
            "onPremisesGroupType": "globalGroup"}})
        on_v1 = http.patch(f"{base}/v1.0/groups/{group['id']}", json={"writebackConfiguration": {"isEnabled": False}})
        synced_delete = http.delete(f"{base}/v1.0/groups/{synced['id']}")
        unknown = http.get(f"{base}/v1.0/groups/00000000-0000-0000-0000-000000000000")
    assert beta["writebackConfiguration"] == {"isEnabled": None, "onPremisesGroupType": None}
    assert "writebackConfiguration" not in v1 and v1["@odata.context"].endswith("/v1.0/$metadata#groups/$entity")
    assert changed.status_code == 204
    assert after["writebackConfiguration"] == {"isEnabled": True, "onPremisesGroupType": "universalDistributionGroup"}
    assert invalid.status_code == 400 and on_v1.status_code == 400
    assert synced_delete.status_code == 400
    assert "on-premises mastered Directory Sync objects" in synced_delete.json()["error"]["message"]
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "Request_ResourceNotFound"


def test_registration_report_methods_and_audit_log_with_the_licence_switch(lab: Lab) -> None:
    user = lab.store.get_user(id_or_upn="user00010@contoso.com")
    assert user
    lab.store.add_auth_method(user_id=user["id"], method_type="password")
    lab.store.add_auth_method(user_id=user["id"], method_type="phone",
                              properties={"phoneNumber": "+1 5555550110", "phoneType": "mobile"})
    lab.store.upsert_registration_details(user_id=user["id"], properties={
        "userPrincipalName": "user00010@contoso.com", "userDisplayName": "User 00010", "isMfaRegistered": True,
        "isMfaCapable": True, "methodsRegistered": ["mobilePhone"]})
    lab.store.add_audit_event(activity_display_name="User started security info registration",
                              category="UserManagement", target_resources=[{"id": user["id"], "type": "User"}],
                              logged_by_service="Authentication Methods")
    headers = {"Authorization": f"Bearer {lab.token(GRAPH_SCOPE)}"}
    graph = lab.status.graph_url
    report_url = f"{graph}/reports/authenticationMethods/userRegistrationDetails"
    with httpx.Client(verify=lab.ssl_context(), trust_env=False, headers=headers) as http:
        methods = http.get(f"{graph}/users/{user['id']}/authentication/methods").json()["value"]
        report = http.get(report_url, params={"$filter": "methodsRegistered/any(m:m eq 'mobilePhone')"}).json()
        audits = http.get(f"{graph}/auditLogs/directoryAudits", params={
            "$filter": f"activityDateTime ge 2020-01-01T00:00:00Z and targetResources/any(t:t/id eq '{user['id']}') "
                       "and activityDisplayName eq 'User started security info registration'"}).json()
        lab.store.update_settings(premium_licence=False)
        try:
            unlicensed = http.get(report_url)
        finally:
            lab.store.update_settings(premium_licence=True)
    assert [m["@odata.type"] for m in methods] == ["#microsoft.graph.passwordAuthenticationMethod",
                                                   "#microsoft.graph.phoneAuthenticationMethod"]
    assert [r["userPrincipalName"] for r in report["value"]] == ["user00010@contoso.com"]
    assert [a["loggedByService"] for a in audits["value"]] == ["Authentication Methods"]
    assert unlicensed.status_code == 403
    assert unlicensed.json()["error"]["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"


# --------------------------------------------------------------------------------------------
# Exchange Online InvokeCommand and the Entra Connect endpoint


def _invoke(http: httpx.Client, lab: Lab, cmdlet: str, url: str | None = None, page_size: int | None = None,
            **parameters: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {lab.token(EXCHANGE_SCOPE)}"}
    if page_size:
        headers["Prefer"] = f"odata.maxpagesize={page_size}"
    body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}}
    return http.post(url or lab.status.exchange_invoke_url, json=body, headers=headers)


def test_invoke_command_runs_cmdlets_and_pages_with_next_links(lab: Lab) -> None:
    with httpx.Client(verify=lab.ssl_context(), trust_env=False) as http:
        domains = _invoke(http, lab, "Get-AcceptedDomain").json()["value"]
        assert {d["DomainName"] for d in domains} == {"contoso.onmicrosoft.com", "contoso.com"}

        created = _invoke(http, lab, "New-DistributionGroup", Name="Cloud Team", Alias="cloud-team",
                          Members=["user00001@contoso.com", "user00002"], ManagedBy="user00003")
        assert created.status_code == 200, created.text
        group = created.json()["value"][0]
        assert group["RecipientTypeDetails"] == "MailUniversalDistributionGroup"
        assert group["PrimarySmtpAddress"] == "cloud-team@contoso.com"
        assert group["ManagedBy"] == ["user00003"] and group["IsDirSynced"] is False

        page = _invoke(http, lab, "Get-DistributionGroupMember", page_size=1, Identity="cloud-team@contoso.com")
        names = [m["Name"] for m in page.json()["value"]]
        while "@odata.nextLink" in page.json():
            page = _invoke(http, lab, "Get-DistributionGroupMember", url=page.json()["@odata.nextLink"], page_size=1,
                           Identity="cloud-team@contoso.com")
            names += [m["Name"] for m in page.json()["value"]]
        assert names == ["user00001", "user00002"]

        manager_dn = _invoke(http, lab, "Get-Mailbox", Identity="user00003").json()["value"][0]["DistinguishedName"]
        managed = _invoke(http, lab, "Get-DistributionGroup", Filter=f"ManagedBy -eq '{manager_dn}'").json()["value"]
        assert [g["Name"] for g in managed] == ["Cloud Team"]


def test_invoke_command_errors_have_exchange_shapes(lab: Lab) -> None:
    with httpx.Client(verify=lab.ssl_context(), trust_env=False) as http:
        unknown = _invoke(http, lab, "Get-Nothing")
        missing = _invoke(http, lab, "Get-DistributionGroup", Identity="no-such-list")
        bad_parameter = _invoke(http, lab, "Get-DistributionGroup", Identity="Synced Sales", Colour="blue")
        synced = _invoke(http, lab, "Set-DistributionGroup", Identity="Synced Sales", ManagedBy="user00001")
        graph_token = http.post(lab.status.exchange_invoke_url, json={"CmdletInput": {"CmdletName": "Get-Mailbox"}},
                                headers={"Authorization": f"Bearer {lab.token(GRAPH_SCOPE)}"})

    def detail(response: httpx.Response) -> list[str]:
        return response.json()["error"]["details"][0]["message"].split("|", 2)

    assert unknown.status_code == 400
    assert detail(unknown)[1] == "System.Management.Automation.CommandNotFoundException"
    assert detail(unknown)[2].startswith("The term 'Get-Nothing' is not recognized as a name of a cmdlet")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "Error executing cmdlet"
    assert detail(missing)[:2] == ["Ex6F9304",
                                   "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"]
    assert "object 'no-such-list' couldn't be found on" in detail(missing)[2]
    assert "A parameter cannot be found that matches parameter name 'Colour'." == detail(bad_parameter)[2]
    assert "is being synchronized from your on-premises organization" in detail(synced)[2]
    assert graph_token.status_code == 401 and "invalid_token" in graph_token.headers["WWW-Authenticate"]


def test_entra_connect_scheduler_and_sync_cycle_without_an_engine(lab: Lab) -> None:
    auth = (lab.creds.powershell_username, lab.creds.powershell_password)
    with httpx.Client(verify=lab.ssl_context(), trust_env=False) as http:
        scheduler = http.post(lab.status.entra_connect_url, auth=auth,
                              json={"cmdlet": "Get-ADSyncScheduler", "parameters": {}}).json()
        cycle = http.post(lab.status.entra_connect_url, auth=auth,
                          json={"cmdlet": "Start-ADSyncSyncCycle", "parameters": {"PolicyType": "Delta"}}).json()
        refused = http.post(lab.status.entra_connect_url, auth=(lab.creds.powershell_username, "wrong"),
                            json={"cmdlet": "Get-ADSyncScheduler", "parameters": {}})
    settings = scheduler["output"][0]
    assert scheduler["errors"] == []
    assert settings["SyncCycleEnabled"] is True and settings["StagingModeEnabled"] is False
    assert settings["NextSyncCyclePolicyType"] == "Delta" and settings["AllowedSyncCycleInterval"] == "00:30:00"
    assert cycle["output"] == [] and cycle["had_errors"] is True
    assert "sync runner" in cycle["errors"][0]["message"]
    assert refused.status_code == 401


def test_server_status_reports_the_running_service_and_keeps_secrets_out_of_repr(lab: Lab) -> None:
    status = server.status(data_dir=lab.status.data_dir)
    assert status.running and status.pid == lab.status.pid and status.port == PORT
    assert lab.creds.client_secret not in repr(lab.creds)
    assert lab.creds.powershell_password not in repr(lab.creds)
    assert (Path(status.data_dir) / server.CREDENTIALS).stat().st_mode & 0o077 == 0
