"""Entry points: a cycle run and recorded, the sync server's runner and its scheduler."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from portal.connectors import ad
from portal.connectors.ad import ActiveDirectory
from portal.lab import layout
from portal.lab.cloud.store import CloudStore
from portal.lab.cloud.store.common import parse_datetime, utc_now

from .constants import OPTIONS_FILE, Policy
from .cycle import _Cycle
from .model import CycleResult, SyncAlreadyRunning, SyncOptions
from .state import _CycleLock


def _policy(value: str) -> Policy:
    lowered = str(value).strip().lower()
    if lowered == "delta":
        return "Delta"
    if lowered == "initial":
        return "Initial"
    raise ValueError(f"PolicyType must be Delta or Initial, not {value!r}")


def run_cycle(
    *,
    directory: ActiveDirectory,
    store: CloudStore,
    base_dn: str,
    policy: Policy = "Delta",
    options: SyncOptions | None = None,
) -> CycleResult:
    """Run one sync cycle and record it in the run history; raises :class:`SyncAlreadyRunning` when a
    cycle already runs (in this process or another one on the same lab cloud)."""
    with _CycleLock(store):
        return _run_recorded(directory=directory, store=store, base_dn=base_dn, policy=_policy(policy),
                             options=options or SyncOptions(), run_id=None)


def _publish_connector_scope(*, store: CloudStore, base_dn: str) -> None:
    """What Get-ADSyncConnector shows of the AD connector: its partition and the OUs it includes,
    as the real server reports its ContainerInclusionList (the portal asks it where the scope ends)."""
    connectors = [dict(c) for c in store.sync_connectors()]
    for connector in connectors:
        if connector.get("Type") == "AD":
            connector["Partitions"] = [{
                "Name": base_dn, "DN": base_dn,
                "ConnectorPartitionScope": {"ContainerInclusionList": list(layout.sync_ous(base_dn)),
                                            "ContainerExclusionList": []},
            }]
    store.set_sync_connectors(connectors=connectors)


def _run_recorded(*, directory: ActiveDirectory, store: CloudStore, base_dn: str, policy: Policy,
                  options: SyncOptions, run_id: int | None) -> CycleResult:
    """The cycle under the lock; ``run_id`` given means the caller recorded the run and finishes it."""
    own = run_id is None
    _publish_connector_scope(store=store, base_dn=base_dn)
    if own:
        run_id = store.start_sync_run(policy=policy)
        if run_id is None:
            raise SyncAlreadyRunning()
    try:
        result = _Cycle(directory=directory, store=store, base_dn=base_dn, policy=policy, options=options,
                        run_id=run_id).run()
    except Exception as exc:
        if own:
            store.finish_sync_run(run_id=run_id, result=None, error=f"{type(exc).__name__}: {exc}")
        raise
    if policy == "Initial" and store.scheduler().get("NextSyncCyclePolicyType") == "Initial":
        store.update_scheduler(NextSyncCyclePolicyType="Delta")
    if own:
        store.finish_sync_run(run_id=run_id, result=result.as_dict())
    return result


@dataclass(frozen=True)
class _RunnerConfig:
    directory: Callable[[], ActiveDirectory]
    store: Callable[[], CloudStore]
    base_dn: str
    options: Callable[[], SyncOptions]


_runner: _RunnerConfig | None = None


def configure_runner(
    *,
    directory_factory: Callable[[], ActiveDirectory],
    store_factory: Callable[[], CloudStore],
    base_dn: str,
    options: SyncOptions | Callable[[], SyncOptions] | None = None,
) -> None:
    """Tell :func:`sync_runner` where the lab is (instead of the environment)."""
    global _runner
    fixed = options or SyncOptions()
    _runner = _RunnerConfig(directory=directory_factory, store=store_factory, base_dn=base_dn,
                            options=fixed if callable(fixed) else (lambda: fixed))


def lab_dir_from_environment() -> Path:
    """Where the lab lives when no Django settings are loaded: as portal/settings.py places it."""
    repo = Path(__file__).resolve().parents[3]  # portal/lab/sync/runner.py -> the checkout
    var_dir = Path(os.environ.get("DIROPS_VAR_DIR", repo / "var"))
    return Path(os.environ.get("LAB_DIR", var_dir / "lab"))


def _runner_from_environment() -> _RunnerConfig:
    """The lab as the portal's settings place it (same variable names), for the lab cloud process."""
    from portal.lab import samba

    lab_dir = lab_dir_from_environment()
    cloud_dir = Path(os.environ.get("LAB_CLOUD_DIR", lab_dir / "cloud"))
    realm = os.environ.get("LAB_AD_REALM", layout.DEFAULT_REALM)
    host = os.environ.get("LAB_AD_HOST", "127.0.0.2")
    base_dn = samba.base_dn_for_realm(realm)

    def directory() -> ActiveDirectory:
        password = (lab_dir / "ad-admin-password").read_text().strip()
        return ActiveDirectory(ad.AdSettings(host=host, base_dn=base_dn, bind_dn=samba.admin_dn_for_realm(realm),
                                             password=password))

    def options() -> SyncOptions:
        path = cloud_dir / OPTIONS_FILE
        if not path.exists():
            return SyncOptions()
        return SyncOptions.from_mapping(json.loads(path.read_text()))

    return _RunnerConfig(directory=directory, store=lambda: CloudStore.open(data_dir=cloud_dir), base_dn=base_dn,
                         options=options)


