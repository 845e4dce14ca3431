"""The Entra Connect server's state: scheduler, run history, export errors, pending exports."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from .common import DEFAULT_CONNECT_VERSION, DEFAULT_SCHEDULER, _dumps, _new_id, iso, utc_now


class ConnectStoreMixin:
    """Entra Connect server state; part of ``CloudStore``."""

    def scheduler(self) -> dict[str, Any]:
        """``Get-ADSyncScheduler``'s values (the service adds the computed ones)."""
        row = self._execute("SELECT value FROM settings WHERE key = 'scheduler'").fetchone()
        return {**DEFAULT_SCHEDULER, **(json.loads(row[0]) if row else {})}

    def update_scheduler(self, **changes: Any) -> dict[str, Any]:
        unknown = set(changes) - set(DEFAULT_SCHEDULER)
        if unknown:
            raise ValueError(f"unknown scheduler settings: {', '.join(sorted(unknown))}")
        merged = {**self.scheduler(), **changes}
        self._execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('scheduler', ?)", (_dumps(merged),))
        return merged

    def connect_version(self) -> str:
        """The Entra Connect Sync build the lab server runs (settable to rehearse an old client)."""
        row = self._execute("SELECT value FROM settings WHERE key = 'connect_version'").fetchone()
        return json.loads(row[0]) if row else DEFAULT_CONNECT_VERSION

    def set_connect_version(self, *, version: str) -> None:
        parts = version.split(".")
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            raise ValueError(f"not a four-part build number: {version!r}")
        self._execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('connect_version', ?)", (_dumps(version),))

    def sync_connectors(self) -> list[dict[str, Any]]:
        """The sync server's connectors (AD and Entra ID), as ``Get-ADSyncConnector`` lists them."""
        row = self._execute("SELECT value FROM settings WHERE key = 'sync_connectors'").fetchone()
        if row:
            return json.loads(row[0])
        domain = self.initial_domain or "lab.onmicrosoft.com"
        return [
            {"Name": "lab.example", "Type": "AD", "Identifier": "6c0b5a1e-3a65-4a0b-9ad5-3b0b0e4b0a01"},
            {"Name": f"{domain} - AAD", "Type": "Extensible2", "Identifier": "b891884f-051e-4a83-95af-2544101c9083"},
        ]

    def set_sync_connectors(self, *, connectors: Sequence[Mapping[str, Any]]) -> None:
        self._execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('sync_connectors', ?)",
                      (_dumps([dict(c) for c in connectors]),))

    def start_sync_run(self, *, policy: str) -> int | None:
        """Record a cycle as running; None when one already runs (the caller refuses a second)."""
        with self.transaction():
            if self._execute("SELECT 1 FROM sync_runs WHERE state = 'running'").fetchone():
                return None
            cursor = self._execute("INSERT INTO sync_runs (policy, state, started) VALUES (?, 'running', ?)",
                                   (policy, iso(utc_now())))
            return int(cursor.lastrowid or 0)

    def finish_sync_run(self, *, run_id: int, result: Mapping[str, Any] | None, error: str | None = None) -> None:
        state = "failed" if error else "succeeded"
        payload = dict(result or {})
        if error:
            payload["error"] = error
        self._execute("UPDATE sync_runs SET state = ?, finished = ?, result = ? WHERE seq = ?",
                      (state, iso(utc_now()), _dumps(payload), run_id))

    def abandon_running_sync_runs(self) -> int:
        """Mark runs left 'running' by a service that died as failed (called at service start)."""
        cursor = self._execute(
            "UPDATE sync_runs SET state = 'failed', finished = ?, result = ? WHERE state = 'running'",
            (iso(utc_now()), _dumps({"error": "the lab cloud service stopped during the run"})),
        )
        return cursor.rowcount

    def sync_runs(self, *, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._execute("SELECT * FROM sync_runs ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [
            {"id": row["seq"], "policy": row["policy"], "state": row["state"], "started": row["started"],
             "finished": row["finished"], "result": json.loads(row["result"]) if row["result"] else None}
            for row in rows
        ]

    def add_export_error(
        self,
        *,
        connector: str,
        distinguished_name: str,
        error_code: str,
        message: str,
        attribute: str | None = None,
        object_id: str | None = None,
        source_anchor: str | None = None,
        first_occurred: datetime | None = None,
    ) -> dict[str, Any]:
        """Record an export error (``DataValidationFailed``, ``AttributeValueMustBeUnique``...).

        One error per connector and DN: recording it again keeps ``FirstOccurred`` and bumps
        ``RetryCount``, as the sync server reports a recurring error.
        """
        now = iso(utc_now())
        with self.transaction():
            row = self._execute("SELECT id, doc FROM export_errors WHERE connector = ? AND dn = ?",
                                (connector, distinguished_name)).fetchone()
            if row:
                doc = json.loads(row["doc"])
                doc.update({"ErrorCode": error_code, "Message": message, "Attribute": attribute,
                            "LastOccurred": now, "RetryCount": doc.get("RetryCount", 0) + 1})
                self._execute("UPDATE export_errors SET doc = ? WHERE id = ?", (_dumps(doc), row["id"]))
                return doc
            eid = _new_id()
            doc = {
                "Id": eid, "ConnectorName": connector, "DistinguishedName": distinguished_name,
                "ErrorCode": error_code, "Message": message, "Attribute": attribute, "ObjectId": object_id,
                "SourceAnchor": source_anchor, "FirstOccurred": iso(first_occurred) if first_occurred else now,
                "LastOccurred": now, "RetryCount": 0,
            }
            self._execute("INSERT INTO export_errors (id, connector, dn, doc) VALUES (?, ?, ?, ?)",
                          (eid, connector, distinguished_name, _dumps(doc)))
            return doc

    def clear_export_errors(self, *, connector: str | None = None, distinguished_name: str | None = None) -> int:
        clauses, params = ["1"], []
        if connector:
            clauses.append("connector = ?")
            params.append(connector)
        if distinguished_name:
            clauses.append("dn = ?")
            params.append(distinguished_name)
        return self._execute(f"DELETE FROM export_errors WHERE {' AND '.join(clauses)}", params).rowcount

    def list_export_errors(self, *, connector: str | None = None) -> list[dict[str, Any]]:
        if connector:
            rows = self._execute("SELECT doc FROM export_errors WHERE connector = ? ORDER BY seq", (connector,))
        else:
            rows = self._execute("SELECT doc FROM export_errors ORDER BY seq")
        return [json.loads(row[0]) for row in rows.fetchall()]

    def add_pending_export(
        self,
        *,
        connector: str,
        distinguished_name: str,
        operation: Literal["Add", "Update", "Delete", "Replace"],
        attributes: Mapping[str, Any] | None = None,
        object_id: str | None = None,
    ) -> dict[str, Any]:
        """Record a change staged for export (what staging mode holds back)."""
        pid = _new_id()
        doc = {
            "Id": pid, "ConnectorName": connector, "DistinguishedName": distinguished_name, "Operation": operation,
            "Attributes": dict(attributes or {}), "ObjectId": object_id, "Queued": iso(utc_now()),
        }
        self._execute("INSERT INTO pending_exports (id, connector, dn, doc) VALUES (?, ?, ?, ?)",
                      (pid, connector, distinguished_name, _dumps(doc)))
        return doc

    def clear_pending_exports(self, *, connector: str | None = None) -> int:
        if connector:
            return self._execute("DELETE FROM pending_exports WHERE connector = ?", (connector,)).rowcount
        return self._execute("DELETE FROM pending_exports").rowcount

    def list_pending_exports(self, *, connector: str | None = None) -> list[dict[str, Any]]:
        if connector:
            rows = self._execute("SELECT doc FROM pending_exports WHERE connector = ? ORDER BY seq", (connector,))
        else:
            rows = self._execute("SELECT doc FROM pending_exports ORDER BY seq")
        return [json.loads(row[0]) for row in rows.fetchall()]
