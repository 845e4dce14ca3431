"""EntraConnect: the portal's way to the Entra Connect (Azure AD Connect) sync server.

The ADSync cmdlets run through a :class:`~.exchange.PowerShellTransport`: pypsrp against the sync
server in production (``PsrpSettings(server=..., configuration_name="Microsoft.PowerShell")``), the
lab's ``/powershell/entra-connect`` endpoint in the lab. Cmdlet and parameters travel as data,
never as script text. No Django here.

Cmdlets used: ``Start-ADSyncSyncCycle``, ``Get-ADSyncScheduler``, ``Get-ADSyncConnectorRunStatus``,
``Get-ADSyncConnector`` and ``Get-ADSyncRunProfileResult`` (the ADSync module's own), and
``Get-ADSyncExportError`` / ``Get-ADSyncPendingExport``, which only the lab answers: a real sync
server shows export errors and pending exports through the Synchronization Service Manager and
``csexport.exe``, which no remote cmdlet reaches. Against a real server those two raise
:class:`UnknownCmdlet` with a message that says so.

Whether a DN is in the sync scope is asked of the sync server: ``Get-ADSyncConnector`` lists the AD
connector's partitions with their ``ContainerInclusionList``/``ContainerExclusionList`` (OU filtering),
see :meth:`EntraConnect.in_scope`. Attribute-based scoping filters in sync rules are not read; a server
that reports no inclusion list leaves the answer to the configured sync OUs (``registry.ad_layout()``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from .ad.dn import parse_dn
from .ad.types import CheckItem
from .exchange import (
    PowerShellError,
    PowerShellTransport,
    RemotingAuthFailed,
    RemotingOutcomeUnknown,
    RemotingUnreachable,
)
from .graph.types import CloudCheckReport

# --------------------------------------------------------------------------------------------
# errors


class SyncError(Exception):
    """Base of every error EntraConnect raises; keeps the cmdlet and the server's text."""

    def __init__(self, message: str, *, cmdlet: str | None = None, exception_type: str | None = None,
                 server_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cmdlet = cmdlet
        self.exception_type = exception_type
        self.server_message = server_message

    def __str__(self) -> str:
        return self.message + (f" [{self.exception_type}]" if self.exception_type else "")


class SyncAlreadyRunning(SyncError):
    """A sync cycle is already running; the server refuses a second one."""


class SyncEngineUnavailable(SyncError):
    """The server cannot run a cycle now (lab: no sync engine attached; scheduler disabled, ...)."""


class UnknownCmdlet(SyncError):
    """The cmdlet does not exist on this server (e.g. the lab-only export error cmdlets)."""


class InvalidParameter(SyncError, ValueError):
    """A parameter was refused, here or by the server's binder."""


class SyncUnreachable(SyncError):
    """The sync server's PowerShell endpoint could not be reached."""


class SyncAuthFailed(SyncError):
    """The sync server refused the credentials."""


class SyncOutcomeUnknown(SyncUnreachable):
    """The connection broke after a command was sent: it may or may not have run."""


class SyncCycleNotStarted(SyncError):
    """:func:`start_sync_cycle_when_idle` gave up: a cycle kept running, or the server stayed unreachable."""


def _sync_error(exc: PowerShellError) -> SyncError:
    if isinstance(exc, RemotingAuthFailed):
        return SyncAuthFailed(exc.message, cmdlet=exc.cmdlet)
    if isinstance(exc, RemotingOutcomeUnknown):
        return SyncOutcomeUnknown(exc.message, cmdlet=exc.cmdlet)
    if isinstance(exc, RemotingUnreachable):
        return SyncUnreachable(exc.message, cmdlet=exc.cmdlet)
    record = exc.records[0] if exc.records else None
    text = record.message if record else exc.message
    exception_type = record.exception_type if record else None
    cls: type[SyncError] = SyncError
    if exception_type == "CommandNotFoundException" or re.search(r"not recognized as (?:the )?name of a cmdlet", text):
        cls = UnknownCmdlet
    elif re.search(r"already running|is busy", text, re.I):
        cls = SyncAlreadyRunning
    elif re.search(r"sync engine is not attached|scheduler is (?:disabled|suspended)|SyncCycleEnabled", text, re.I):
        cls = SyncEngineUnavailable
    elif exception_type in ("ParameterBindingException", "ArgumentException") or "Cannot bind parameter" in text:
        cls = InvalidParameter
    return cls(f"{exc.cmdlet or 'cmdlet'} failed: {text}", cmdlet=exc.cmdlet, exception_type=exception_type,
               server_message=text)


# --------------------------------------------------------------------------------------------
# results


def _timespan(value: Any) -> timedelta | None:
    """A .NET TimeSpan as the lab sends it ("00:30:00", "7.00:00:00") or as pypsrp gives it ("PT30M")."""
    if value in (None, ""):
        return None
    if isinstance(value, timedelta):
        return value
    text = str(value).strip()
    match = re.fullmatch(r"(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?", text)
    if match:
        sign, days, hours, minutes, seconds, fraction = match.groups()
        span = timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(seconds),
                         microseconds=int((fraction or "0")[:6].ljust(6, "0")))
        return -span if sign else span
    match = re.fullmatch(r"(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", text)
    if match and any(match.groups()[1:]):
        sign, days, hours, minutes, seconds = match.groups()
        span = timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
                         seconds=float(seconds or 0))
        return -span if sign else span
    return None


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