def sync_runner(policy: str) -> dict[str, Any]:
    """``Start-ADSyncSyncCycle`` for the lab cloud service (``--sync-runner portal.lab.sync:sync_runner``).

    The service records the run before calling; a run found "running" while this process holds the cycle
    lock is that one, and the service finishes it with the returned dict. Called on its own, the runner
    records its own run. Refuses with :class:`SyncAlreadyRunning` while another cycle holds the lock.
    The lab comes from :func:`configure_runner`, else from the environment (LAB_DIR, LAB_AD_HOST,
    LAB_AD_REALM, LAB_CLOUD_DIR; options from ``entra-connect-options.json`` in the cloud directory).
    """
    config = _runner or _runner_from_environment()
    store = config.store()
    try:
        with _CycleLock(store):
            runs = store.sync_runs(limit=1)
            adopted = runs[0]["id"] if runs and runs[0]["state"] == "running" else None
            with config.directory() as directory:
                result = _run_recorded(directory=directory, store=store, base_dn=config.base_dn,
                                       policy=_policy(policy), options=config.options(), run_id=adopted)
    finally:
        store.close()  # this thread's connection; the service calls the runner from a new thread each time
    return result.as_dict()


def _timespan(text: str) -> timedelta:
    """``[d.]hh:mm:ss`` as the scheduler writes its intervals."""
    days = 0
    if "." in text.split(":")[0]:
        day_part, text = text.split(".", 1)
        days = int(day_part)
    hours, minutes, seconds = (float(x) for x in text.split(":"))
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def due(store: CloudStore, *, now: datetime | None = None) -> bool:
    """Whether the scheduler would start a cycle now (the demo's loop calls this, then :func:`sync_runner`).

    The scheduler runs every CurrentlyEffectiveSyncCycleInterval (the larger of the allowed and the
    customised interval) after the start of the last cycle, unless the sync cycle is disabled, the
    scheduler suspended, or a cycle running ("Microsoft Entra Connect Sync: Scheduler").
    """
    settings = store.scheduler()
    if not settings.get("SyncCycleEnabled", True) or settings.get("SchedulerSuspended"):
        return False
    runs = store.sync_runs(limit=1)
    if not runs:
        return True
    if runs[0]["state"] == "running":
        return False
    allowed = _timespan(settings.get("AllowedSyncCycleInterval") or "00:30:00")
    custom = settings.get("CustomizedSyncCycleInterval")
    interval = max(allowed, _timespan(custom)) if custom else allowed
    return (now or utc_now()) >= parse_datetime(runs[0]["started"]) + interval


def next_policy(store: CloudStore) -> Policy:
    """The policy the scheduler's next cycle runs (NextSyncCyclePolicyType)."""
    return _policy(store.scheduler().get("NextSyncCyclePolicyType") or "Delta")
