"""Reads for the Lab page: the state of the rehearsal lab's servers, its sync server and its store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from portal.connectors.registry import NotConfigured, entra_connect

from . import config, samba
from .cloud import server
from .cloud.store import CloudStore


@dataclass
class LabState:
    ad: samba.LabStatus
    cloud: Any
    scheduler: Any = None
    runs: list = field(default_factory=list)
    export_errors: list = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    faults: Any = None
    problems: list[str] = field(default_factory=list)


def lab_state() -> LabState:
    state = LabState(ad=samba.status(base_dir=config.ad_dir()), cloud=server.status(data_dir=config.cloud_dir()))
    if not state.ad.running:
        state.problems.append("The lab AD is not running: `manage.py lab ad up`.")
    if not state.cloud.running:
        state.problems.append("The lab cloud is not running: `manage.py lab cloud up`.")
        return state
    store = CloudStore.open(data_dir=config.cloud_dir())
    try:
        state.counts = store.stats()
        state.faults = store.settings()
    finally:
        store.close()
    try:
        with entra_connect() as sync:
            state.scheduler = sync.get_scheduler()
            state.runs = sync.run_history(count=5)
            state.export_errors = sync.export_errors()
    except NotConfigured as exc:
        state.problems.append(str(exc))
    except Exception as exc:  # noqa: BLE001 - the page reports a broken sync server, it does not crash
        state.problems.append(f"The sync server did not answer: {exc}")
    return state
