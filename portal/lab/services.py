from __future__ import annotations

from portal.audit.services import record

from . import config
from .cloud.store import CloudStore


def do_set_lab_faults(*, user, throttle: int, unavailable: int, retry_after: int, latency_ms: int, scope: str,
                      request=None) -> None:
    """Make the lab cloud misbehave on purpose, to rehearse throttling and outages."""
    store = CloudStore.open(data_dir=config.cloud_dir())
    try:
        before = store.settings()
        store.set_faults(throttle=throttle, unavailable=unavailable, retry_after=retry_after,
                         latency_ms=latency_ms, scope=scope)
    finally:
        store.close()
    record(actor=user, action="lab.faults", target="lab cloud", before=str(before),
           after={"throttle": throttle, "unavailable": unavailable, "retry_after": retry_after,
                  "latency_ms": latency_ms, "scope": scope}, request=request)


def lab_sync_wizard() -> dict:
    """The lab sync server's wizard settings now (for the lab page's form)."""
    store = CloudStore.open(data_dir=config.cloud_dir())
    try:
        scheduler = store.scheduler()
        effective = {"Enabled": True, "TargetOU": None, "WritebackGroupDnWithDisplayName": False,
                     **store.group_writeback_effective(), **store.group_writeback_wizard()}
    finally:
        store.close()
    return {"staging_mode": bool(scheduler.get("StagingModeEnabled")),
            "sync_cycle_enabled": bool(scheduler.get("SyncCycleEnabled", True)),
            "group_writeback": bool(effective["Enabled"]),
            "writeback_display_name": bool(effective["WritebackGroupDnWithDisplayName"]),
            "target_ou": effective.get("TargetOU") or ""}


def do_set_lab_sync_wizard(*, user, staging_mode: bool, sync_cycle_enabled: bool, group_writeback: bool,
                           writeback_display_name: bool, target_ou: str = "", request=None) -> None:
    """Do to the lab sync server what the Entra Connect wizard does (staging mode, scheduler, group writeback
    page), so the writeback rename runbook is rehearsed against the lab's engine, deletions included."""
    store = CloudStore.open(data_dir=config.cloud_dir())
    try:
        before = {"scheduler": store.scheduler(), "group_writeback": store.group_writeback_wizard()}
        store.update_scheduler(StagingModeEnabled=staging_mode, SyncCycleEnabled=sync_cycle_enabled)
        wizard = {"Enabled": group_writeback, "WritebackGroupDnWithDisplayName": writeback_display_name}
        if target_ou:
            wizard["TargetOU"] = target_ou
        store.set_group_writeback_wizard(**wizard)
    finally:
        store.close()
    record(actor=user, action="lab.sync_wizard", target="lab sync server", before=str(before),
           after={"staging_mode": staging_mode, "sync_cycle_enabled": sync_cycle_enabled, **wizard}, request=request)
