"""The cloud connectors against the real lab cloud service (portal.lab.cloud), over HTTPS with its CA.

The module starts its own service on a port of its own (DIROPS_TEST_CONNECTORS_PORT, default from
tests/support/labs.py; the sync-runner service takes the next port) with its data in a temporary directory,
seeds it through ``portal.lab.cloud.store`` and stops it at the end. Real msal, msgraph-sdk and httpx code
runs; only the server is the lab's. The connectors need no Django.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from portal.connectors import exchange, graph, sync
from portal.lab.cloud import server
from portal.lab.cloud.store import CloudStore
from tests.conftest import wait_for
from tests.support import labs

pytestmark = [
    pytest.mark.integration,
    # msgraph-sdk's generated builders warn about their own configuration classes when imported
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]

PORT = int(os.environ.get("DIROPS_TEST_CONNECTORS_PORT") or labs.own_port(labs.CLOUD_CONNECTORS))
USERS = 10_000
DOMAIN = "contoso.onmicrosoft.com"


@dataclass(frozen=True)
class Lab:
    status: server.CloudStatus
    creds: server.LabCredentials
    store: CloudStore
    data_dir: Path

    @property
    def app(self) -> graph.AppCredentials:
        return graph.AppCredentials(tenant_id=self.creds.tenant_id, client_id=self.creds.client_id,
                                    client_secret=self.creds.client_secret, authority_host=self.status.base_url,
                                    ca_file=str(self.status.ca_file))

    def graph(self, **overrides: Any) -> graph.EntraGraph:
        settings = graph.GraphSettings(credentials=overrides.pop("credentials", self.app),
                                       graph_url=self.status.graph_url, beta_url=self.status.graph_beta_url,
                                       **overrides)
        return graph.EntraGraph(settings)

    def exchange(self, *, sleep: Callable[[float], None] = time.sleep, **overrides: Any) -> exchange.ExchangeOnline:
        settings = exchange.ExchangeOnlineSettings(credentials=self.app, base_url=self.status.base_url,
                                                   organization=DOMAIN, **overrides)
        return exchange.ExchangeOnline(settings, sleep=sleep)

    def powershell(self, url: str, *, password: str | None = None) -> exchange.LabPowerShellTransport:
        return exchange.LabPowerShellTransport(url, username=self.creds.powershell_username,
                                               password=password or self.creds.powershell_password,
                                               ca_file=str(self.status.ca_file))


def _start(data_dir: Path, port: int, **runners: str) -> tuple[server.CloudStatus, server.LabCredentials]:
    started = time.monotonic()
    status = server.start(data_dir=data_dir, port=port, initial_domain=DOMAIN, **runners)
    print(f"\nlab cloud up on {status.base_url} in {time.monotonic() - started:.2f} s")
    return status, server.lab_credentials(data_dir=data_dir)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    data_dir = tmp_path_factory.mktemp("lab-cloud")
    status, creds = _start(data_dir, PORT)
    store = CloudStore.open(data_dir=data_dir)
    try:
        yield Lab(status, creds, store, data_dir)
    finally:
        store.close()
        server.stop(data_dir=data_dir)


@pytest.fixture(scope="module")
def people(lab: Lab) -> dict[str, Any]:
    """A small organisation: users with mailboxes, methods and registration rows, nested groups."""
    s = lab.store
    with s.transaction():
        users = [s.create_user(user_principal_name=f"person{i}@{DOMAIN}", display_name=f"Person {i}",
                               mail=f"person{i}@{DOMAIN}") for i in range(30)]
        pat = s.create_user(user_principal_name=f"pat.oneil@{DOMAIN}", display_name="Pat O'Neil",
                            mail=f"pat.oneil@{DOMAIN}")
        mailbox = s.create_recipient(recipient_type_details="UserMailbox", name="Pat O'Neil", alias="pat.oneil",
                                     primary_smtp_address=f"pat.oneil@{DOMAIN}", object_id=pat["id"])
        for i, user in enumerate(users):
            s.create_recipient(recipient_type_details="UserMailbox", name=f"Person {i}", alias=f"person{i}",
                               primary_smtp_address=f"person{i}@{DOMAIN}", object_id=user["id"])
            s.add_auth_method(user_id=user["id"], method_type="password")
            if i % 3 == 0:
                s.add_auth_method(user_id=user["id"], method_type="microsoftAuthenticator",
                                  properties={"displayName": f"Phone {i}", "deviceTag": "SoftwareTokenActivated"})
            s.upsert_registration_details(user_id=user["id"], properties={
                "userPrincipalName": user["userPrincipalName"], "userDisplayName": user["displayName"],
                "isMfaRegistered": i % 3 == 0, "isMfaCapable": i % 3 == 0,
                "methodsRegistered": ["microsoftAuthenticatorPush"] if i % 3 == 0 else []})
        outer = s.create_group(display_name="All staff", security_enabled=True)
        inner = s.create_group(display_name="Inner team", security_enabled=True)
        s.add_member(group_id=outer["id"], member_id=inner["id"])
        s.add_member(group_id=outer["id"], member_id=users[0]["id"])
        for user in users[1:4]:
            s.add_member(group_id=inner["id"], member_id=user["id"])
        synced = s.create_group(display_name="Synced DL", mail_enabled=True, security_enabled=False,
                                mail=f"synced@{DOMAIN}", mail_nickname="synced", on_premises_sync_enabled=True)
        s.create_recipient(recipient_type_details="MailUniversalDistributionGroup", name="Synced DL",
                           alias="synced", primary_smtp_address=f"synced@{DOMAIN}", object_id=synced["id"],
                           is_dir_synced=True)
        s.add_outbound_connector(name="Outbound to on-premises", properties={"SmartHosts": ["mail.lab.example"],
                                                                             "RecipientDomains": ["lab.example"]})
        s.add_audit_event(activity_display_name="User registered security info", category="UserManagement",
                          target_resources=[{"id": users[0]["id"], "userPrincipalName": users[0]["userPrincipalName"],
                                             "type": "User"}],
                          initiated_by={"user": {"id": users[0]["id"], "userPrincipalName":
                                                 users[0]["userPrincipalName"]}})
        s.add_audit_event(activity_display_name="User started security info registration", category="UserManagement")
    return {"users": users, "pat": pat, "mailbox": mailbox, "outer": outer, "inner": inner, "synced": synced}


@pytest.fixture(scope="module")
def big_tenant(lab: Lab, people: dict[str, Any]) -> int:
    started = time.monotonic()
    with lab.store.transaction():
        for i in range(USERS):
            lab.store.create_user(user_principal_name=f"bulk{i:05d}@{DOMAIN}", display_name=f"Bulk {i:05d}")
    total = lab.store.count_objects(kind="user")
    print(f"seeded {USERS} users in {time.monotonic() - started:.2f} s ({total} users in the tenant)")
    return total


@pytest.fixture(autouse=True)
def _no_faults(lab: Lab) -> Iterator[None]:
    lab.store.clear_faults()
    yield
    lab.store.clear_faults()
    lab.store.update_settings(premium_licence=True, exchange_unknown_cmdlet="error")


# --------------------------------------------------------------------------------------------
# Graph


def test_graph_pages_over_ten_thousand_users(lab: Lab, big_tenant: int) -> None:
    with lab.graph() as client:
        started = time.monotonic()
        ids = [user.id for user in client.iter_users(select=["id", "userPrincipalName"])]
        elapsed = time.monotonic() - started
        assert len(ids) == big_tenant and len(set(ids)) == big_tenant
        assert client.count_users() == big_tenant
        bulk = list(client.iter_users(select=["id"], filter=graph.odata_startswith("userPrincipalName", "bulk0999"),
                                      page_size=3))
        assert len(bulk) == 10
    print(f"paged {len(ids)} users ({-(-len(ids) // 999)} pages of <=999) in {elapsed:.2f} s")


def test_a_burst_of_429s_is_ridden_out(lab: Lab, people: dict[str, Any], graph_retry_waits: list[float]) -> None:
    lab.store.set_faults(throttle=2, retry_after=1, scope="graph")
    with lab.graph(max_retries=4) as client:
        user = client.get_user(people["pat"]["userPrincipalName"])
        assert user.display_name == "Pat O'Neil"
        assert client.stats.throttled == 2
    assert graph_retry_waits == [1, 1]  # two Retry-After: 1 waits were honoured
    assert lab.store.settings().throttle_remaining == 0


def test_throttling_beyond_the_retries_is_throttled(lab: Lab, people: dict[str, Any],
                                                    graph_retry_waits: list[float]) -> None:
    lab.store.set_faults(throttle=5, retry_after=1, scope="graph")
    with lab.graph(max_retries=1) as client, pytest.raises(graph.Throttled) as caught:
        client.get_user(people["pat"]["id"])
    assert caught.value.status == 429 and caught.value.retry_after == 1.0 and caught.value.request_id
    assert graph_retry_waits == [1]


def test_bad_token_is_unauthorized(lab: Lab, people: dict[str, Any]) -> None:
    class Forged(graph.TokenSource):
        def acquire(self, scope: str, *, claims: str | None = None) -> graph.AccessToken:
            return graph.AccessToken(token="eyJhbGciOiJIUzI1NiJ9.eyJ0aWQiOiJ4In0.c2lnbmF0dXJl", expires_at=0)

    settings = graph.GraphSettings(credentials=lab.app, graph_url=lab.status.graph_url)
    with graph.EntraGraph(settings, token_source=Forged(lab.app)) as client, \
            pytest.raises(graph.Unauthorized) as caught:
        client.get_user(people["pat"]["id"])
    assert caught.value.status == 401 and caught.value.code == "InvalidAuthenticationToken"


def test_wrong_secret_is_authentication_failed_without_the_secret(lab: Lab) -> None:
    wrong = "lab~wrong-secret-value-123"
    credentials = graph.AppCredentials(tenant_id=lab.creds.tenant_id, client_id=lab.creds.client_id,
                                       client_secret=wrong, authority_host=lab.status.base_url,
                                       ca_file=str(lab.status.ca_file))
    with lab.graph(credentials=credentials) as client, pytest.raises(graph.AuthenticationFailed) as caught:
        client.count_users()
    assert "AADSTS7000215" in str(caught.value) and wrong not in str(caught.value)
    report = lab.graph(credentials=credentials).check()
    assert not report.ok and report.items[0].name == "token" and wrong not in str(report)


def test_certificate_credential_gets_a_token(lab: Lab) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dirops-portal")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    lab.store.add_app_certificate(client_id=lab.creds.client_id, certificate_pem=cert_pem)
    credentials = graph.AppCredentials(
        tenant_id=lab.creds.tenant_id, client_id=lab.creds.client_id, certificate_key=key_pem,
        certificate_thumbprint=cert.fingerprint(hashes.SHA1()).hex(), authority_host=lab.status.base_url,  # noqa: S303
        ca_file=str(lab.status.ca_file))
    report = lab.graph(credentials=credentials).check()
    assert report.ok, report.failures()
    assert report.details["tenant_id"] == lab.creds.tenant_id and "User.ReadWrite.All" in report.details["roles"]


def test_graph_reads_the_portal_needs(lab: Lab, people: dict[str, Any]) -> None:
    users = people["users"]
    with lab.graph() as client:
        assert client.check().ok
        user = client.get_user(users[2]["userPrincipalName"])
        assert user.id == users[2]["id"] and user.mail == users[2]["mail"]

        direct = {m.id for m in client.iter_group_members(people["outer"]["id"])}
        assert direct == {people["inner"]["id"], users[0]["id"]}
        transitive = list(client.iter_group_transitive_members(people["outer"]["id"]))
        assert {m.id for m in transitive} == direct | {u["id"] for u in users[1:4]}
        assert {m.kind for m in transitive} == {"user", "group"}

        groups = list(client.iter_groups(filter=graph.odata_eq("displayName", "Inner team")))
        assert [g.id for g in groups] == [people["inner"]["id"]]
        assert client.get_group(people["synced"]["id"]).on_premises_sync_enabled is True

        wb = client.group_writeback(people["synced"]["id"])
        assert wb.group_id == people["synced"]["id"] and wb.on_premises_group_type in (
            None, "universalDistributionGroup", "universalSecurityGroup", "universalMailEnabledSecurityGroup")

        rows = list(client.user_registration_details(filter=graph.odata_eq("isMfaRegistered", True)))
        assert {r.id for r in rows} == {u["id"] for i, u in enumerate(users) if i % 3 == 0}
        assert all(r.methods_registered == ("microsoftAuthenticatorPush",) for r in rows)

        audits = list(client.directory_audits(
            filter=graph.odata_eq("activityDisplayName", "User registered security info")))
        assert len(audits) == 1 and audits[0].targets[0].id == users[0]["id"]
        assert audits[0].initiated_by_upn == users[0]["userPrincipalName"]


def test_missing_premium_licence_is_licence_required(lab: Lab, people: dict[str, Any]) -> None:
    lab.store.update_settings(premium_licence=False)
    with lab.graph() as client, pytest.raises(graph.LicenceRequired) as caught:
        client.user_registration_details()
    assert caught.value.status == 403 and "premium" in (caught.value.server_message or "")


def test_malformed_filter_is_bad_request(lab: Lab) -> None:
    with lab.graph() as client, pytest.raises(graph.BadRequest) as caught:
        client.iter_users(filter="startswith(displayName,'x'")
    assert caught.value.status == 400 and "filter" in str(caught.value).lower()


def test_auth_methods_one_and_batched(lab: Lab, people: dict[str, Any]) -> None:
    users = people["users"]
    with lab.graph(batch_concurrency=2) as client:
        methods = client.user_auth_methods(users[0]["id"])
        assert sorted(m.method for m in methods) == ["microsoftAuthenticator", "password"]
        ids = [u["id"] for u in users] + ["00000000-0000-0000-0000-00000000dead"]
        started = time.monotonic()
        result = client.user_auth_methods_many(ids)
        print(f"auth methods of {len(ids)} users in {time.monotonic() - started:.2f} s via $batch")
    assert [len(result[u["id"]].methods) for u in users] == [2 if i % 3 == 0 else 1 for i in range(len(users))]
    missing = result["00000000-0000-0000-0000-00000000dead"]
    assert isinstance(missing.error, graph.NotFound)


def test_delete_group(lab: Lab) -> None:
    group = lab.store.create_group(display_name="Doomed", security_enabled=True)
    with lab.graph() as client:
        client.delete_group(group["id"])
        with pytest.raises(graph.NotFound):
            client.get_group(group["id"])


# --------------------------------------------------------------------------------------------
# Exchange Online


def test_exchange_check_and_reads(lab: Lab, people: dict[str, Any]) -> None:
    with lab.exchange() as client:
        report = client.check()
        assert report.ok and report.details["default_domain"] == DOMAIN
        assert client.get_recipient("Pat O'Neil").primary_smtp_address == f"pat.oneil@{DOMAIN}"
        [connector] = client.get_outbound_connectors()
        assert connector.smart_hosts == ("mail.lab.example",) and connector.connector_type == "OnPremises"


def test_exchange_pages_with_next_links(lab: Lab, people: dict[str, Any]) -> None:
    with lab.exchange(page_size=7) as client:
        names = [r.name for r in client.iter_recipients(recipient_type_details=["UserMailbox"])]
    assert len(names) == len(people["users"]) + 1 and len(set(names)) == len(names)


def test_exchange_errors_against_the_lab(lab: Lab, people: dict[str, Any]) -> None:
    with lab.exchange() as client:
        with pytest.raises(exchange.ObjectNotFound) as caught:
            client.get_distribution_group("No such group")
        assert caught.value.status == 404 and "couldn't be found" in caught.value.server_message
        assert caught.value.exception_type == "ManagementObjectNotFoundException" and caught.value.request_id

        with pytest.raises(exchange.UnknownCmdlet):
            client.invoke("Get-Nothing")
        lab.store.update_settings(exchange_unknown_cmdlet="blank403")
        with pytest.raises(exchange.UnknownCmdlet, match="empty 403"):
            client.invoke("Get-Nothing")

        with pytest.raises(exchange.InvalidParameter, match="Bogus"):
            client.invoke("Get-Recipient", Bogus="x")

        with pytest.raises(exchange.DirSyncedObject, match="on-premises"):
            client.set_distribution_group("Synced DL", changes={"ManagedBy": ["Pat O'Neil"]})

        with pytest.raises(exchange.AddressInUse):
            client.new_distribution_group(name="Clash", alias="clash", primary_smtp_address=f"synced@{DOMAIN}")


def test_exchange_throttling_is_retried(lab: Lab) -> None:
    waits: list[float] = []  # the connector's injected sleep: the waits it asked for, not slept
    lab.store.set_faults(throttle=2, retry_after=1, scope="exchange")
    with lab.exchange(sleep=waits.append) as client:
        assert client.get_accepted_domains()[0].domain_name == DOMAIN
    assert waits == [1, 1]  # two Retry-After: 1 waits were honoured
    assert lab.store.settings().throttle_remaining == 0
    waits.clear()
    lab.store.set_faults(throttle=10, retry_after=1, scope="exchange")
    with lab.exchange(max_retries=1, sleep=waits.append) as client, \
            pytest.raises(exchange.Throttled, match="still throttled after 1 retries"):
        client.get_accepted_domains()
    assert waits == [1]


def test_distribution_list_lifecycle(lab: Lab, people: dict[str, Any]) -> None:
    users = people["users"]
    with lab.exchange() as client:
        group = client.new_distribution_group(
            name="Sales O'Hara", alias="sales.ohara", primary_smtp_address=f"sales.ohara@{DOMAIN}",
            managed_by=["Pat O'Neil"], members=[users[5]["mail"]])
        assert group.managed_by == ("Pat O'Neil",) and group.is_dir_synced is False

        client.set_distribution_group("Sales O'Hara", changes={
            "HiddenFromAddressListsEnabled": True, "ModeratedBy": ["Pat O'Neil"], "ModerationEnabled": True,
            "EmailAddresses": exchange.MultiValuedUpdate(add=[f"smtp:sales.alt@{DOMAIN}"]),
            "CustomAttribute3": "migrated"})
        group = client.get_distribution_group("Sales O'Hara")
        assert group.hidden_from_address_lists_enabled and group.moderated_by == ("Pat O'Neil",)
        assert f"smtp:sales.alt@{DOMAIN}" in group.email_addresses and group.custom_attributes == {3: "migrated"}

        assert client.add_distribution_group_member("Sales O'Hara", member=users[6]["mail"]) is True
        assert client.add_distribution_group_member("Sales O'Hara", member=users[6]["mail"]) is False
        members = {m.primary_smtp_address for m in client.get_distribution_group_members("Sales O'Hara")}
        assert members == {users[5]["mail"], users[6]["mail"]}
        client.update_distribution_group_member("Sales O'Hara", members=[users[7]["mail"]])
        assert [m.primary_smtp_address for m in client.get_distribution_group_members("Sales O'Hara")] == [
            users[7]["mail"]]
        assert client.remove_distribution_group_member("Sales O'Hara", member=users[6]["mail"]) is False

        managed = client.find_recipients_with(attribute="ManagedBy", dn_or_id="Pat O'Neil")
        assert [(r.name, r.found_by) for r in managed] == [("Sales O'Hara", "Get-DistributionGroup")]
        pat_dn = people["mailbox"]["DistinguishedName"]
        moderated = client.find_recipients_with(attribute="ModeratedBy", dn_or_id=pat_dn)
        assert [r.name for r in moderated] == ["Sales O'Hara"]

        client.add_recipient_permission("Sales O'Hara", trustee="Pat O'Neil")
        [perm] = client.get_recipient_permission("Sales O'Hara")
        assert perm.access_rights == ("SendAs",) and perm.trustee

        client.remove_distribution_group("Sales O'Hara")
        with pytest.raises(exchange.ObjectNotFound):
            client.get_distribution_group("Sales O'Hara")


# --------------------------------------------------------------------------------------------
# Entra Connect and Exchange on-premises (PowerShell-shaped endpoints)


def test_entra_connect_reads_and_refuses_a_cycle_without_a_sync_engine(lab: Lab) -> None:
    lab.store.add_export_error(connector=f"{DOMAIN} - AAD", distinguished_name="CN=Jo,OU=Sync,DC=lab,DC=example",
                               error_code="AttributeValueMustBeUnique", message="proxyAddresses conflict",
                               attribute="proxyAddresses")
    lab.store.add_pending_export(connector=f"{DOMAIN} - AAD", distinguished_name="CN=Al,OU=Sync,DC=lab,DC=example",
                                 operation="Update", attributes={"mail": "al@lab.example"})
    with sync.EntraConnect(lab.powershell(lab.status.entra_connect_url)) as connect:
        status = connect.get_scheduler()
        assert status.sync_cycle_enabled and status.interval == dt.timedelta(minutes=30)
        assert connect.check().ok
        [error] = connect.export_errors()
        assert error.error_code == "AttributeValueMustBeUnique" and error.attribute == "proxyAddresses"
        [pending] = connect.pending_exports(connector=f"{DOMAIN} - AAD")
        assert pending.operation == "Update" and pending.attributes == {"mail": "al@lab.example"}
        assert connect.connector_run_status() == ()
        with pytest.raises(sync.SyncEngineUnavailable, match="sync engine is not attached"):
            connect.start_sync_cycle(policy="Delta")


def test_powershell_endpoint_refuses_a_wrong_password(lab: Lab) -> None:
    wrong = "not-the-password-42"
    with sync.EntraConnect(lab.powershell(lab.status.entra_connect_url, password=wrong)) as connect, \
            pytest.raises(sync.SyncAuthFailed) as caught:
        connect.get_scheduler()
    assert wrong not in str(caught.value)


def test_exchange_onprem_without_a_runner_reports_it(lab: Lab) -> None:
    report = exchange.ExchangeOnPrem(lab.powershell(lab.status.exchange_onprem_url)).check()
    assert not report.ok and "on-premises runner" in report.items[0].detail


# Runners for the second service (imported by that process as tests.integration.test_cloud_connectors:...).


SYNC_GATE = "DIROPS_TEST_SYNC_GATE"  # a file the test creates to let the running cycle end


def lab_sync_runner(policy: str) -> dict[str, Any]:
    # The cycle stays running until the test releases it, so a second Start-ADSyncSyncCycle meets it for
    # certain (no bet on how long a sleep outlasts the test's next call); the deadline ends a forgotten one.
    gate = Path(os.environ[SYNC_GATE])
    wait_for(gate.exists, timeout=30, interval=0.05, message="the test to release the sync cycle")
    gate.unlink()
    return {"Result": "success", "policy": policy}


def lab_onprem_runner(cmdlet: str, parameters: dict[str, Any]) -> dict[str, Any]:
    if cmdlet == "Get-AcceptedDomain":
        return {"output": [{"Name": "lab.example", "DomainName": "lab.example", "Default": True}]}
    if cmdlet == "New-DynamicDistributionGroup":
        return {"output": [{"Name": parameters["Name"], "Alias": parameters["Alias"],
                            "RecipientFilter": parameters["RecipientFilter"]}]}
    if cmdlet == "Get-DynamicDistributionGroup":
        return {"output": [], "errors": [{
            "exception_type": "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
            "message": f"The operation couldn't be performed because object '{parameters['Identity']}' couldn't be "
                       "found on 'dc1.lab.example'.", "fq_error_id": "5C5B2F1,GetDynamicDistributionGroup"}]}
    return {"output": [], "errors": [{"exception_type": "System.Management.Automation.CommandNotFoundException",
                                      "message": f"The term '{cmdlet}' is not recognized as a name of a cmdlet"}]}


@pytest.fixture(scope="module")
def wired_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    data_dir = tmp_path_factory.mktemp("lab-cloud-wired")
    module = "tests.integration.test_cloud_connectors"
    with pytest.MonkeyPatch.context() as env:  # the service process reads the gate's path at start
        env.setenv(SYNC_GATE, str(data_dir / "release-sync-cycle"))
        status, creds = _start(data_dir, PORT + 1, sync_runner=f"{module}:lab_sync_runner",
                               onprem_runner=f"{module}:lab_onprem_runner")
    store = CloudStore.open(data_dir=data_dir)
    try:
        yield Lab(status, creds, store, data_dir)
    finally:
        store.close()
        server.stop(data_dir=data_dir)


def test_a_sync_cycle_started_through_entra_connect(wired_lab: Lab) -> None:
    with sync.EntraConnect(wired_lab.powershell(wired_lab.status.entra_connect_url)) as connect:
        try:
            started = connect.start_sync_cycle(policy="Delta")
            assert started.result == "Success"
            with pytest.raises(sync.SyncAlreadyRunning, match="Sync is already running"):
                connect.start_sync_cycle(policy="Delta")
            assert connect.is_busy()
        finally:
            (wired_lab.data_dir / "release-sync-cycle").touch()  # the runner ends the cycle
        assert connect.wait_until_idle(timeout=20, poll=0.2)
        [run] = connect.run_history(count=1)
        assert run.run_profile_name == "Delta Synchronization" and run.details.get("policy") == "Delta"
        assert run.end is not None


def test_exchange_onprem_round_trip(wired_lab: Lab) -> None:
    with exchange.ExchangeOnPrem(wired_lab.powershell(wired_lab.status.exchange_onprem_url)) as onprem:
        assert onprem.check().ok
        flt = exchange.opath_eq("Department", "Sales & Marketing 'EMEA'") & exchange.opath_eq("RecipientType",
                                                                                               "UserMailbox")
        created = onprem.new_dynamic_distribution_group(name="Sales EMEA", alias="sales-emea", recipient_filter=flt)
        assert created.recipient_filter == str(flt) == (
            "(Department -eq 'Sales & Marketing ''EMEA''') -and (RecipientType -eq 'UserMailbox')")
        with pytest.raises(exchange.ObjectNotFound):
            onprem.get_dynamic_distribution_group("Nobody")