@dataclass(frozen=True)
class SchedulerStatus:
    """``Get-ADSyncScheduler``: how and when the server syncs."""

    sync_cycle_enabled: bool | None
    staging_mode_enabled: bool | None
    next_policy_type: str | None
    interval: timedelta | None  # CurrentlyEffectiveSyncCycleInterval
    allowed_interval: timedelta | None
    customized_interval: timedelta | None
    next_start: datetime | None
    in_progress: bool | None
    maintenance_enabled: bool | None
    scheduler_suspended: bool | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SchedulerStatus:
        return cls(
            sync_cycle_enabled=_bool(doc.get("SyncCycleEnabled")),
            staging_mode_enabled=_bool(doc.get("StagingModeEnabled")),
            next_policy_type=_str(doc.get("NextSyncCyclePolicyType")),
            interval=_timespan(doc.get("CurrentlyEffectiveSyncCycleInterval")),
            allowed_interval=_timespan(doc.get("AllowedSyncCycleInterval")),
            customized_interval=_timespan(doc.get("CustomizedSyncCycleInterval")),
            next_start=_time(doc.get("NextSyncCycleStartTimeInUTC")),
            in_progress=_bool(doc.get("SyncCycleInProgress")),
            maintenance_enabled=_bool(doc.get("MaintenanceEnabled")),
            scheduler_suspended=_bool(doc.get("SchedulerSuspended")),
            raw=dict(doc),
        )


@dataclass(frozen=True)
class SyncCycleStart:
    policy: str
    result: str | None  # "Success" when the server accepted the request


@dataclass(frozen=True)
class ConnectorRunStatus:
    connector_name: str | None
    run_state: str | None  # "Busy" while a run profile executes


@dataclass(frozen=True)
class SyncConnector:
    name: str | None
    type: str | None  # AD, Extensible2 (Entra ID)
    identifier: str | None
    # OU filtering of an AD connector, from its partitions' ConnectorPartitionScope.
    inclusions: tuple[str, ...] = ()
    exclusions: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SyncConnector:
        inclusions: list[str] = []
        exclusions: list[str] = []
        for partition in doc.get("Partitions") or ():
            scope = partition.get("ConnectorPartitionScope") if isinstance(partition, Mapping) else None
            if isinstance(scope, Mapping):
                inclusions += [str(v) for v in scope.get("ContainerInclusionList") or ()]
                exclusions += [str(v) for v in scope.get("ContainerExclusionList") or ()]
        return cls(_str(doc.get("Name")), _str(doc.get("Type")), _str(doc.get("Identifier")), tuple(inclusions),
                   tuple(exclusions))


@dataclass(frozen=True)
class RunProfileResult:
    run_history_id: Any
    connector_name: str | None
    run_profile_name: str | None
    result: str | None
    start: datetime | None
    end: datetime | None
    details: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ExportError:
    """An object the sync server could not export (``DataValidationFailed``, ``AttributeValueMustBeUnique``...)."""

    connector: str | None
    distinguished_name: str | None
    error_code: str | None
    message: str | None
    attribute: str | None
    object_id: str | None
    source_anchor: str | None
    first_occurred: datetime | None
    last_occurred: datetime | None
    retry_count: int | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ExportError:
        retry = doc.get("RetryCount")
        return cls(
            connector=_str(doc.get("ConnectorName")), distinguished_name=_str(doc.get("DistinguishedName")),
            error_code=_str(doc.get("ErrorCode")), message=_str(doc.get("Message")),
            attribute=_str(doc.get("Attribute")), object_id=_str(doc.get("ObjectId")),
            source_anchor=_str(doc.get("SourceAnchor")), first_occurred=_time(doc.get("FirstOccurred")),
            last_occurred=_time(doc.get("LastOccurred")),
            retry_count=int(retry) if isinstance(retry, int | str) and str(retry).isdigit() else None,
            raw=dict(doc),
        )


