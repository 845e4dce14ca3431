"""Lab settings and fault injection."""

from __future__ import annotations

import json
from typing import Any

from .common import _dumps
from .schema import _SETTING_DEFAULTS, Fault, LabSettings


class SettingsStoreMixin:
    """Lab settings and faults; part of ``CloudStore``."""

    def settings(self) -> LabSettings:
        rows = dict(self._execute("SELECT key, value FROM settings").fetchall())
        values = {key: json.loads(rows[key]) if key in rows else default for key, default in _SETTING_DEFAULTS.items()}
        return LabSettings(**values)

    def update_settings(self, **changes: Any) -> LabSettings:
        """Change lab settings by name (see :class:`LabSettings`)."""
        unknown = set(changes) - set(_SETTING_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown lab settings: {', '.join(sorted(unknown))}")
        with self.transaction():
            for key, value in changes.items():
                self._execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, _dumps(value)))
        return self.settings()

    def set_faults(
        self,
        *,
        throttle: int = 0,
        unavailable: int = 0,
        retry_after: int = 1,
        latency_ms: int = 0,
        scope: str = "all",
    ) -> LabSettings:
        """Answer the next ``throttle`` API calls with 429 (``Retry-After: retry_after``), then the
        next ``unavailable`` with 503, and delay every call by ``latency_ms`` while it is set.
        ``scope`` limits this to "graph", "exchange" or "powershell" calls."""
        if scope not in {"all", "graph", "exchange", "powershell"}:
            raise ValueError("scope must be all, graph, exchange or powershell")
        return self.update_settings(throttle_remaining=throttle, unavailable_remaining=unavailable,
                                    retry_after=retry_after, latency_ms=latency_ms, fault_scope=scope)

    def clear_faults(self) -> LabSettings:
        return self.set_faults()

    def take_fault(self, *, service: str) -> Fault:
        """Consume one injected fault for a call to ``service``; each is used exactly once even when
        several requests race (the decrement runs under the write lock)."""
        current = self.settings()
        in_scope = current.fault_scope in ("all", service)
        if not in_scope:
            return Fault(status=None, retry_after=0, latency_ms=0)
        latency = current.latency_ms
        if current.throttle_remaining <= 0 and current.unavailable_remaining <= 0:
            return Fault(status=None, retry_after=0, latency_ms=latency)
        with self.transaction():
            fresh = self.settings()
            if fresh.throttle_remaining > 0:
                self._execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('throttle_remaining', ?)",
                              (_dumps(fresh.throttle_remaining - 1),))
                return Fault(status=429, retry_after=fresh.retry_after, latency_ms=latency)
            if fresh.unavailable_remaining > 0:
                self._execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('unavailable_remaining', ?)",
                              (_dumps(fresh.unavailable_remaining - 1),))
                return Fault(status=503, retry_after=fresh.retry_after, latency_ms=latency)
        return Fault(status=None, retry_after=0, latency_ms=latency)
