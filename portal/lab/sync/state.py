"""The engine's state store (the connector space's memory) and the lock that keeps one cycle at a time."""

from __future__ import annotations

import base64
import fcntl
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from uuid import UUID

from portal.lab.cloud.store import CloudStore

from .constants import LOCK_FILE, STATE_VERSION
from .model import SyncAlreadyRunning


@dataclass
class _State:
    tenant_id: str | None = None
    base_dn: str | None = None
    dc: str | None = None  # objectGUID of the DC's NTDS Settings object
    watermark: int | None = None
    synced_objects: int | None = None
    recycle_bin: dict[str, dict[str, Any]] = field(default_factory=dict)  # anchor -> id, kind, deleted, ...
    written_back: list[str] = field(default_factory=list)  # cloud group ids joined to an AD group

    @classmethod
    def load(cls, path: Path) -> _State:
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return cls()
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return cls()
        data.pop("version", None)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": STATE_VERSION, **asdict(self)}, indent=1, sort_keys=True))
        os.replace(tmp, path)


class _CycleLock:
    """One cycle at a time per lab cloud, across threads and processes (flock on a file beside the store)."""

    def __init__(self, store: CloudStore) -> None:
        self.path = store.path.parent / LOCK_FILE
        self.fd: int | None = None

    def __enter__(self) -> _CycleLock:
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SyncAlreadyRunning() from None
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, UUID):
        return str(value)
    return value