@dataclass(frozen=True)
class PendingExport:
    """A change staged for export (what staging mode holds back)."""

    connector: str | None
    distinguished_name: str | None
    operation: str | None  # Add, Update, Delete, Replace
    attributes: Mapping[str, Any]
    object_id: str | None
    queued: datetime | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PendingExport:
        attributes = doc.get("Attributes")
        return cls(
            connector=_str(doc.get("ConnectorName")), distinguished_name=_str(doc.get("DistinguishedName")),
            operation=_str(doc.get("Operation")), attributes=dict(attributes) if isinstance(attributes, dict) else {},
            object_id=_str(doc.get("ObjectId")), queued=_time(doc.get("Queued")), raw=dict(doc),
        )


@dataclass(frozen=True)
class GroupWritebackConfig:
    """Group writeback as the wizard configured it: on or off, its OU, the display-name DN option."""

    enabled: bool | None  # Get-ADSyncAADCompanyFeature's GroupWritebackV2
    target_ou: str | None
    display_name_option: bool | None  # "Writeback Group Distinguished Name with cloud Display Name"


# --------------------------------------------------------------------------------------------
# the connector


class EntraConnect:
    """The Entra Connect sync server through a PowerShell transport. See the module docstring."""

    def __init__(self, transport: PowerShellTransport, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.transport = transport
        self._sleep = sleep

    def __enter__(self) -> EntraConnect:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def _run(self, cmdlet: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            return self.transport.run(cmdlet, dict(parameters or {}))
        except PowerShellError as exc:
            raise _sync_error(exc) from None
        except ValueError as exc:  # the transport's own parameter checks
            raise InvalidParameter(f"{cmdlet}: {exc}", cmdlet=cmdlet) from None

    def start_sync_cycle(self, *, policy: Literal["Delta", "Initial"] = "Delta") -> SyncCycleStart:
        """Ask for a sync cycle now (``Start-ADSyncSyncCycle -PolicyType``); returns once accepted.

        Raises :class:`SyncAlreadyRunning` when a cycle runs. The cycle itself runs on: use
        :meth:`wait_until_idle` to wait for it.
        """
        if policy not in ("Delta", "Initial"):
            raise InvalidParameter(f"policy must be Delta or Initial, not {policy!r}", cmdlet="Start-ADSyncSyncCycle")
        output = self._run("Start-ADSyncSyncCycle", {"PolicyType": policy})
        result = _str(output[0].get("Result")) if output else None
        return SyncCycleStart(policy=policy, result=result)

    def get_scheduler(self) -> SchedulerStatus:
        output = self._run("Get-ADSyncScheduler")
        if not output:
            raise SyncError("Get-ADSyncScheduler returned nothing", cmdlet="Get-ADSyncScheduler")
        return SchedulerStatus.from_dict(output[0])

    def connector_run_status(self) -> tuple[ConnectorRunStatus, ...]:
        """Connectors running a profile right now (empty when the server is idle)."""
        return tuple(ConnectorRunStatus(_str(d.get("ConnectorName")), _str(d.get("RunState")))
                     for d in self._run("Get-ADSyncConnectorRunStatus"))

    def server_version(self) -> str | None:
        """The Entra Connect Sync build (``2.5.79.0``): ``(Get-ADSyncGlobalSettings).Parameters`` named
        ``Microsoft.Synchronize.ServerConfigurationVersion``; None when the server does not say."""
        for settings in self._run("Get-ADSyncGlobalSettings"):
            for parameter in settings.get("Parameters") or []:
                if isinstance(parameter, Mapping) and \
                        parameter.get("Name") == "Microsoft.Synchronize.ServerConfigurationVersion":
                    return _str(parameter.get("Value"))
        return None

    def connectors(self) -> list[SyncConnector]:
        return [SyncConnector.from_dict(d) for d in self._run("Get-ADSyncConnector")]

    def in_scope(self, dn: str) -> bool | None:
        """Whether the AD connector's OU filtering includes ``dn``; None when the server reports no
        inclusion list (the caller must then fall back to its configured sync OUs)."""
        ad_connectors = [c for c in self.connectors() if (c.type or "").upper() == "AD" and c.inclusions]
        if not ad_connectors:
            return None
        target = parse_dn(dn)
        for connector in ad_connectors:
            if any(target.is_within(ou) for ou in connector.exclusions):
                continue
            if any(target.is_within(ou) for ou in connector.inclusions):
                return True
        return False

    def run_history(self, *, count: int = 10) -> list[RunProfileResult]:
        if not isinstance(count, int) or not 1 <= count <= 1000:
            raise InvalidParameter("count must be between 1 and 1000", cmdlet="Get-ADSyncRunProfileResult")
        return [
            RunProfileResult(
                run_history_id=d.get("RunHistoryId"), connector_name=_str(d.get("ConnectorName")),
                run_profile_name=_str(d.get("RunProfileName")), result=_str(d.get("Result")),
                start=_time(d.get("StartDate")), end=_time(d.get("EndDate")),
                details=d.get("Details") if isinstance(d.get("Details"), dict) else {},
            )
            for d in self._run("Get-ADSyncRunProfileResult", {"NumberRequested": count})
        ]

    def export_errors(self, *, connector: str | None = None) -> list[ExportError]:
        """Export errors per object (lab cmdlet; see the module docstring for real servers)."""
        params = {"ConnectorName": connector} if connector else {}
        try:
            return [ExportError.from_dict(d) for d in self._run("Get-ADSyncExportError", params)]
        except UnknownCmdlet as exc:
            raise UnknownCmdlet(
                "this sync server has no Get-ADSyncExportError (only the lab answers it): read export errors in "
                "the Synchronization Service Manager or with csexport.exe", cmdlet=exc.cmdlet,
                exception_type=exc.exception_type, server_message=exc.server_message) from None

    def pending_exports(self, *, connector: str | None = None) -> list[PendingExport]:
        """Changes staged for export (lab cmdlet; see the module docstring for real servers)."""
        params = {"ConnectorName": connector} if connector else {}
        try:
            return [PendingExport.from_dict(d) for d in self._run("Get-ADSyncPendingExport", params)]
        except UnknownCmdlet as exc:
            raise UnknownCmdlet(
                "this sync server has no Get-ADSyncPendingExport (only the lab answers it): export the pending "
                "changes with csexport.exe", cmdlet=exc.cmdlet, exception_type=exc.exception_type,
                server_message=exc.server_message) from None

    def group_writeback_configuration(self) -> GroupWritebackConfig:
        """Group writeback's settings. ``Get-ADSyncAADCompanyFeature`` (the ADSync module's) says whether it
        is on; the OU and the display-name option come from ``Get-ADSyncGroupWritebackConfiguration``, which
        only the lab answers (a real server shows them on the wizard's group writeback page): against a real
        server they are None and the caller has a person check them."""
        features = self._run("Get-ADSyncAADCompanyFeature")
        enabled = _bool(features[0].get("GroupWritebackV2")) if features else None
        try:
            output = self._run("Get-ADSyncGroupWritebackConfiguration")
        except UnknownCmdlet:
            return GroupWritebackConfig(enabled=enabled, target_ou=None, display_name_option=None)
        doc = output[0] if output else {}
        return GroupWritebackConfig(enabled=enabled if enabled is not None else _bool(doc.get("Enabled")),
                                    target_ou=_str(doc.get("TargetOU")),
                                    display_name_option=_bool(doc.get("WritebackGroupDnWithDisplayName")))

    def is_busy(self) -> bool:
        if self.connector_run_status():
            return True
        return bool(self.get_scheduler().in_progress)

    def wait_until_idle(self, *, timeout: float = 600.0, poll: float = 2.0) -> bool:
        """Poll until no cycle runs; False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_busy():
                return True
            if time.monotonic() >= deadline:
                return False
            self._sleep(min(poll, max(0.0, deadline - time.monotonic())))

    def check(self) -> CloudCheckReport:
        """The endpoint answers; scheduler state (sync enabled, staging mode, interval); never raises."""
        items: list[CheckItem] = []
        details: dict[str, Any] = {}
        try:
            scheduler = self.get_scheduler()
        except SyncError as exc:
            items.append(CheckItem("Get-ADSyncScheduler", False, str(exc)))
            return CloudCheckReport(False, "Entra Connect", self.transport.endpoint, tuple(items), details)
        interval = scheduler.interval
        details.update({"sync_cycle_enabled": scheduler.sync_cycle_enabled,
                        "staging_mode_enabled": scheduler.staging_mode_enabled,
                        "next_policy_type": scheduler.next_policy_type,
                        "interval_minutes": interval.total_seconds() / 60 if interval else None})
        items.append(CheckItem("Get-ADSyncScheduler", True,
                               f"next cycle {scheduler.next_policy_type or '?'}"
                               + (f", every {interval}" if interval else "")))
        items.append(CheckItem("sync enabled", bool(scheduler.sync_cycle_enabled),
                               "the scheduler runs cycles" if scheduler.sync_cycle_enabled
                               else "SyncCycleEnabled is False: no cycle runs on its own"))
        items.append(CheckItem("staging mode", not scheduler.staging_mode_enabled,
                               "exports to Entra ID are on" if not scheduler.staging_mode_enabled
                               else "the server is in staging mode: it imports and syncs but exports nothing"))
        try:
            connectors = self.connectors()
            details["connectors"] = [c.name for c in connectors]
            items.append(CheckItem("Get-ADSyncConnector", True, ", ".join(c.name or "?" for c in connectors)
                                   or "no connectors"))
        except SyncError as exc:
            items.append(CheckItem("Get-ADSyncConnector", False, str(exc)))
        return CloudCheckReport(all(i.ok for i in items), "Entra Connect", self.transport.endpoint, tuple(items),
                                details)


# --------------------------------------------------------------------------------------------
# starting a cycle when another one runs


def start_sync_cycle_when_idle(sync: EntraConnect, *, policy: Literal["Delta", "Initial"] = "Delta",
                               log: Callable[[str, str], None], why: str | None = None, attempts: int = 2,
                               wait_timeout: float = 600.0, poll: float = 2.0, retry_seconds: float = 30.0,
                               before_retry: Callable[[], None] = lambda: None,
                               sleep: Callable[[float], None] = time.sleep) -> SyncCycleStart:
    """Start a cycle; one already running is waited for (up to ``wait_timeout`` each time), an unreachable
    server is tried again after ``retry_seconds``, ``attempts`` starts at most. Whoever asked for a cycle
    wants one that begins after their change: the running cycle may have read the directory before it, so
    ours follows it rather than being dropped. ``log(level, message)`` gets each line (a job's log, a
    command's output); ``before_retry`` runs before each wait (a job's cancellation point). Raises
    :class:`SyncCycleNotStarted` once the attempts are used; other :class:`SyncError` (credentials refused,
    a parameter the server rejects) at once, as no retry mends them."""
    reason, timed_out = "", False
    for attempt in range(1, attempts + 1):
        try:
            started = sync.start_sync_cycle(policy=policy)
        except SyncAlreadyRunning:
            if attempt == attempts:  # no start follows, so waiting would only delay the failure
                reason = reason if timed_out else "a sync cycle was running"
                break
            log("info", f"A sync cycle is already running; waiting for it to finish, then starting this one "
                        f"({attempt}/{attempts}).")
            before_retry()
            timed_out = not sync.wait_until_idle(timeout=wait_timeout, poll=poll)
            if timed_out:
                reason = "the running sync cycle did not finish within " + (
                    f"{wait_timeout / 60:g} minutes" if wait_timeout >= 60 else f"{wait_timeout:g} seconds")
        except (SyncUnreachable, SyncEngineUnavailable) as exc:
            reason, timed_out = str(exc), False
            log("warning", f"Sync server: {exc} ({attempt}/{attempts}).")
            if attempt < attempts:
                before_retry()
                sleep(retry_seconds)
        else:
            log("info", f"Start-ADSyncSyncCycle -PolicyType {policy}: started" + (f" ({why})." if why else "."))
            return started
    raise SyncCycleNotStarted(f"could not start a {policy} sync cycle after {attempts} attempt(s): {reason}",
                              cmdlet="Start-ADSyncSyncCycle")


__all__ = [
    "ConnectorRunStatus", "EntraConnect", "ExportError", "GroupWritebackConfig", "InvalidParameter", "PendingExport",
    "RunProfileResult",
    "SchedulerStatus", "SyncAlreadyRunning", "SyncAuthFailed", "SyncConnector", "SyncCycleNotStarted", "SyncCycleStart",
    "SyncEngineUnavailable", "SyncError", "SyncOutcomeUnknown", "SyncUnreachable", "UnknownCmdlet",
    "start_sync_cycle_when_idle",
]
