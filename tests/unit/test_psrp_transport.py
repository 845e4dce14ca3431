"""The PSRP transport at pypsrp's own API, without a network.

pypsrp's real ``PowerShell`` class builds the pipeline; only the runspace pool (the connection) and
``PowerShell.invoke`` (the round trip) are replaced, so the tests see exactly the ``Command`` and
``CommandParameter`` objects pypsrp would serialize and send.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from pypsrp.complex_objects import ErrorRecord, GenericComplexObject, ObjectMeta
from pypsrp.powershell import PowerShell
from pypsrp.serializer import Serializer

from portal.connectors import exchange, sync
from portal.connectors.exchange import (
    SWITCH,
    CmdletFailed,
    ExchangeOnPrem,
    MultiValuedUpdate,
    PsrpSettings,
    PsrpTransport,
    opath_eq,
)

PASSWORD = "Pa55-w0rd-never-shown;$(whoami)"


class FakePool:
    """What PowerShell needs from a RunspacePool before invoke: the negotiated protocol version."""

    protocol_version = "2.3"

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Remote:
    """Stands in for the server: records each pipeline and answers with output / error records."""

    def __init__(self) -> None:
        self.pipelines: list[PowerShell] = []
        self.pools: list[FakePool] = []
        self.output: list[Any] = []
        self.errors: list[Any] = []
        self.fail_state = False
        self.raise_on_invoke: list[BaseException] = []


@pytest.fixture
def remote(monkeypatch) -> Remote:
    state = Remote()

    def fake_open(self: PsrpTransport) -> FakePool:
        pool = FakePool()
        state.pools.append(pool)
        return pool

    def fake_invoke(self: PowerShell, *args: Any, **kwargs: Any) -> list[Any]:
        state.pipelines.append(self)
        if state.raise_on_invoke:
            raise state.raise_on_invoke.pop(0)
        self.streams.error.extend(state.errors)
        self.had_errors = bool(state.errors) or state.fail_state
        return list(state.output)

    monkeypatch.setattr(PsrpTransport, "_open", fake_open)
    monkeypatch.setattr(PowerShell, "invoke", fake_invoke)
    return state


def transport() -> PsrpTransport:
    return PsrpTransport(PsrpSettings.exchange("ex1.lab.example", username="LAB\\svc-portal", password=PASSWORD,
                                               auth="ntlm"))


def _args(ps: PowerShell) -> list[tuple[str | None, Any]]:
    return [(arg.name, arg.value) for arg in ps.commands[0].args]


def _serialized(ps: PowerShell) -> str:
    command = ps.commands[0]
    return ET.tostring(Serializer().serialize(command, ObjectMeta("Obj", object=type(command)))).decode()


def test_cmdlet_and_each_parameter_go_through_add_cmdlet_and_add_parameter(remote: Remote) -> None:
    hostile = "O'Brien\"; Remove-Mailbox -Identity * -Confirm:$false; $(Get-Secret) `n"
    transport().run("Set-DistributionGroup", {"Identity": hostile, "DisplayName": "Sales & Marketing",
                                              "Members": ["a@contoso.com", "b@contoso.com"], "MaxSendSize": 10})

    [ps] = remote.pipelines
    [command] = ps.commands
    assert command.cmd == "Set-DistributionGroup"
    assert command.is_script is False
    assert _args(ps) == [("Identity", hostile), ("DisplayName", "Sales & Marketing"),
                         ("Members", ["a@contoso.com", "b@contoso.com"]), ("MaxSendSize", 10)]
    xml = _serialized(ps)
    # What goes on the wire: one command, not a script, the hostile text only as a parameter value.
    assert '<S N="Cmd">Set-DistributionGroup</S><B N="IsScript">false</B>' in xml
    assert '<S N="N">Identity</S>' in xml
    assert xml.count("Remove-Mailbox") == 1 and "<S N=\"V\">O'Brien" in xml


def test_switch_and_boolean_parameters(remote: Remote) -> None:
    transport().run("New-DistributionGroup", {"Name": "x", "IgnoreNamingPolicy": SWITCH, "Confirm": False,
                                              "RequireSenderAuthenticationEnabled": True})

    [ps] = remote.pipelines
    assert _args(ps) == [("Name", "x"), ("IgnoreNamingPolicy", None), ("Confirm", False),
                         ("RequireSenderAuthenticationEnabled", True)]
    xml = _serialized(ps)
    assert '<S N="N">IgnoreNamingPolicy</S><Nil N="V" />' in xml  # a switch: a name without a value
    assert '<S N="N">Confirm</S><B N="V">false</B>' in xml


def test_hashtable_and_filter_values(remote: Remote) -> None:
    transport().run("Set-MailContact", {
        "Identity": "c1",
        "EmailAddresses": MultiValuedUpdate(add=["smtp:new@contoso.com"], remove=["smtp:old@contoso.com"]),
    })
    transport().run("Get-Recipient", {"Filter": opath_eq("ManagedBy", "CN=O'Hara,OU=Users,DC=lab")})

    first, second = remote.pipelines
    assert _args(first)[1] == ("EmailAddresses", {"Add": ["smtp:new@contoso.com"], "Remove": ["smtp:old@contoso.com"]})
    assert _args(second) == [("Filter", "ManagedBy -eq 'CN=O''Hara,OU=Users,DC=lab'")]


@pytest.mark.parametrize("cmdlet, params", [
    ("Get-Mailbox; Remove-Mailbox", {}),
    ("Get-Mailbox | Remove-Mailbox", {}),
    ("& (Get-Mailbox)", {}),
    ("Get-Mailbox", {"Identity -Confirm:$false": "x"}),
    ("Get-Mailbox", {"Identity": {"nested": "dict"}}),
    ("Get-Mailbox", {"Identity": "nul\x00byte"}),
    ("Get-Mailbox", {"Identity": None}),  # PSRP would turn None into a switch
])
def test_names_and_values_are_checked_before_anything_is_sent(remote: Remote, cmdlet: str, params: dict) -> None:
    with pytest.raises(exchange.InvalidParameter):
        transport().run(cmdlet, params)
    assert remote.pipelines == [] and remote.pools == []


def _error_record(message: str, exception_type: str, fq: str) -> ErrorRecord:
    record = ErrorRecord()
    record._to_string = message
    exc = GenericComplexObject()
    exc.types = [f"Deserialized.{exception_type}", "Deserialized.System.Exception", "Deserialized.System.Object"]
    record.exception = exc
    record.fq_error = fq
    record.reason = exception_type.rsplit(".", 1)[-1]
    record.target_name = "nobody"
    return record


def test_error_stream_becomes_an_exception_with_the_records(remote: Remote) -> None:
    remote.errors = [_error_record(
        "The operation couldn't be performed because object 'nobody' couldn't be found on 'dc1.lab.example'.",
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
        "[Server=EX1,RequestId=1] 5C5B2F1,Microsoft.Exchange.Management.RecipientTasks.GetRecipient")]

    with pytest.raises(CmdletFailed) as caught:
        transport().run("Get-Recipient", {"Identity": "nobody"})

    record = caught.value.records[0]
    assert record.exception_type == "ManagementObjectNotFoundException"
    assert record.fully_qualified_error_id.endswith("GetRecipient")
    assert "couldn't be found" in str(caught.value)

    # ExchangeOnPrem turns the same failure into its typed error.
    with pytest.raises(exchange.ObjectNotFound):
        ExchangeOnPrem(transport()).get_dynamic_distribution_group("nobody")


def test_failed_pipeline_without_records_still_raises(remote: Remote) -> None:
    remote.fail_state = True
    with pytest.raises(CmdletFailed, match="Update-Recipient failed"):
        transport().run("Update-Recipient", {"Identity": "x"})


def test_output_objects_become_dicts(remote: Remote) -> None:
    enum = GenericComplexObject()
    enum.types = ["Deserialized.Microsoft.Exchange.Data.Directory.Recipient.RecipientTypeDetails", "System.Enum"]
    enum.to_string = "MailUniversalDistributionGroup"
    enum.property_sets = [1]
    ad_id = GenericComplexObject()
    ad_id.types = ["Deserialized.Microsoft.Exchange.Data.Directory.ADObjectId", "Deserialized.System.Object"]
    ad_id.to_string = "lab.example/Users/Admin"
    ad_id.adapted_properties = {"DistinguishedName": "CN=Admin,CN=Users,DC=lab,DC=example"}
    multi = GenericComplexObject()
    multi.types = ["Deserialized.Microsoft.Exchange.Data.MultiValuedProperty`1[[System.String]]"]
    multi.property_sets = [["SMTP:sales@lab.example", "smtp:s@lab.example"]]
    group = GenericComplexObject()
    group.types = ["Deserialized.Microsoft.Exchange.Data.Directory.Management.DistributionGroup"]
    group.adapted_properties = {"Name": "Sales", "RecipientTypeDetails": enum, "ManagedBy": [ad_id],
                                "EmailAddresses": multi, "HiddenFromAddressListsEnabled": False}
    remote.output = [group, "plain text"]

    result = transport().run("Get-DistributionGroup", {"Identity": "Sales"})

    assert result[0] == {"Name": "Sales", "RecipientTypeDetails": "MailUniversalDistributionGroup",
                         "ManagedBy": ["lab.example/Users/Admin"],
                         "EmailAddresses": ["SMTP:sales@lab.example", "smtp:s@lab.example"],
                         "HiddenFromAddressListsEnabled": False}
    assert result[1] == {"Value": "plain text"}


def test_a_read_is_retried_once_on_a_fresh_pool_a_write_is_not(remote: Remote) -> None:
    from requests.exceptions import ConnectionError as RequestsConnectionError

    t = transport()
    remote.raise_on_invoke = [RequestsConnectionError("connection reset")]
    assert t.run("Get-Recipient", {"Identity": "x"}) == []
    assert len(remote.pools) == 2 and remote.pools[0].closed

    remote.raise_on_invoke = [RequestsConnectionError("connection reset")]
    with pytest.raises(exchange.RemotingOutcomeUnknown, match="re-read before retrying"):
        t.run("Set-MailContact", {"Identity": "x", "DisplayName": "y"})
    assert len(remote.pipelines) == 3  # the write went out once


def test_secrets_never_appear_in_exception_text(remote: Remote, monkeypatch) -> None:
    from pypsrp.exceptions import AuthenticationError, WinRMTransportError

    def open_fails(self: PsrpTransport) -> FakePool:
        raise AuthenticationError(f"NTLM failed for LAB\\svc-portal with password {PASSWORD}")

    monkeypatch.setattr(PsrpTransport, "_open", open_fails)
    with pytest.raises(exchange.RemotingAuthFailed) as caught:
        transport().run("Get-Recipient", {"Identity": "x"})
    assert PASSWORD not in str(caught.value) and "***" in str(caught.value)
    assert PASSWORD not in repr(caught.value.args)

    monkeypatch.undo()
    monkeypatch.setattr(PsrpTransport, "_open", lambda self: FakePool())
    monkeypatch.setattr(PowerShell, "invoke", lambda self, *a, **k: (_ for _ in ()).throw(
        WinRMTransportError("http", 500, f"bad gateway echoing {PASSWORD}")))
    with pytest.raises(exchange.RemotingOutcomeUnknown) as caught:
        transport().run("Set-MailContact", {"Identity": "x", "DisplayName": "y"})
    assert PASSWORD not in str(caught.value)

    def invoke_with_error(self: PowerShell, *a: Any, **k: Any) -> list[Any]:
        self.streams.error.append(_error_record(f"access denied for {PASSWORD}", "System.UnauthorizedAccessException",
                                                "x"))
        return []

    monkeypatch.setattr(PowerShell, "invoke", invoke_with_error)
    with pytest.raises(CmdletFailed) as caught:
        transport().run("Get-Recipient", {"Identity": "x"})
    assert PASSWORD not in str(caught.value) and PASSWORD not in caught.value.records[0].message
    assert PASSWORD not in repr(PsrpSettings.exchange("ex1", username="u", password=PASSWORD, auth="ntlm"))


def test_exchange_settings_reach_wsman_and_the_runspace_pool(monkeypatch, tmp_path) -> None:
    import pypsrp.powershell
    import pypsrp.wsman

    seen: dict[str, Any] = {}

    class FakeWSMan:
        def __init__(self, server: str, **kwargs: Any) -> None:
            seen["server"], seen["wsman"] = server, kwargs

    class FakeRunspacePool(FakePool):
        def __init__(self, connection: Any, **kwargs: Any) -> None:
            super().__init__()
            seen["pool"] = kwargs

        def open(self) -> None:
            seen["opened"] = True

    monkeypatch.setattr(pypsrp.wsman, "WSMan", FakeWSMan)
    monkeypatch.setattr(pypsrp.powershell, "RunspacePool", FakeRunspacePool)
    monkeypatch.setattr(PowerShell, "invoke", lambda self, *a, **k: [])
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    t = PsrpTransport(PsrpSettings.exchange("ex1.lab.example", auth="kerberos", ca_file=str(ca)))

    t.run("Get-AcceptedDomain", {})

    assert seen["server"] == "ex1.lab.example"
    assert seen["wsman"]["path"] == "PowerShell" and seen["wsman"]["port"] == 443 and seen["wsman"]["ssl"] is True
    assert seen["wsman"]["auth"] == "kerberos"
    assert seen["wsman"]["cert_validation"] == str(ca)  # a path: REQUESTS_CA_BUNDLE cannot override it
    assert seen["pool"] == {"configuration_name": "Microsoft.Exchange"} and seen["opened"]
    assert t.endpoint == "https://ex1.lab.example:443/PowerShell"


def test_entra_connect_over_psrp_maps_pypsrp_shapes(remote: Remote) -> None:
    scheduler = GenericComplexObject()
    scheduler.types = ["Deserialized.Microsoft.IdentityManagement.PowerShell.ObjectModel.SchedulerSettings"]
    scheduler.adapted_properties = {"CurrentlyEffectiveSyncCycleInterval": "PT30M", "SyncCycleEnabled": True,
                                    "StagingModeEnabled": False, "NextSyncCyclePolicyType": "Delta"}
    remote.output = [scheduler]
    connect = sync.EntraConnect(PsrpTransport(PsrpSettings(server="aadc1.lab.example", auth="kerberos")))

    status = connect.get_scheduler()

    assert status.interval is not None and status.interval.total_seconds() == 1800
    assert status.sync_cycle_enabled is True and status.next_policy_type == "Delta"
    assert remote.pipelines[0].commands[0].cmd == "Get-ADSyncScheduler"

    remote.output = []
    remote.errors = [_error_record("Sync is already running. Cannot start a new run till this one completes.",
                                   "System.InvalidOperationException", "System.InvalidOperationException")]
    with pytest.raises(sync.SyncAlreadyRunning):
        connect.start_sync_cycle(policy="Delta")
    assert _args(remote.pipelines[-1]) == [("PolicyType", "Delta")]
