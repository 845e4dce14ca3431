"""PowerShell-shaped endpoints: ``POST /powershell/entra-connect`` (the Entra Connect server's ADSync
cmdlets) and ``POST /powershell/exchange-onprem`` (handed to the injected on-premises runner)."""

from __future__ import annotations

import base64
import contextlib
import re
import threading
import time
from datetime import timedelta
from typing import Any

from .api import ApiError, ApiRequest, ApiResponse
from .cmdlets import _bind_parameters, _Cmdlet, _cmdlet, _truthy
from .errors import ExchangeError, _ps_error, _ps_result, command_not_found
from .store.common import iso, parse_datetime, utc_now


class ConnectMixin:
    """The PowerShell endpoints and the ADSync cmdlets; part of ``LabCloud``."""

    def _powershell_entry(self, req: ApiRequest) -> ApiResponse:
        match = re.fullmatch(r"/powershell/(entra-connect|exchange-onprem)", req.path)
        if not match:
            raise self._not_found_path(req)
        header = req.headers.get("authorization", "")
        user = password = ""
        if header.lower().startswith("basic "):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        # WinRM refuses bad credentials with a bare 401 before any PowerShell runs.
        if not user or not self.store.verify_client_secret(client_id=f"ps:{user}", client_secret=password):
            raise ApiError(ApiResponse(401, None, {"WWW-Authenticate": 'Basic realm="WSMAN"'}))
        self._apply_faults("powershell", req)
        try:
            payload = req.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("cmdlet"), str):
            return ApiResponse(400, {"output": [], "warnings": [], "errors": [_ps_error(
                "System.ArgumentException", 'The body must be {"cmdlet": "...", "parameters": {...}}.',
                "InvalidArgument", "")], "had_errors": True})
        cmdlet = payload["cmdlet"].strip()
        params = payload.get("parameters") or {}
        if match.group(1) == "exchange-onprem":
            return ApiResponse(200, self._onprem(cmdlet, params))
        return ApiResponse(200, self._entra_connect(cmdlet, params))

    def _onprem(self, cmdlet: str, params: dict[str, Any]) -> dict[str, Any]:
        if self.onprem_runner is None:
            return _ps_result([], [_ps_error("System.InvalidOperationException",
                                             "The lab cloud was started without an Exchange on-premises runner "
                                             "(create_app(onprem_runner=...)); on-premises cmdlets cannot run.",
                                             "InvalidOperation", cmdlet)])
        try:
            result = self.onprem_runner(cmdlet, params)
        except Exception as exc:  # noqa: BLE001 - the runner's failure becomes the cmdlet's error record
            return _ps_result([], [_ps_error(type(exc).__name__, str(exc), "NotSpecified", cmdlet)])
        return {"output": list(result.get("output", [])), "warnings": list(result.get("warnings", [])),
                "errors": list(result.get("errors", [])), "had_errors": bool(result.get("errors"))}

    def _entra_connect(self, cmdlet: str, params: dict[str, Any]) -> dict[str, Any]:
        spec = _ADSYNC_CMDLETS.get(cmdlet.lower())
        if spec is None:
            return _ps_result([], [_ps_error("System.Management.Automation.CommandNotFoundException",
                                             command_not_found(cmdlet), "ObjectNotFound", cmdlet,
                                             fq_error_id="CommandNotFoundException", target_name=cmdlet)])
        try:
            bound = _bind_parameters(spec, params)
            result = spec.handler(self, bound, None)
        except ExchangeError as error:
            return _ps_result([], [_ps_error(error.exception, error.message, "InvalidOperation", spec.name)])
        output, warnings = result if isinstance(result, tuple) else (result, [])
        return _ps_result(output, [], warnings)

    def _scheduler_view(self) -> dict[str, Any]:
        values = self.store.scheduler()
        runs = self.store.sync_runs(limit=1)
        running = bool(runs and runs[0]["state"] == "running")
        interval = _parse_timespan(values.get("CustomizedSyncCycleInterval") or values["AllowedSyncCycleInterval"])
        allowed = _parse_timespan(values["AllowedSyncCycleInterval"])
        effective = max(interval, allowed)
        last = parse_datetime(runs[0]["started"]) if runs else utc_now()
        return {
            "AllowedSyncCycleInterval": values["AllowedSyncCycleInterval"],
            "CurrentlyEffectiveSyncCycleInterval": _format_timespan(effective),
            "CustomizedSyncCycleInterval": values.get("CustomizedSyncCycleInterval"),
            "NextSyncCyclePolicyType": values["NextSyncCyclePolicyType"],
            "NextSyncCycleStartTimeInUTC": iso(last + effective),
            "PurgeRunHistoryInterval": values["PurgeRunHistoryInterval"],
            "SyncCycleEnabled": values["SyncCycleEnabled"],
            "MaintenanceEnabled": values["MaintenanceEnabled"],
            "StagingModeEnabled": values["StagingModeEnabled"],
            "SchedulerSuspended": values["SchedulerSuspended"],
            "SyncCycleInProgress": running,
        }

    def cmd_get_adsync_scheduler(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        return [self._scheduler_view()]

    def cmd_set_adsync_scheduler(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        changes: dict[str, Any] = {}
        warnings = []
        for key in ("SyncCycleEnabled", "MaintenanceEnabled", "SchedulerSuspended"):
            if key in bound:
                changes[key] = _truthy(bound[key])
        if "NextSyncCyclePolicyType" in bound:
            changes["NextSyncCyclePolicyType"] = _policy(bound["NextSyncCyclePolicyType"], "NextSyncCyclePolicyType")
        if "CustomizedSyncCycleInterval" in bound:
            raw = bound["CustomizedSyncCycleInterval"]
            changes["CustomizedSyncCycleInterval"] = _format_timespan(_parse_timespan(str(raw))) if raw else None
            # Get-ADSyncScheduler's documented warning after a new interval (Microsoft's scheduler doc).
            warnings.append("The sync interval you provided will only become effective after a sync cycle.")
        self.store.update_scheduler(**changes)
        return [], warnings

    def cmd_start_adsync_sync_cycle(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        policy = _policy(bound.get("PolicyType", "Delta"), "PolicyType")
        if self.sync_runner is None:
            raise ExchangeError("System.InvalidOperationException",
                                "The lab sync engine is not attached: start the lab cloud with a sync runner "
                                "(create_app(sync_runner=...) or --sync-runner module:function).")
        run_id = self.store.start_sync_run(policy=policy)
        if run_id is None:
            # Wording of the sync server when a cycle already runs (quoted in Entra Connect threads).
            raise ExchangeError("System.InvalidOperationException",
                                "Sync is already running. Cannot start a new run till this one completes.")
        if policy == "Initial":
            self.store.update_scheduler(NextSyncCyclePolicyType="Delta")
        if self.sync_in_background:
            thread = threading.Thread(target=self._run_sync, args=(run_id, policy), name=f"lab-sync-{run_id}",
                                      daemon=True)
            self._sync_threads = [t for t in self._sync_threads if t.is_alive()] + [thread]
            thread.start()
        else:
            self._run_sync(run_id, policy)
        return [{"Result": "Success"}]

    def _run_sync(self, run_id: int, policy: str) -> None:
        runner = self.sync_runner
        assert runner is not None
        try:
            result = runner(policy)
        except Exception as exc:  # noqa: BLE001 - a failed cycle is recorded, as the sync server does
            self.store.finish_sync_run(run_id=run_id, result=None, error=f"{type(exc).__name__}: {exc}")
            return
        self.store.finish_sync_run(run_id=run_id, result=result if isinstance(result, dict) else {"result": result})

    def wait_for_sync(self, timeout: float = 60.0) -> None:
        """Join background sync threads (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._sync_threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def cmd_get_adsync_connector_run_status(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        runs = self.store.sync_runs(limit=1)
        if not runs or runs[0]["state"] != "running":
            return []
        connectors = self.store.sync_connectors()
        return [{"RunState": "Busy", "ConnectorName": connectors[0]["Name"] if connectors else "lab"}]

    def cmd_get_adsync_connector(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        connectors = self.store.sync_connectors()
        if "Name" in bound:
            connectors = [c for c in connectors if c["Name"].lower() == str(bound["Name"]).lower()]
        if "Identifier" in bound:
            connectors = [c for c in connectors if c["Identifier"].lower() == str(bound["Identifier"]).lower()]
        return connectors

    def cmd_get_adsync_run_profile_result(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        limit = int(bound.get("NumberRequested") or 20)
        connectors = self.store.sync_connectors()
        rows = []
        for run in self.store.sync_runs(limit=limit):
            result = run["result"] or {}
            state = {"running": "in-progress", "failed": "stopped-extension-dll-exception"}.get(run["state"])
            rows.append({
                "RunHistoryId": run["id"],
                "ConnectorId": connectors[0]["Identifier"] if connectors else None,
                "ConnectorName": connectors[0]["Name"] if connectors else None,
                "RunProfileName": "Full Synchronization" if run["policy"] == "Initial" else "Delta Synchronization",
                "Result": result.get("Result") or state or "success",
                "StartDate": run["started"],
                "EndDate": run["finished"],
                "Details": result,
            })
        return rows

    def cmd_get_adsync_export_error(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        return self.store.list_export_errors(connector=bound.get("ConnectorName"))

    def cmd_get_adsync_global_settings(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        # The real object carries many parameters; the build number is the one the portal reads (admins
        # read it the same way: ``(Get-ADSyncGlobalSettings).Parameters`` named
        # ``Microsoft.Synchronize.ServerConfigurationVersion``).
        version = self.store.connect_version()
        return [{"InstanceId": "9a2a4b0c-6f0e-4c2a-8f4e-2b8f0e6c1d01", "SchemaXml": None, "Version": 1,
                 "Parameters": [
                     {"Name": "Microsoft.Synchronize.ServerConfigurationVersion", "Value": version,
                      "Scope": "Global", "DataType": "String"},
                     {"Name": "Microsoft.Synchronize.StagingMode",
                      "Value": str(bool(self.store.scheduler().get("StagingModeEnabled"))), "Scope": "Global",
                      "DataType": "Boolean"},
                 ]}]

    def cmd_get_adsync_pending_export(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        return self.store.list_pending_exports(connector=bound.get("ConnectorName"))




# ADSync module cmdlets (Get-/Set-ADSyncScheduler, Start-ADSyncSyncCycle, Get-ADSyncConnectorRunStatus,
# Get-ADSyncConnector, Get-ADSyncRunProfileResult are real; Get-ADSyncExportError and
# Get-ADSyncPendingExport are the lab's own: the real server shows those through csexport.exe and
# the Synchronization Service Manager, which no remote call reaches).
_ADSYNC_CMDLETS: dict[str, _Cmdlet] = dict([
    _cmdlet("Get-ADSyncScheduler", ConnectMixin.cmd_get_adsync_scheduler, ()),
    _cmdlet("Set-ADSyncScheduler", ConnectMixin.cmd_set_adsync_scheduler, (
        "SyncCycleEnabled", "NextSyncCyclePolicyType", "CustomizedSyncCycleInterval", "MaintenanceEnabled",
        "SchedulerSuspended", "PurgeRunHistoryInterval", "Force")),
    _cmdlet("Start-ADSyncSyncCycle", ConnectMixin.cmd_start_adsync_sync_cycle, ("PolicyType", "InteractiveMode")),
    _cmdlet("Get-ADSyncConnectorRunStatus", ConnectMixin.cmd_get_adsync_connector_run_status, ("ConnectorName",)),
    _cmdlet("Get-ADSyncConnector", ConnectMixin.cmd_get_adsync_connector, ("Name", "Identifier")),
    _cmdlet("Get-ADSyncRunProfileResult", ConnectMixin.cmd_get_adsync_run_profile_result,
            ("NumberRequested", "ConnectorId", "RunHistoryId", "RunStepDetails")),
    _cmdlet("Get-ADSyncGlobalSettings", ConnectMixin.cmd_get_adsync_global_settings, ()),
    _cmdlet("Get-ADSyncExportError", ConnectMixin.cmd_get_adsync_export_error, ("ConnectorName",)),
    _cmdlet("Get-ADSyncPendingExport", ConnectMixin.cmd_get_adsync_pending_export, ("ConnectorName",)),
])


def _policy(value: Any, parameter: str) -> str:
    text = str(value)
    for name in ("Delta", "Initial"):
        if text.lower() == name.lower():
            return name
    raise ExchangeError("System.Management.Automation.ParameterBindingException",
                        f"Cannot bind parameter '{parameter}'. Cannot convert value \"{text}\" to type "
                        "\"Microsoft.IdentityManagement.PowerShell.ObjectModel.SynchronizationPolicyType\". Error: "
                        f"\"Unable to match the identifier name {text} to a valid enumerator name. Specify one of the "
                        "following enumerator names and try again:\nUnspecified, Delta, Initial\"")


def _parse_timespan(text: str) -> timedelta:
    match = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})", text.strip())
    if not match:
        raise ExchangeError("System.Management.Automation.ParameterBindingException",
                            f"Cannot convert value \"{text}\" to type \"System.TimeSpan\".")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _format_timespan(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}.{text}" if days else text
