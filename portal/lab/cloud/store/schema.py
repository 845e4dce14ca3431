"""The store's tables, lab settings and fault injection values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------------------------
# settings and faults


@dataclass(frozen=True)
class Fault:
    """What the service must do to the request at hand (see :meth:`CloudStore.take_fault`)."""

    status: int | None  # 429 or 503, or None for "answer normally"
    retry_after: int
    latency_ms: int


@dataclass(frozen=True)
class LabSettings:
    premium_licence: bool = True
    # How InvokeCommand answers an unknown cmdlet: "error" (a JSON error naming the
    # CommandNotFoundException) or "blank403" (an empty 403, as the service has been observed to).
    exchange_unknown_cmdlet: str = "error"
    throttle_remaining: int = 0
    unavailable_remaining: int = 0
    retry_after: int = 1
    latency_ms: int = 0
    fault_scope: str = "all"  # all | graph | exchange | powershell


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    display_name TEXT COLLATE NOCASE,
    upn TEXT COLLATE NOCASE,
    mail TEXT COLLATE NOCASE,
    mail_nickname TEXT COLLATE NOCASE,
    source_anchor TEXT,
    sync_enabled INTEGER,
    mail_enabled INTEGER,
    security_enabled INTEGER,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_kind_seq ON objects (kind, seq);
CREATE INDEX IF NOT EXISTS objects_upn ON objects (upn);
CREATE INDEX IF NOT EXISTS objects_mail ON objects (mail);
CREATE INDEX IF NOT EXISTS objects_display ON objects (kind, display_name);
CREATE INDEX IF NOT EXISTS objects_nickname ON objects (mail_nickname);
CREATE UNIQUE INDEX IF NOT EXISTS objects_anchor ON objects (kind, source_anchor) WHERE source_anchor IS NOT NULL;
CREATE TABLE IF NOT EXISTS proxy_addresses (
    object_id TEXT NOT NULL,
    address TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (object_id, address)
);
CREATE INDEX IF NOT EXISTS proxy_addresses_address ON proxy_addresses (address);
CREATE TABLE IF NOT EXISTS members (
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX IF NOT EXISTS members_member ON members (member_id);
-- bumped by every change of a membership, whichever process makes it: a transitive closure computed at one
-- value serves every page and request read at the same value (DirectoryStoreMixin._closure). An UPDATE, and an
-- INSERT that cannot conflict: a trigger's own conflict clause yields to the statement's (INSERT OR IGNORE)
CREATE TABLE IF NOT EXISTS members_version (id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS members_added AFTER INSERT ON members BEGIN
    UPDATE members_version SET n = n + 1;
    INSERT INTO members_version (id, n) SELECT 0, 1 WHERE NOT EXISTS (SELECT 1 FROM members_version); END;
CREATE TRIGGER IF NOT EXISTS members_removed AFTER DELETE ON members BEGIN
    UPDATE members_version SET n = n + 1;
    INSERT INTO members_version (id, n) SELECT 0, 1 WHERE NOT EXISTS (SELECT 1 FROM members_version); END;
CREATE TRIGGER IF NOT EXISTS members_changed AFTER UPDATE ON members BEGIN
    UPDATE members_version SET n = n + 1;
    INSERT INTO members_version (id, n) SELECT 0, 1 WHERE NOT EXISTS (SELECT 1 FROM members_version); END;
CREATE TABLE IF NOT EXISTS recipients (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    object_id TEXT,
    type_details TEXT NOT NULL,
    name TEXT COLLATE NOCASE,
    alias TEXT COLLATE NOCASE,
    primary_smtp TEXT COLLATE NOCASE,
    dn TEXT COLLATE NOCASE,
    legacy_dn TEXT COLLATE NOCASE,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS recipients_object ON recipients (object_id);
CREATE INDEX IF NOT EXISTS recipients_type ON recipients (type_details, seq);
CREATE INDEX IF NOT EXISTS recipients_name ON recipients (name);
CREATE INDEX IF NOT EXISTS recipients_alias ON recipients (alias);
CREATE INDEX IF NOT EXISTS recipients_smtp ON recipients (primary_smtp);
CREATE INDEX IF NOT EXISTS recipients_dn ON recipients (dn);
CREATE INDEX IF NOT EXISTS recipients_legacy ON recipients (legacy_dn);
CREATE TABLE IF NOT EXISTS recipient_addresses (
    recipient_id TEXT NOT NULL,
    address TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (recipient_id, address)
);
CREATE INDEX IF NOT EXISTS recipient_addresses_address ON recipient_addresses (address);
CREATE TABLE IF NOT EXISTS recipient_permissions (
    recipient_id TEXT NOT NULL,
    trustee_id TEXT NOT NULL,
    access_right TEXT NOT NULL,
    PRIMARY KEY (recipient_id, trustee_id, access_right)
);
CREATE INDEX IF NOT EXISTS recipient_permissions_trustee ON recipient_permissions (trustee_id);
CREATE TABLE IF NOT EXISTS accepted_domains (name TEXT PRIMARY KEY COLLATE NOCASE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbound_connectors (name TEXT PRIMARY KEY COLLATE NOCASE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS auth_methods (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    method_type TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_methods_user ON auth_methods (user_id);
CREATE TABLE IF NOT EXISTS registration_details (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL UNIQUE,
    upn TEXT COLLATE NOCASE,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS registration_details_upn ON registration_details (upn);
CREATE TABLE IF NOT EXISTS audit_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    activity_time TEXT NOT NULL,
    activity TEXT COLLATE NOCASE,
    category TEXT COLLATE NOCASE,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (activity_time);
CREATE INDEX IF NOT EXISTS audit_events_activity ON audit_events (activity, activity_time);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS apps (
    client_id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    secret_salt TEXT,
    secret_hash TEXT,
    roles TEXT NOT NULL,
    certificates TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    policy TEXT NOT NULL,
    state TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    result TEXT
);
CREATE TABLE IF NOT EXISTS export_errors (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    connector TEXT NOT NULL,
    dn TEXT COLLATE NOCASE,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_exports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    connector TEXT NOT NULL,
    dn TEXT COLLATE NOCASE,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ca_policies (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                                        doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ca_strengths (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS directory_roles (id TEXT PRIMARY KEY, template_id TEXT NOT NULL UNIQUE,
                                            doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS directory_role_members (role_id TEXT NOT NULL, member_id TEXT NOT NULL,
                                                   PRIMARY KEY (role_id, member_id));
CREATE TABLE IF NOT EXISTS ca_signins (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                                       created TEXT NOT NULL, user_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ca_signins_created ON ca_signins (created);
CREATE TABLE IF NOT EXISTS per_user_mfa (user_id TEXT PRIMARY KEY, state TEXT NOT NULL);
"""

_SETTING_DEFAULTS: dict[str, Any] = {
    "premium_licence": True,
    "exchange_unknown_cmdlet": "error",
    "fault_scope": "all",
    "throttle_remaining": 0,
    "unavailable_remaining": 0,
    "retry_after": 1,
    "latency_ms": 0,
}
