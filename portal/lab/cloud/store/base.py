"""Connections, transactions, tenant metadata, app registrations and maintenance."""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .common import KINDS, SCHEMA_VERSION, NotFoundError, StoreError, _dumps, _hash_secret, iso, utc_now
from .schema import _SCHEMA


class StoreBase:
    """The SQLite plumbing every surface's mixin uses; the first base of ``CloudStore``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        conn = self._conn()
        conn.executescript(_SCHEMA)
        with self.transaction():
            if self._meta("schema_version") is None:
                self._set_meta("schema_version", str(SCHEMA_VERSION))
            if self._meta("signing_key") is None:
                self._set_meta("signing_key", base64.b64encode(secrets.token_bytes(32)).decode())

    # -- connections and transactions

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=True)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            self._local.depth = 0
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one atomic commit; nests (only the outermost commits)."""
        conn = self._conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout instead of
        # one failing at its first write with "database is locked".
        conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            self._local.depth = 0

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn().execute(sql, params)

    # -- meta

    def _meta(self, key: str) -> str | None:
        row = self._execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._execute("INSERT INTO meta (key, value) VALUES (?, ?)"
                      " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    @property
    def tenant_id(self) -> str | None:
        return self._meta("tenant_id")

    @property
    def initial_domain(self) -> str | None:
        return self._meta("initial_domain")

    def set_tenant(self, *, tenant_id: str, initial_domain: str, display_name: str = "Contoso (lab)") -> None:
        """Bind this database to one tenant. Refuses another tenant id (the data would lie)."""
        current = self.tenant_id
        if current is not None and current.lower() != tenant_id.lower():
            raise StoreError(f"{self.path} holds tenant {current}, not {tenant_id}; reset the lab to change it")
        with self.transaction():
            self._set_meta("tenant_id", tenant_id.lower())
            self._set_meta("initial_domain", initial_domain.lower())
            self._set_meta("tenant_display_name", display_name)
            if not self.list_accepted_domains():
                self.add_accepted_domain(domain_name=initial_domain, default=True, initial=True)

    def signing_key(self) -> bytes:
        """The lab token service's HMAC key (generated once per database; never leaves the lab)."""
        value = self._meta("signing_key")
        assert value is not None
        return base64.b64decode(value)

    # -- app registrations

    def register_app(
        self,
        *,
        client_id: str,
        client_secret: str | None,
        display_name: str = "DirOps Portal (lab)",
        roles: Sequence[str] = ("Directory.Read.All", "Group.ReadWrite.All", "User.ReadWrite.All", "AuditLog.Read.All",
                                "UserAuthenticationMethod.Read.All", "Exchange.ManageAsApp", "Policy.Read.All",
                                "RoleManagement.Read.Directory", "Group-OnPremisesSyncBehavior.ReadWrite.All"),
    ) -> None:
        """Create or update an app registration; only a salted hash of the secret is kept."""
        salt = secrets.token_hex(16) if client_secret else None
        digest = _hash_secret(client_secret, salt) if client_secret and salt else None
        with self.transaction():
            row = self._execute("SELECT certificates FROM apps WHERE client_id = ?", (client_id.lower(),)).fetchone()
            certificates = row[0] if row else "[]"
            self._execute(
                "INSERT OR REPLACE INTO apps (client_id, display_name, secret_salt, secret_hash, roles, certificates,"
                " created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (client_id.lower(), display_name, salt, digest, _dumps(list(roles)), certificates, iso(utc_now())),
            )

    def add_app_certificate(self, *, client_id: str, certificate_pem: str) -> None:
        """Let the app authenticate with a client assertion signed by this certificate's key."""
        app = self.get_app(client_id=client_id)
        if app is None:
            raise NotFoundError(f"no app {client_id}")
        certificates = [*app["certificates"], certificate_pem]
        self._execute("UPDATE apps SET certificates = ? WHERE client_id = ?", (_dumps(certificates), client_id.lower()))

    def get_app(self, *, client_id: str) -> dict[str, Any] | None:
        row = self._execute("SELECT * FROM apps WHERE client_id = ?", (client_id.lower(),)).fetchone()
        if row is None:
            return None
        return {
            "client_id": row["client_id"],
            "display_name": row["display_name"],
            "has_secret": row["secret_hash"] is not None,
            "roles": json.loads(row["roles"]),
            "certificates": json.loads(row["certificates"]),
        }

    def verify_client_secret(self, *, client_id: str, client_secret: str) -> bool:
        row = self._execute("SELECT secret_salt, secret_hash FROM apps WHERE client_id = ?",
                            (client_id.lower(),)).fetchone()
        if row is None or row["secret_hash"] is None:
            return False
        return hmac.compare_digest(row["secret_hash"], _hash_secret(client_secret, row["secret_salt"]))


    # -- maintenance

    def wipe_tenant_data(self) -> None:
        """Delete every object, recipient, report row and log entry (keeps apps, tenant, settings)."""
        with self.transaction():
            for table in ("objects", "proxy_addresses", "members", "recipients", "recipient_addresses",
                          "recipient_permissions", "outbound_connectors", "auth_methods", "registration_details",
                          "audit_events", "sync_runs", "export_errors", "pending_exports", "ca_policies",
                          "ca_strengths", "directory_roles", "directory_role_members", "ca_signins", "per_user_mfa"):
                self._execute(f"DELETE FROM {table}")

    def stats(self) -> dict[str, int]:
        counts = {kind: 0 for kind in KINDS}
        for kind, count in self._execute("SELECT kind, COUNT(*) FROM objects GROUP BY kind").fetchall():
            counts[kind] = count
        counts["recipients"] = self._execute("SELECT COUNT(*) FROM recipients").fetchone()[0]
        counts["memberships"] = self._execute("SELECT COUNT(*) FROM members").fetchone()[0]
        counts["audit_events"] = self._execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
        return counts
