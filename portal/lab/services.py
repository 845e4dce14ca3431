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
