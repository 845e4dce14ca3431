"""The lab tenant's data: Entra ID objects, Exchange Online recipients, reports, audit log, sync
server state and lab settings, in one SQLite file (stdlib ``sqlite3``, WAL mode).

Who calls this module:

- the lab cloud service (``portal.lab.cloud.app``), to answer Graph, Exchange and PowerShell calls;
- the lab sync engine and the scenario seeder, to project the lab AD into the cloud (create,
  update, delete objects by id, find them by source anchor, record export errors);
- tests, to seed data directly and to switch fault injection on and off.

Several processes may open the same file at once (the service, a test, the sync engine): WAL mode
lets readers run beside one writer, and ``busy_timeout`` makes writers queue instead of failing.
Each thread gets its own connection.

Data model, in the cloud's own terms:

- **directory objects** (``kind`` user, group or contact): a JSON document of Graph properties
  (camelCase, as Graph returns them) plus indexed columns for the properties Graph filters on.
  ``source_anchor`` is what Entra Connect matches on (``onPremisesImmutableId`` for users; groups
  keep theirs internally, as Entra ID does). Memberships link object ids.
- **recipients**: the Exchange Online view of mail-enabled objects, a document of Exchange
  properties (PascalCase, as the cmdlets return them), linked to its directory object by
  ``ExternalDirectoryObjectId``. Link properties (``ManagedBy``, ``ModeratedBy``,
  ``AcceptMessagesOnlyFromSendersOrMembers``...) hold recipient ids; the service renders names.
- reports and logs: authentication methods per user, ``userRegistrationDetails`` rows, directory
  audit events; accepted domains, outbound connectors, recipient permissions.
- the Entra Connect server: scheduler settings, run history, export errors, pending exports.
- lab settings: fault injection (429 with Retry-After, 503, latency), premium licence switch.
- app registrations: client id and a salted hash of the client secret (never the secret itself).

Queries take a small condition tree (:class:`Compare`, :class:`StringMatch`, :class:`In`,
:class:`AnyOf`, :class:`And`, :class:`Or`, :class:`Not`) that this module compiles to SQL, so the
service's OData parser never writes SQL and 10,000-object pages stay index-backed.

No Django here.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

DB_NAME = "cloud.sqlite3"
SCHEMA_VERSION = 1

ObjectKind = Literal["user", "group", "contact"]
KINDS: tuple[str, ...] = ("user", "group", "contact")

# Exchange's fictitious server names appear in its error messages; the lab uses one of its own.
EXCHANGE_SERVER_FQDN = "LAB01A001DC001.LABPR01A001.PROD.OUTLOOK.COM"
EXCHANGE_DN_SUFFIX = "OU=Microsoft Exchange Hosted Organizations,DC=LABPR01A001,DC=PROD,DC=OUTLOOK,DC=COM"
EXCHANGE_ADMIN_GROUP = "Exchange Administrative Group (FYDIBOHF23SPDLT)"

# The Exchange properties that link to other recipients: stored as recipient ids.
RECIPIENT_LINK_PROPERTIES: tuple[str, ...] = (
    "ManagedBy",
    "AcceptMessagesOnlyFromSendersOrMembers",
    "RejectMessagesFromSendersOrMembers",
    "ModeratedBy",
    "GrantSendOnBehalfTo",
    "BypassModerationFromSendersOrMembers",
)

GROUP_RECIPIENT_TYPES = frozenset(
    {"MailUniversalDistributionGroup", "MailUniversalSecurityGroup", "RoomList", "MailNonUniversalGroup"}
)
MAILBOX_RECIPIENT_TYPES = frozenset(
    {"UserMailbox", "SharedMailbox", "RoomMailbox", "EquipmentMailbox", "SchedulingMailbox"}
)
MAIL_USER_RECIPIENT_TYPES = frozenset({"MailUser", "GuestMailUser", "RemoteUserMailbox"})
CONTACT_RECIPIENT_TYPES = frozenset({"MailContact"})
# Recipients that Get-Recipient lists (a plain "User" is only a link target, as in Exchange Online).
MAIL_RECIPIENT_TYPES = (
    GROUP_RECIPIENT_TYPES | MAILBOX_RECIPIENT_TYPES | MAIL_USER_RECIPIENT_TYPES | CONTACT_RECIPIENT_TYPES
    | frozenset({"GroupMailbox", "DynamicDistributionGroup"})
)
_RECIPIENT_TYPE = {
    **{t: "UserMailbox" for t in MAILBOX_RECIPIENT_TYPES},
    **{t: "MailUser" for t in MAIL_USER_RECIPIENT_TYPES},
    "MailContact": "MailContact",
    "MailUniversalDistributionGroup": "MailUniversalDistributionGroup",
    "RoomList": "MailUniversalDistributionGroup",
    "MailUniversalSecurityGroup": "MailUniversalSecurityGroup",
    "MailNonUniversalGroup": "MailNonUniversalGroup",
    "GroupMailbox": "MailUniversalDistributionGroup",
    "DynamicDistributionGroup": "DynamicDistributionGroup",
    "User": "User",
}

AUTH_METHOD_TYPES: dict[str, str] = {
    "password": "#microsoft.graph.passwordAuthenticationMethod",
    "microsoftAuthenticator": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
    "phone": "#microsoft.graph.phoneAuthenticationMethod",
    "fido2": "#microsoft.graph.fido2AuthenticationMethod",
    "windowsHelloForBusiness": "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
    "email": "#microsoft.graph.emailAuthenticationMethod",
    "softwareOath": "#microsoft.graph.softwareOathAuthenticationMethod",
    "temporaryAccessPass": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
    "platformCredential": "#microsoft.graph.platformCredentialAuthenticationMethod",
}

DEFAULT_SCHEDULER: dict[str, Any] = {
    "AllowedSyncCycleInterval": "00:30:00",
    "CurrentlyEffectiveSyncCycleInterval": "00:30:00",
    "CustomizedSyncCycleInterval": None,
    "NextSyncCyclePolicyType": "Delta",
    "PurgeRunHistoryInterval": "7.00:00:00",
    "SyncCycleEnabled": True,
    "MaintenanceEnabled": True,
    "StagingModeEnabled": False,
    "SchedulerSuspended": False,
}


# --------------------------------------------------------------------------------------------
# errors


class StoreError(RuntimeError):
    """Base class of this module's errors."""


class NotFoundError(StoreError):
    """The object, recipient or row does not exist."""


class ConflictError(StoreError):
    """A value that must be unique in the tenant is already held by another object.

    The sync engine turns this into Entra Connect's ``AttributeValueMustBeUnique`` export error.
    """

    def __init__(self, *, attribute: str, value: str, existing_id: str) -> None:
        super().__init__(f"{attribute} {value!r} is already used by object {existing_id}")
        self.attribute = attribute
        self.value = value
        self.existing_id = existing_id


class UnsupportedQueryError(StoreError):
    """A condition names a property this entity cannot be filtered or sorted on."""

    def __init__(self, *, property_name: str, resource: str) -> None:
        super().__init__(f"property {property_name!r} of {resource} cannot be queried")
        self.property_name = property_name
        self.resource = resource


# --------------------------------------------------------------------------------------------
# time


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Graph's usual timestamp form: ``2024-05-01T10:11:12Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_precise(moment: datetime) -> str:
    """Seven fractional digits, as Graph writes audit timestamps (and sortable as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?(Z|[+-]\d{2}:\d{2})?$"
)


def parse_datetime(text: str) -> datetime:
    """ISO 8601 as Graph and OData write it (up to 7 fractional digits; no zone means UTC)."""
    match = _DATETIME_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a date-time: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) * sign
        return (moment - offset).replace(tzinfo=UTC)
    return moment.replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# query conditions (built by the service's OData parser, compiled to SQL here)

CompareOp = Literal["eq", "ne", "gt", "ge", "lt", "le"]


@dataclass(frozen=True)
class Compare:
    """``path op value``; a path is a property and its sub-properties (``initiatedBy/user/id``)."""

    path: tuple[str, ...]
    op: CompareOp
    value: Any


@dataclass(frozen=True)
class StringMatch:
    path: tuple[str, ...]
    function: Literal["startswith", "endswith", "contains"]
    value: str


@dataclass(frozen=True)
class In:
    path: tuple[str, ...]
    values: tuple[Any, ...]


@dataclass(frozen=True)
class AnyOf:
    """``collection/any(v: condition)``; inside, paths start with ``variable``."""

    path: tuple[str, ...]
    variable: str
    condition: Condition | None


@dataclass(frozen=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Compare | StringMatch | In | AnyOf | And | Or | Not


@dataclass(frozen=True)
class Page:
    """One page of a listing; ``next_token`` is opaque and goes back into the next call."""

    items: list[dict[str, Any]]
    next_token: str | None
    total: int | None = None


@dataclass(frozen=True)
class _Spec:
    """How one entity maps onto its table, for the condition compiler."""

    table: str
    resource: str  # the entity's name in error messages ("User", "Group")
    # Graph property -> (column, kind); kind "time" columns hold iso_precise() text.
    columns: Mapping[str, tuple[str, str]]
    filterable: frozenset[str] | None  # top-level properties allowed in conditions; None: any
    # collection property -> (table, column joining the entity's id, value column)
    side_tables: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)


_OBJECT_COLUMNS: dict[str, tuple[str, str]] = {
    "id": ("id", "str"),
    "displayName": ("display_name", "str"),
    "userPrincipalName": ("upn", "str"),
    "mail": ("mail", "str"),
    "mailNickname": ("mail_nickname", "str"),
    "onPremisesSyncEnabled": ("sync_enabled", "bool"),
    "mailEnabled": ("mail_enabled", "bool"),
    "securityEnabled": ("security_enabled", "bool"),
}
_OBJECT_SIDE_TABLES = {"proxyAddresses": ("proxy_addresses", "object_id", "address")}

USER_FILTERABLE = frozenset({
    "id", "displayName", "userPrincipalName", "mail", "mailNickname", "givenName", "surname", "jobTitle",
    "department", "accountEnabled", "userType", "onPremisesSyncEnabled", "onPremisesImmutableId",
    "onPremisesSamAccountName", "onPremisesUserPrincipalName", "onPremisesSecurityIdentifier", "proxyAddresses",
    "employeeId", "companyName", "createdDateTime", "otherMails", "onPremisesExtensionAttributes", "city",
    "country", "officeLocation", "usageLocation", "creationType", "externalUserState", "identities",
    "assignedLicenses", "imAddresses", "showInAddressList",
})
GROUP_FILTERABLE = frozenset({
    "id", "displayName", "mail", "mailNickname", "mailEnabled", "securityEnabled", "groupTypes",
    "onPremisesSyncEnabled", "onPremisesSamAccountName", "onPremisesSecurityIdentifier", "proxyAddresses",
    "createdDateTime", "description", "securityIdentifier", "visibility", "isAssignableToRole",
    "classification", "expirationDateTime", "resourceProvisioningOptions",
})
CONTACT_FILTERABLE = frozenset({
    "id", "displayName", "mail", "mailNickname", "givenName", "surname", "companyName", "proxyAddresses",
    "onPremisesSyncEnabled", "jobTitle", "department",
})

_SPECS: dict[str, _Spec] = {
    "user": _Spec("objects", "User", _OBJECT_COLUMNS, USER_FILTERABLE, _OBJECT_SIDE_TABLES),
    "group": _Spec("objects", "Group", _OBJECT_COLUMNS, GROUP_FILTERABLE, _OBJECT_SIDE_TABLES),
    "contact": _Spec("objects", "OrgContact", _OBJECT_COLUMNS, CONTACT_FILTERABLE, _OBJECT_SIDE_TABLES),
    "directoryObject": _Spec(
        "objects", "DirectoryObject", _OBJECT_COLUMNS,
        USER_FILTERABLE | GROUP_FILTERABLE | CONTACT_FILTERABLE, _OBJECT_SIDE_TABLES,
    ),
    "registration": _Spec(
        "registration_details", "UserRegistrationDetails",
        {"id": ("user_id", "str"), "userPrincipalName": ("upn", "str")},
        frozenset({
            "id", "userPrincipalName", "userDisplayName", "userType", "isAdmin", "isMfaCapable", "isMfaRegistered",
            "isPasswordlessCapable", "isSsprCapable", "isSsprEnabled", "isSsprRegistered",
            "isSystemPreferredAuthenticationMethodEnabled", "methodsRegistered", "systemPreferredAuthenticationMethods",
            "userPreferredMethodForSecondaryAuthentication", "lastUpdatedDateTime",
        }),
    ),
    "audit": _Spec(
        "audit_events", "DirectoryAudit",
        {
            "id": ("id", "str"), "activityDateTime": ("activity_time", "time"),
            "activityDisplayName": ("activity", "str"), "category": ("category", "str"),
        },
        frozenset({
            "id", "activityDateTime", "activityDisplayName", "category", "correlationId", "loggedByService",
            "operationType", "result", "initiatedBy", "targetResources",
        }),
    ),
}

_PATH_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_@.]*$")


class _Compiler:
    """Turns a condition tree into a SQL boolean expression with ``?`` parameters.

    The outer table is always aliased ``o``; lambda variables become aliases of a side table or of
    ``json_each`` over the document, so nested ``any()`` keeps working.
    """

    def __init__(self, spec: _Spec) -> None:
        self.spec = spec
        self.params: list[Any] = []
        self._aliases = 0

    def compile(self, cond: Condition, scope: Mapping[str, tuple[str, str]] | None = None) -> str:
        scope = scope or {}
        if isinstance(cond, And):
            return "(" + " AND ".join(self.compile(c, scope) for c in cond.items) + ")"
        if isinstance(cond, Or):
            return "(" + " OR ".join(self.compile(c, scope) for c in cond.items) + ")"
        if isinstance(cond, Not):
            return f"(NOT {self.compile(cond.item, scope)})"
        if isinstance(cond, Compare):
            expr, kind = self._expr(cond.path, scope)
            return self._compare(expr, kind, cond.op, cond.value)
        if isinstance(cond, StringMatch):
            expr, _kind = self._expr(cond.path, scope)
            escaped = cond.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = {"startswith": f"{escaped}%", "endswith": f"%{escaped}", "contains": f"%{escaped}%"}
            self.params.append(pattern[cond.function])
            # LIKE is case-insensitive for ASCII, as Graph's string functions are.
            return f"({expr} LIKE ? ESCAPE '\\')"
        if isinstance(cond, In):
            if not cond.values:
                return "0"
            return "(" + " OR ".join(self._compare(*self._expr(cond.path, scope), "eq", v) for v in cond.values) + ")"
        if isinstance(cond, AnyOf):
            return self._any(cond, scope)
        raise TypeError(f"not a condition: {cond!r}")

    def _check_top(self, name: str) -> None:
        allowed = self.spec.filterable
        if allowed is not None and name not in allowed:
            raise UnsupportedQueryError(property_name=name, resource=self.spec.resource)
        if not _PATH_PART.match(name):
            raise UnsupportedQueryError(property_name=name, resource=self.spec.resource)

    def _json_path(self, parts: Sequence[str]) -> str:
        for part in parts:
            if not _PATH_PART.match(part):
                raise UnsupportedQueryError(property_name=part, resource=self.spec.resource)
        return "$" + "".join(f'."{p}"' for p in parts)

    def _expr(self, path: tuple[str, ...], scope: Mapping[str, tuple[str, str]]) -> tuple[str, str]:
        head, rest = path[0], path[1:]
        if head in scope:
            alias_expr, mode = scope[head]
            if not rest:
                return alias_expr, "str"
            self.params.append(self._json_path(rest))
            return f"json_extract({alias_expr}, ?)", "str"
        self._check_top(head)
        if not rest and head in self.spec.columns:
            column, kind = self.spec.columns[head]
            return f"o.{column}", kind
        if head in self.spec.side_tables:
            raise UnsupportedQueryError(property_name=head, resource=self.spec.resource)
        self.params.append(self._json_path(path))
        return "json_extract(o.doc, ?)", "json"

    def _compare(self, expr: str, kind: str, op: str, value: Any) -> str:
        sql_op = {"eq": "=", "ne": "IS NOT", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}[op]
        if value is None:
            return f"({expr} IS NULL)" if op == "eq" else f"({expr} IS NOT NULL)"
        if isinstance(value, bool):
            self.params.append(int(value))
            return f"({expr} {sql_op} ?)"
        if isinstance(value, datetime):
            self.params.append(iso_precise(value) if kind == "time" else iso(value))
            return f"({expr} {sql_op} ?)"
        if isinstance(value, str) and kind == "time":
            with contextlib.suppress(ValueError):
                value = iso_precise(parse_datetime(value))
        self.params.append(value)
        collate = " COLLATE NOCASE" if isinstance(value, str) else ""
        return f"({expr} {sql_op} ?{collate})"

    def _any(self, cond: AnyOf, scope: Mapping[str, tuple[str, str]]) -> str:
        self._aliases += 1
        alias = f"a{self._aliases}"
        head = cond.path[0]
        if head in scope:
            outer_expr, _mode = scope[head]
            json_source = outer_expr
            path = self._json_path(cond.path[1:]) if len(cond.path) > 1 else "$"
            self.params.append(path)
            source = f"json_each({json_source}, ?) AS {alias}"
            join = "1"
            value_expr = f"{alias}.value"
        elif len(cond.path) == 1 and head in self.spec.side_tables:
            self._check_top(head)
            table, fk, column = self.spec.side_tables[head]
            source = f"{table} AS {alias}"
            join = f"{alias}.{fk} = o.id"
            value_expr = f"{alias}.{column}"
        else:
            self._check_top(head)
            self.params.append(self._json_path(cond.path))
            source = f"json_each(o.doc, ?) AS {alias}"
            join = "1"
            value_expr = f"{alias}.value"
        inner_scope = {**scope, cond.variable: (value_expr, "lambda")}
        body = self.compile(cond.condition, inner_scope) if cond.condition is not None else "1"
        return f"EXISTS (SELECT 1 FROM {source} WHERE {join} AND {body})"


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


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _new_id() -> str:
    return str(uuid.uuid4())


def _hash_secret(secret: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def _encode_token(prefix: str, number: int) -> str:
    return f"{prefix}{number}"


def _decode_token(token: str | None) -> tuple[str, int]:
    if not token:
        return "", 0
    match = re.fullmatch(r"([so])(\d+)", token)
    if not match:
        raise ValueError("invalid page token")
    return match.group(1), int(match.group(2))


# --------------------------------------------------------------------------------------------
# the store


class CloudStore:
    """The lab tenant's database. Cheap to create; open one per process (connections are per thread).

    Every write method commits on return unless it runs inside :meth:`transaction`, which groups
    many writes into one commit (the seeder creates 10,000 users in well under a second that way).
    """

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

    @classmethod
    def open(cls, *, data_dir: Path) -> CloudStore:
        return cls(Path(data_dir) / DB_NAME)

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
                                "RoleManagement.Read.Directory"),
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

    # -- directory objects

    def create_object(
        self,
        *,
        kind: ObjectKind,
        properties: Mapping[str, Any],
        object_id: str | None = None,
        source_anchor: str | None = None,
    ) -> dict[str, Any]:
        """Create a user, group or org contact from Graph properties; returns it with its ``id``.

        Raises :class:`ConflictError` when ``userPrincipalName`` (users) or one of
        ``proxyAddresses`` is already held by another object, as Entra ID refuses such a write.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        oid = (object_id or _new_id()).lower()
        doc = {k: v for k, v in properties.items() if k != "id" and v is not None}
        doc.setdefault("createdDateTime", iso(utc_now()))
        if kind == "user":
            doc.setdefault("accountEnabled", True)
            doc.setdefault("userType", "Member")
            doc.setdefault("businessPhones", [])
            if source_anchor is not None:
                doc.setdefault("onPremisesImmutableId", source_anchor)
        elif kind == "group":
            doc.setdefault("groupTypes", [])
            doc.setdefault("mailEnabled", False)
            doc.setdefault("securityEnabled", True)
            doc.setdefault("securityIdentifier", _fake_sid())
            doc.setdefault("writebackConfiguration", _default_writeback(doc))
        doc.setdefault("proxyAddresses", [])
        with self.transaction():
            if self._execute("SELECT 1 FROM objects WHERE id = ?", (oid,)).fetchone():
                raise ConflictError(attribute="id", value=oid, existing_id=oid)
            self._check_unique(oid, kind, doc)
            if source_anchor is not None:
                row = self._execute("SELECT id FROM objects WHERE kind = ? AND source_anchor = ?",
                                    (kind, source_anchor)).fetchone()
                if row:
                    raise ConflictError(attribute="sourceAnchor", value=source_anchor, existing_id=row[0])
            cols = self._object_columns(doc)
            self._execute(
                "INSERT INTO objects (id, kind, display_name, upn, mail, mail_nickname, source_anchor, sync_enabled,"
                " mail_enabled, security_enabled, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (oid, kind, *cols[:4], source_anchor, *cols[4:], _dumps(doc)),
            )
            self._write_proxies(oid, doc.get("proxyAddresses") or [])
        return {"id": oid, **doc}

    def create_user(
        self,
        *,
        user_principal_name: str,
        display_name: str,
        mail: str | None = None,
        mail_nickname: str | None = None,
        proxy_addresses: Sequence[str] = (),
        on_premises_sync_enabled: bool | None = None,
        source_anchor: str | None = None,
        object_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Convenience over :meth:`create_object` for the common user properties."""
        props = {
            "userPrincipalName": user_principal_name,
            "displayName": display_name,
            "mail": mail,
            "mailNickname": mail_nickname or user_principal_name.split("@", 1)[0],
            "proxyAddresses": list(proxy_addresses),
            "onPremisesSyncEnabled": on_premises_sync_enabled,
            **(extra or {}),
        }
        return self.create_object(kind="user", properties=props, object_id=object_id, source_anchor=source_anchor)

    def create_group(
        self,
        *,
        display_name: str,
        mail_enabled: bool = False,
        security_enabled: bool = True,
        group_types: Sequence[str] = (),
        mail: str | None = None,
        mail_nickname: str | None = None,
        proxy_addresses: Sequence[str] = (),
        on_premises_sync_enabled: bool | None = None,
        source_anchor: str | None = None,
        object_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Convenience over :meth:`create_object`: a DL is ``mail_enabled=True, security_enabled=False``."""
        props = {
            "displayName": display_name,
            "mailEnabled": mail_enabled,
            "securityEnabled": security_enabled,
            "groupTypes": list(group_types),
            "mail": mail,
            "mailNickname": mail_nickname,
            "proxyAddresses": list(proxy_addresses),
            "onPremisesSyncEnabled": on_premises_sync_enabled,
            **(extra or {}),
        }
        return self.create_object(kind="group", properties=props, object_id=object_id, source_anchor=source_anchor)

    def create_contact(
        self,
        *,
        display_name: str,
        mail: str | None = None,
        mail_nickname: str | None = None,
        proxy_addresses: Sequence[str] = (),
        on_premises_sync_enabled: bool | None = None,
        source_anchor: str | None = None,
        object_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        props = {
            "displayName": display_name,
            "mail": mail,
            "mailNickname": mail_nickname,
            "proxyAddresses": list(proxy_addresses),
            "onPremisesSyncEnabled": on_premises_sync_enabled,
            **(extra or {}),
        }
        return self.create_object(kind="contact", properties=props, object_id=object_id, source_anchor=source_anchor)

    def update_object(
        self, *, object_id: str, properties: Mapping[str, Any], source_anchor: str | None = None
    ) -> dict[str, Any]:
        """Merge Graph properties into an object (a ``None`` value removes the property)."""
        with self.transaction():
            row = self._execute("SELECT kind, doc FROM objects WHERE id = ?", (object_id.lower(),)).fetchone()
            if row is None:
                raise NotFoundError(f"no directory object {object_id}")
            doc = json.loads(row["doc"])
            for key, value in properties.items():
                if key == "id":
                    continue
                if value is None:
                    doc.pop(key, None)
                else:
                    doc[key] = value
            oid = object_id.lower()
            self._check_unique(oid, row["kind"], doc)
            cols = self._object_columns(doc)
            self._execute(
                "UPDATE objects SET display_name = ?, upn = ?, mail = ?, mail_nickname = ?, sync_enabled = ?,"
                " mail_enabled = ?, security_enabled = ?, doc = ?" + (", source_anchor = ?" if source_anchor else "")
                + " WHERE id = ?",
                (*cols, _dumps(doc), *([source_anchor] if source_anchor else []), oid),
            )
            if "proxyAddresses" in properties:
                self._execute("DELETE FROM proxy_addresses WHERE object_id = ?", (oid,))
                self._write_proxies(oid, doc.get("proxyAddresses") or [])
        return {"id": oid, **doc}

    def delete_object(self, *, object_id: str, with_recipient: bool = True) -> bool:
        """Delete an object, its memberships (both ways) and, unless told not to, its recipient."""
        oid = object_id.lower()
        with self.transaction():
            cursor = self._execute("DELETE FROM objects WHERE id = ?", (oid,))
            if cursor.rowcount == 0:
                return False
            self._execute("DELETE FROM proxy_addresses WHERE object_id = ?", (oid,))
            self._execute("DELETE FROM members WHERE group_id = ? OR member_id = ?", (oid, oid))
            self._execute("DELETE FROM auth_methods WHERE user_id = ?", (oid,))
            self._execute("DELETE FROM registration_details WHERE user_id = ?", (oid,))
            if with_recipient:
                for row in self._execute("SELECT id FROM recipients WHERE object_id = ?", (oid,)).fetchall():
                    self.delete_recipient(recipient_id=row[0])
        return True

    def get_object(self, *, object_id: str, kind: ObjectKind | None = None) -> dict[str, Any] | None:
        sql = "SELECT id, kind, doc FROM objects WHERE id = ?"
        params: list[Any] = [object_id.lower()]
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        row = self._execute(sql, params).fetchone()
        return self._object_row(row) if row else None

    def object_kind(self, *, object_id: str) -> str | None:
        row = self._execute("SELECT kind FROM objects WHERE id = ?", (object_id.lower(),)).fetchone()
        return row[0] if row else None

    def get_user(self, *, id_or_upn: str) -> dict[str, Any] | None:
        """A user by object id or userPrincipalName (as ``/users/{id | userPrincipalName}``)."""
        row = self._execute(
            "SELECT id, kind, doc FROM objects WHERE kind = 'user' AND (id = ? OR upn = ?)",
            (id_or_upn.lower(), id_or_upn),
        ).fetchone()
        return self._object_row(row) if row else None

    def find_by_source_anchor(self, *, source_anchor: str, kind: ObjectKind | None = None) -> dict[str, Any] | None:
        """The object Entra Connect joined to this anchor (hard match), or None."""
        sql = "SELECT id, kind, doc FROM objects WHERE source_anchor = ?"
        params: list[Any] = [source_anchor]
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        row = self._execute(sql, params).fetchone()
        return self._object_row(row) if row else None

    def source_anchor_of(self, *, object_id: str) -> str | None:
        row = self._execute("SELECT source_anchor FROM objects WHERE id = ?", (object_id.lower(),)).fetchone()
        return row[0] if row else None

    def find_objects_by_address(self, *, address: str) -> list[dict[str, Any]]:
        """Objects holding ``address`` as mail, UPN or any proxy address (soft-match candidates).

        ``address`` may carry a prefix (``smtp:a@b``); without one, SMTP is assumed.
        """
        if re.match(r"^[A-Za-z0-9]+:", address):
            bare, prefixed = address.split(":", 1)[1], address
        else:
            bare, prefixed = address, f"smtp:{address}"
        rows = self._execute(
            "SELECT id, kind, doc FROM objects WHERE mail = ? OR upn = ? OR id IN"
            " (SELECT object_id FROM proxy_addresses WHERE address = ?)",
            (bare, bare, prefixed),
        ).fetchall()
        return [self._object_row(row) for row in rows]

    def list_objects(
        self,
        *,
        kind: ObjectKind | None,
        where: Condition | None = None,
        order_by: Sequence[tuple[str, bool]] = (),
        limit: int = 100,
        token: str | None = None,
        with_total: bool = False,
        restrict_ids: Sequence[str] | None = None,
        member_of: str | None = None,
        spec_name: str | None = None,
    ) -> Page:
        """One page of directory objects.

        ``where`` is a condition tree; ``order_by`` pairs a property with "descending";
        ``restrict_ids`` limits the listing to those ids; ``member_of`` to a group's direct members.
        ``spec_name`` picks the property rules ("directoryObject" for mixed listings).
        """
        spec = _SPECS[spec_name or (kind or "directoryObject")]
        clauses: list[str] = []
        params: list[Any] = []
        if kind:
            clauses.append("o.kind = ?")
            params.append(kind)
        if member_of is not None:
            clauses.append("o.id IN (SELECT member_id FROM members WHERE group_id = ?)")
            params.append(member_of.lower())
        if restrict_ids is not None:
            clauses.append("o.id IN (SELECT value FROM json_each(?))")
            params.append(_dumps([i.lower() for i in restrict_ids]))
        return self._page(spec, clauses, params, where, order_by, limit, token, with_total, self._object_row,
                          "o.id, o.kind, o.doc")

    def count_objects(self, *, kind: ObjectKind | None, where: Condition | None = None) -> int:
        return self.list_objects(kind=kind, where=where, limit=1, with_total=True).total or 0

    def iter_objects(self, *, kind: ObjectKind | None = None, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every object of a kind, in creation order (for the sync engine's full comparisons)."""
        token: str | None = None
        while True:
            page = self.list_objects(kind=kind, limit=batch, token=token)
            yield from page.items
            if not page.next_token:
                return
            token = page.next_token

    def _page(
        self,
        spec: _Spec,
        clauses: list[str],
        params: list[Any],
        where: Condition | None,
        order_by: Sequence[tuple[str, bool]],
        limit: int,
        token: str | None,
        with_total: bool,
        convert: Any,
        select: str,
    ) -> Page:
        clauses = list(clauses)
        params = list(params)
        if where is not None:
            compiler = _Compiler(spec)
            clauses.append(compiler.compile(where))
            params.extend(compiler.params)
        mode, position = _decode_token(token)
        order_sql: list[str] = []
        order_params: list[Any] = []
        for prop, descending in order_by:
            compiler = _Compiler(spec)
            expr, kind = compiler._expr((prop,), {})
            # time columns hold ISO text: no collation needed, and without one SQLite can use their index
            collate = "" if kind == "time" else " COLLATE NOCASE"
            order_sql.append(f"{expr}{collate} {'DESC' if descending else 'ASC'}")
            order_params.extend(compiler.params)
        base_where = " AND ".join(clauses) if clauses else "1"
        total = None
        if with_total:
            total = self._execute(f"SELECT COUNT(*) FROM {spec.table} AS o WHERE {base_where}", params).fetchone()[0]
        if order_sql:
            # Sorted listings page by offset: a keyset would need the sort values in the token.
            offset = position if mode == "o" else 0
            sql = (f"SELECT {select}, o.seq FROM {spec.table} AS o WHERE {base_where} ORDER BY "
                   f"{', '.join(order_sql)}, o.seq LIMIT ? OFFSET ?")
            rows = self._execute(sql, [*params, *order_params, limit + 1, offset]).fetchall()
            next_token = _encode_token("o", offset + limit) if len(rows) > limit else None
        else:
            after = position if mode == "s" else 0
            sql = (f"SELECT {select}, o.seq FROM {spec.table} AS o WHERE {base_where} AND o.seq > ?"
                   " ORDER BY o.seq LIMIT ?")
            rows = self._execute(sql, [*params, after, limit + 1]).fetchall()
            next_token = _encode_token("s", rows[limit - 1]["seq"]) if len(rows) > limit else None
        return Page(items=[convert(row) for row in rows[:limit]], next_token=next_token, total=total)

    def _object_row(self, row: sqlite3.Row) -> dict[str, Any]:
        doc = json.loads(row["doc"])
        return {"id": row["id"], "@kind": row["kind"], **doc}

    @staticmethod
    def _object_columns(doc: Mapping[str, Any]) -> tuple[Any, ...]:
        def flag(name: str) -> int | None:
            value = doc.get(name)
            return None if value is None else int(bool(value))

        return (
            doc.get("displayName"), doc.get("userPrincipalName"), doc.get("mail"), doc.get("mailNickname"),
            flag("onPremisesSyncEnabled"), flag("mailEnabled"), flag("securityEnabled"),
        )

    def _write_proxies(self, oid: str, addresses: Iterable[str]) -> None:
        self._conn().executemany(
            "INSERT OR IGNORE INTO proxy_addresses (object_id, address) VALUES (?, ?)", [(oid, a) for a in addresses]
        )

    def _check_unique(self, oid: str, kind: str, doc: Mapping[str, Any]) -> None:
        if kind == "user" and doc.get("userPrincipalName"):
            row = self._execute("SELECT id FROM objects WHERE kind = 'user' AND upn = ? AND id != ?",
                                (doc["userPrincipalName"], oid)).fetchone()
            if row:
                raise ConflictError(attribute="userPrincipalName", value=doc["userPrincipalName"], existing_id=row[0])
        for address in doc.get("proxyAddresses") or []:
            row = self._execute("SELECT object_id FROM proxy_addresses WHERE address = ? AND object_id != ? LIMIT 1",
                                (address, oid)).fetchone()
            if row:
                raise ConflictError(attribute="proxyAddresses", value=address, existing_id=row[0])

    # -- memberships

    def add_member(self, *, group_id: str, member_id: str) -> bool:
        """Add a direct member; False when it already was one."""
        cursor = self._execute("INSERT OR IGNORE INTO members (group_id, member_id) VALUES (?, ?)",
                               (group_id.lower(), member_id.lower()))
        return cursor.rowcount > 0

    def remove_member(self, *, group_id: str, member_id: str) -> bool:
        cursor = self._execute("DELETE FROM members WHERE group_id = ? AND member_id = ?",
                               (group_id.lower(), member_id.lower()))
        return cursor.rowcount > 0

    def set_members(self, *, group_id: str, member_ids: Iterable[str]) -> None:
        """Replace a group's direct members."""
        gid = group_id.lower()
        with self.transaction():
            self._execute("DELETE FROM members WHERE group_id = ?", (gid,))
            self._conn().executemany("INSERT OR IGNORE INTO members (group_id, member_id) VALUES (?, ?)",
                                     [(gid, m.lower()) for m in member_ids])

    def member_ids(self, *, group_id: str) -> list[str]:
        rows = self._execute("SELECT member_id FROM members WHERE group_id = ? ORDER BY rowid", (group_id.lower(),))
        return [row[0] for row in rows.fetchall()]

    def group_ids_of(self, *, member_id: str) -> list[str]:
        rows = self._execute("SELECT group_id FROM members WHERE member_id = ? ORDER BY rowid", (member_id.lower(),))
        return [row[0] for row in rows.fetchall()]

    def transitive_member_ids(self, *, group_id: str) -> list[str]:
        """Members at any depth (nested groups included once; cycles are harmless)."""
        return self._closure(group_id.lower(), "SELECT member_id FROM members WHERE group_id = ?")

    def transitive_group_ids_of(self, *, member_id: str) -> list[str]:
        return self._closure(member_id.lower(), "SELECT group_id FROM members WHERE member_id = ?")

    def _closure(self, start: str, sql: str) -> list[str]:
        seen: dict[str, None] = {}
        frontier = [start]
        while frontier:
            nxt: list[str] = []
            for current in frontier:
                for (other,) in self._execute(sql, (current,)).fetchall():
                    if other not in seen and other != start:
                        seen[other] = None
                        nxt.append(other)
            frontier = nxt
        return list(seen)

    # -- Exchange Online recipients

    def create_recipient(
        self,
        *,
        recipient_type_details: str,
        name: str,
        alias: str,
        primary_smtp_address: str,
        email_addresses: Sequence[str] = (),
        object_id: str | None = None,
        display_name: str | None = None,
        is_dir_synced: bool = False,
        properties: Mapping[str, Any] | None = None,
        recipient_id: str | None = None,
    ) -> dict[str, Any]:
        """Create the Exchange Online view of a mail-enabled object.

        ``object_id`` links it to its Entra object (``ExternalDirectoryObjectId``). The
        primary address is added to ``EmailAddresses`` as ``SMTP:`` when missing. Exchange's
        generated values (``LegacyExchangeDN``, ``DistinguishedName``, timestamps) are filled in.
        """
        if recipient_type_details not in _RECIPIENT_TYPE:
            raise ValueError(f"unknown RecipientTypeDetails {recipient_type_details!r}")
        rid = (recipient_id or _new_id()).lower()
        now = utc_now()
        addresses = _normalise_addresses(primary_smtp_address, email_addresses)
        legacy = f"/o=ExchangeLabs/ou={EXCHANGE_ADMIN_GROUP}/cn=Recipients/cn={uuid.uuid4().hex}-{alias[:20]}"
        org = self.initial_domain or "lab.onmicrosoft.com"
        doc: dict[str, Any] = {
            **_recipient_defaults(recipient_type_details),
            "Name": name,
            "DisplayName": display_name or name,
            "Alias": alias,
            "PrimarySmtpAddress": primary_smtp_address,
            "WindowsEmailAddress": primary_smtp_address,
            "EmailAddresses": addresses,
            "RecipientType": _RECIPIENT_TYPE[recipient_type_details],
            "RecipientTypeDetails": recipient_type_details,
            "IsDirSynced": is_dir_synced,
            "ExternalDirectoryObjectId": (object_id or "").lower(),
            "ExchangeObjectId": rid,
            "Guid": rid,
            "LegacyExchangeDN": legacy,
            "OrganizationalUnit": f"{org}/Microsoft Exchange Hosted Organizations/{org}",
            "WhenCreated": iso(now),
            "WhenChanged": iso(now),
            "WhenCreatedUTC": iso(now),
            "WhenChangedUTC": iso(now),
        }
        for key, value in (properties or {}).items():
            doc[key] = value
        doc["DistinguishedName"] = _exchange_dn(doc["Name"], org)
        with self.transaction():
            self._check_recipient_addresses(rid, doc["EmailAddresses"])
            self._execute(
                "INSERT INTO recipients (id, object_id, type_details, name, alias, primary_smtp, dn, legacy_dn, doc)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rid, doc["ExternalDirectoryObjectId"] or None, recipient_type_details, doc["Name"], doc["Alias"],
                 doc["PrimarySmtpAddress"], doc["DistinguishedName"], doc["LegacyExchangeDN"], _dumps(doc)),
            )
            self._write_recipient_addresses(rid, doc["EmailAddresses"])
        return {"@id": rid, **doc}

    def update_recipient(self, *, recipient_id: str, properties: Mapping[str, Any]) -> dict[str, Any]:
        """Merge Exchange properties into a recipient; keeps the indexed columns in step."""
        rid = recipient_id.lower()
        with self.transaction():
            row = self._execute("SELECT doc FROM recipients WHERE id = ?", (rid,)).fetchone()
            if row is None:
                raise NotFoundError(f"no recipient {recipient_id}")
            doc = json.loads(row[0])
            doc.update(properties)
            if "PrimarySmtpAddress" in properties and "EmailAddresses" not in properties:
                doc["EmailAddresses"] = _normalise_addresses(doc["PrimarySmtpAddress"], doc.get("EmailAddresses", []))
            elif "EmailAddresses" in properties:
                primary = next((a[5:] for a in doc["EmailAddresses"] if a.startswith("SMTP:")),
                               doc["PrimarySmtpAddress"])
                doc["PrimarySmtpAddress"] = primary
                doc["EmailAddresses"] = _normalise_addresses(primary, doc["EmailAddresses"])
            doc["WindowsEmailAddress"] = doc["PrimarySmtpAddress"]
            doc["DistinguishedName"] = _exchange_dn(doc["Name"], self.initial_domain or "lab.onmicrosoft.com")
            doc["WhenChanged"] = doc["WhenChangedUTC"] = iso(utc_now())
            self._check_recipient_addresses(rid, doc["EmailAddresses"])
            self._execute(
                "UPDATE recipients SET type_details = ?, name = ?, alias = ?, primary_smtp = ?, dn = ?, object_id = ?,"
                " doc = ? WHERE id = ?",
                (doc["RecipientTypeDetails"], doc["Name"], doc["Alias"], doc["PrimarySmtpAddress"],
                 doc["DistinguishedName"], doc.get("ExternalDirectoryObjectId") or None, _dumps(doc), rid),
            )
            self._execute("DELETE FROM recipient_addresses WHERE recipient_id = ?", (rid,))
            self._write_recipient_addresses(rid, doc["EmailAddresses"])
        return {"@id": rid, **doc}

    def delete_recipient(self, *, recipient_id: str) -> bool:
        """Delete a recipient, its permissions, and every link other recipients hold to it."""
        rid = recipient_id.lower()
        with self.transaction():
            cursor = self._execute("DELETE FROM recipients WHERE id = ?", (rid,))
            if cursor.rowcount == 0:
                return False
            self._execute("DELETE FROM recipient_addresses WHERE recipient_id = ?", (rid,))
            self._execute("DELETE FROM recipient_permissions WHERE recipient_id = ? OR trustee_id = ?", (rid, rid))
            # Only documents that mention the id can link to it; the LIKE keeps this cheap.
            for row in self._execute("SELECT id, doc FROM recipients WHERE doc LIKE ?", (f"%{rid}%",)).fetchall():
                doc = json.loads(row["doc"])
                changed = False
                for prop in RECIPIENT_LINK_PROPERTIES:
                    values = doc.get(prop) or []
                    if rid in values:
                        doc[prop] = [v for v in values if v != rid]
                        changed = True
                if changed:
                    self._execute("UPDATE recipients SET doc = ? WHERE id = ?", (_dumps(doc), row["id"]))
        return True

    def get_recipient(self, *, recipient_id: str) -> dict[str, Any] | None:
        row = self._execute("SELECT id, doc FROM recipients WHERE id = ?", (recipient_id.lower(),)).fetchone()
        return self._recipient_row(row) if row else None

    def get_recipient_by_object_id(self, *, object_id: str) -> dict[str, Any] | None:
        row = self._execute("SELECT id, doc FROM recipients WHERE object_id = ?", (object_id.lower(),)).fetchone()
        return self._recipient_row(row) if row else None

    def recipients_by_ids(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = [i.lower() for i in ids]
        if not wanted:
            return {}
        rows = self._execute("SELECT id, doc FROM recipients WHERE id IN (SELECT value FROM json_each(?))",
                             (_dumps(wanted),)).fetchall()
        return {row["id"]: self._recipient_row(row) for row in rows}

    def recipients_by_object_ids(self, object_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = [i.lower() for i in object_ids]
        if not wanted:
            return {}
        rows = self._execute("SELECT id, doc FROM recipients WHERE object_id IN (SELECT value FROM json_each(?))",
                             (_dumps(wanted),)).fetchall()
        found = {}
        for row in rows:
            rec = self._recipient_row(row)
            found[rec["ExternalDirectoryObjectId"]] = rec
        return found

    def resolve_recipients(self, *, identity: str, types: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Recipients an Exchange ``-Identity`` value names: id, ExternalDirectoryObjectId, Name,
        Alias, DistinguishedName, LegacyExchangeDN or any e-mail address. More than one result
        means the identity is ambiguous."""
        value = identity.strip()
        address = value if re.match(r"^[A-Za-z0-9]+:", value) and "@" in value else f"smtp:{value}"
        rows = self._execute(
            "SELECT id, doc, type_details FROM recipients WHERE id = ? OR object_id = ? OR name = ? OR alias = ?"
            " OR dn = ? OR legacy_dn = ? OR primary_smtp = ?"
            " OR id IN (SELECT recipient_id FROM recipient_addresses WHERE address = ?)",
            (value.lower(), value.lower(), value, value, value, value, value, address),
        ).fetchall()
        allowed = set(types) if types is not None else None
        return [self._recipient_row(row) for row in rows if allowed is None or row["type_details"] in allowed]

    def iter_recipients(self, *, types: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Recipients in creation order, optionally of some RecipientTypeDetails only."""
        if types is None:
            cursor = self._execute("SELECT id, doc FROM recipients ORDER BY seq")
        else:
            cursor = self._execute(
                "SELECT id, doc FROM recipients WHERE type_details IN (SELECT value FROM json_each(?)) ORDER BY seq",
                (_dumps(sorted(types)),),
            )
        for row in cursor:
            yield self._recipient_row(row)

    def _recipient_row(self, row: sqlite3.Row) -> dict[str, Any]:
        return {"@id": row["id"], **json.loads(row["doc"])}

    def _write_recipient_addresses(self, rid: str, addresses: Iterable[str]) -> None:
        self._conn().executemany("INSERT OR IGNORE INTO recipient_addresses (recipient_id, address) VALUES (?, ?)",
                                 [(rid, a) for a in addresses])

    def _check_recipient_addresses(self, rid: str, addresses: Iterable[str]) -> None:
        for address in addresses:
            row = self._execute(
                "SELECT recipient_id FROM recipient_addresses WHERE address = ? AND recipient_id != ? LIMIT 1",
                (address, rid),
            ).fetchone()
            if row:
                raise ConflictError(attribute="EmailAddresses", value=address, existing_id=row[0])

    # -- recipient permissions

    def add_recipient_permission(self, *, recipient_id: str, trustee_id: str, access_right: str = "SendAs") -> bool:
        cursor = self._execute(
            "INSERT OR IGNORE INTO recipient_permissions (recipient_id, trustee_id, access_right) VALUES (?, ?, ?)",
            (recipient_id.lower(), trustee_id.lower(), access_right),
        )
        return cursor.rowcount > 0

    def remove_recipient_permission(self, *, recipient_id: str, trustee_id: str, access_right: str = "SendAs") -> bool:
        cursor = self._execute(
            "DELETE FROM recipient_permissions WHERE recipient_id = ? AND trustee_id = ? AND access_right = ?",
            (recipient_id.lower(), trustee_id.lower(), access_right),
        )
        return cursor.rowcount > 0

    def list_recipient_permissions(
        self, *, recipient_id: str | None = None, trustee_id: str | None = None
    ) -> list[dict[str, str]]:
        clauses, params = ["1"], []
        if recipient_id:
            clauses.append("recipient_id = ?")
            params.append(recipient_id.lower())
        if trustee_id:
            clauses.append("trustee_id = ?")
            params.append(trustee_id.lower())
        rows = self._execute(
            f"SELECT recipient_id, trustee_id, access_right FROM recipient_permissions WHERE {' AND '.join(clauses)}"
            " ORDER BY rowid",
            params,
        ).fetchall()
        return [dict(row) for row in rows]

    # -- accepted domains and connectors

    def add_accepted_domain(
        self, *, domain_name: str, domain_type: str = "Authoritative", default: bool = False, initial: bool = False
    ) -> dict[str, Any]:
        doc = {
            "Name": domain_name.lower(),
            "Identity": domain_name.lower(),
            "DomainName": domain_name.lower(),
            "DomainType": domain_type,
            "Default": default,
            "InitialDomain": initial,
            "MatchSubDomains": False,
            "AddressBookEnabled": domain_type == "Authoritative",
            "IsValid": True,
        }
        with self.transaction():
            if default:
                for row in self._execute("SELECT name, doc FROM accepted_domains").fetchall():
                    other = json.loads(row["doc"])
                    if other.get("Default"):
                        other["Default"] = False
                        self._execute("UPDATE accepted_domains SET doc = ? WHERE name = ?",
                                      (_dumps(other), row["name"]))
            self._execute("INSERT OR REPLACE INTO accepted_domains (name, doc) VALUES (?, ?)",
                          (domain_name.lower(), _dumps(doc)))
        return doc

    def remove_accepted_domain(self, *, domain_name: str) -> bool:
        return self._execute("DELETE FROM accepted_domains WHERE name = ?", (domain_name,)).rowcount > 0

    def list_accepted_domains(self) -> list[dict[str, Any]]:
        rows = self._execute("SELECT doc FROM accepted_domains ORDER BY rowid").fetchall()
        return [json.loads(row[0]) for row in rows]

    def default_domain(self) -> str | None:
        domains = self.list_accepted_domains()
        chosen = next((d for d in domains if d.get("Default")), None) or (domains[0] if domains else None)
        return chosen["DomainName"] if chosen else self.initial_domain

    def add_outbound_connector(self, *, name: str, properties: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """An outbound connector (e.g. the hybrid one routing to on-premises)."""
        doc = {
            "Name": name,
            "Identity": name,
            "Enabled": True,
            "ConnectorType": "OnPremises",
            "ConnectorSource": "HybridWizard",
            "UseMXRecord": False,
            "SmartHosts": [],
            "RecipientDomains": [],
            "TlsSettings": "DomainValidation",
            "TlsDomain": None,
            "IsTransportRuleScoped": False,
            "RouteAllMessagesViaOnPremises": False,
            "CloudServicesMailEnabled": True,
            "AllAcceptedDomains": False,
            "Comment": None,
            **(properties or {}),
        }
        self._execute("INSERT OR REPLACE INTO outbound_connectors (name, doc) VALUES (?, ?)", (name, _dumps(doc)))
        return doc

    def list_outbound_connectors(self) -> list[dict[str, Any]]:
        rows = self._execute("SELECT doc FROM outbound_connectors ORDER BY rowid").fetchall()
        return [json.loads(row[0]) for row in rows]

    # -- authentication methods and the registration report

    def add_auth_method(
        self,
        *,
        user_id: str,
        method_type: str,
        properties: Mapping[str, Any] | None = None,
        method_id: str | None = None,
        odata_type: str | None = None,
    ) -> dict[str, Any]:
        """Register a method (``password``, ``microsoftAuthenticator``, ``phone``, ``fido2``...).

        ``odata_type`` admits a type this lab does not model (Graph adds method types over time; a
        client must keep such a method and mark it, not fail)."""
        if method_type not in AUTH_METHOD_TYPES and not odata_type:
            raise ValueError(f"method_type must be one of {sorted(AUTH_METHOD_TYPES)}")
        # The password method has a fixed, well-known id in Graph.
        mid = method_id or ("28c10230-6103-485e-b985-444c60001490" if method_type == "password" else _new_id())
        doc = {"@odata.type": odata_type or AUTH_METHOD_TYPES[method_type], "id": mid, **(properties or {})}
        if method_type != "password":
            doc.setdefault("createdDateTime", iso(utc_now()))
        self._execute(
            "INSERT OR REPLACE INTO auth_methods (id, user_id, method_type, doc) VALUES (?, ?, ?, ?)",
            (f"{user_id.lower()}:{mid}", user_id.lower(), method_type, _dumps(doc)),
        )
        return doc

    def delete_auth_method(self, *, user_id: str, method_id: str) -> bool:
        return self._execute("DELETE FROM auth_methods WHERE id = ?", (f"{user_id.lower()}:{method_id}",)).rowcount > 0

    def list_auth_methods(self, *, user_id: str) -> list[dict[str, Any]]:
        rows = self._execute("SELECT doc FROM auth_methods WHERE user_id = ? ORDER BY seq", (user_id.lower(),))
        return [json.loads(row[0]) for row in rows.fetchall()]

    def upsert_registration_details(self, *, user_id: str, properties: Mapping[str, Any]) -> dict[str, Any]:
        """Write one ``userRegistrationDetails`` row (the report lags the methods, as in Entra ID)."""
        uid = user_id.lower()
        row = self._execute("SELECT doc FROM registration_details WHERE user_id = ?", (uid,)).fetchone()
        doc = json.loads(row[0]) if row else _registration_defaults()
        doc.update(properties)
        doc["id"] = uid
        doc.setdefault("lastUpdatedDateTime", iso(utc_now()))
        self._execute(
            "INSERT INTO registration_details (user_id, upn, doc) VALUES (?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET"
            " upn = excluded.upn, doc = excluded.doc",
            (uid, doc.get("userPrincipalName"), _dumps(doc)),
        )
        return doc

    def list_registration_details(
        self,
        *,
        where: Condition | None = None,
        order_by: Sequence[tuple[str, bool]] = (),
        limit: int = 100,
        token: str | None = None,
        with_total: bool = False,
    ) -> Page:
        return self._page(_SPECS["registration"], [], [], where, order_by, limit, token, with_total,
                          lambda row: json.loads(row["doc"]), "o.doc")

    # -- directory audit log

    def add_audit_event(
        self,
        *,
        activity_display_name: str,
        category: str,
        activity_date_time: datetime | None = None,
        result: str = "success",
        result_reason: str = "",
        initiated_by: Mapping[str, Any] | None = None,
        target_resources: Sequence[Mapping[str, Any]] = (),
        additional_details: Sequence[Mapping[str, str]] = (),
        logged_by_service: str = "Core Directory",
        operation_type: str = "Add",
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """Record one ``directoryAudit`` entry in Graph's shape."""
        moment = activity_date_time or utc_now()
        eid = event_id or f"Directory_{_new_id()}"
        doc = {
            "id": eid,
            "category": category,
            "correlationId": _new_id(),
            "result": result,
            "resultReason": result_reason,
            "activityDisplayName": activity_display_name,
            "activityDateTime": iso_precise(moment),
            "loggedByService": logged_by_service,
            "operationType": operation_type,
            "initiatedBy": dict(initiated_by) if initiated_by else {"app": None, "user": None},
            "targetResources": [
                {"id": None, "displayName": None, "type": None, "userPrincipalName": None, "groupType": None,
                 "modifiedProperties": [], **dict(t)}
                for t in target_resources
            ],
            "additionalDetails": [dict(d) for d in additional_details],
        }
        self._execute(
            "INSERT INTO audit_events (id, activity_time, activity, category, doc) VALUES (?, ?, ?, ?, ?)",
            (eid, iso_precise(moment), activity_display_name, category, _dumps(doc)),
        )
        return doc

    def list_audit_events(
        self,
        *,
        where: Condition | None = None,
        order_by: Sequence[tuple[str, bool]] = (("activityDateTime", True),),
        limit: int = 100,
        token: str | None = None,
    ) -> Page:
        return self._page(_SPECS["audit"], [], [], where, order_by, limit, token, False,
                          lambda row: json.loads(row["doc"]), "o.doc")

    # -- lab settings and fault injection

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

    # -- Entra Connect server state

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

    # -- maintenance

    def wipe_tenant_data(self) -> None:
        """Delete every object, recipient, report row and log entry (keeps apps, tenant, settings)."""
        with self.transaction():
            for table in ("objects", "proxy_addresses", "members", "recipients", "recipient_addresses",
                          "recipient_permissions", "outbound_connectors", "auth_methods", "registration_details",
                          "audit_events", "sync_runs", "export_errors", "pending_exports"):
                self._execute(f"DELETE FROM {table}")

    def stats(self) -> dict[str, int]:
        counts = {kind: 0 for kind in KINDS}
        for kind, count in self._execute("SELECT kind, COUNT(*) FROM objects GROUP BY kind").fetchall():
            counts[kind] = count
        counts["recipients"] = self._execute("SELECT COUNT(*) FROM recipients").fetchone()[0]
        counts["memberships"] = self._execute("SELECT COUNT(*) FROM members").fetchone()[0]
        counts["audit_events"] = self._execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
        return counts


# --------------------------------------------------------------------------------------------
# helpers


def _fake_sid() -> str:
    parts = [secrets.randbelow(2**32) for _ in range(4)]
    return "S-1-12-1-" + "-".join(str(p) for p in parts)


def _default_writeback(doc: Mapping[str, Any]) -> dict[str, Any]:
    # Entra ID leaves isEnabled null (null counts as enabled for Microsoft 365 groups, disabled
    # for security groups); onPremisesGroupType stays null until someone sets it.
    return {"isEnabled": None, "onPremisesGroupType": None}


def _normalise_addresses(primary: str, addresses: Iterable[str]) -> list[str]:
    """One ``SMTP:`` (the primary), other SMTP addresses demoted to ``smtp:``, order kept."""
    result = [f"SMTP:{primary}"]
    seen = {f"smtp:{primary}".lower()}
    for address in addresses:
        if ":" not in address.split("@", 1)[0]:
            address = f"smtp:{address}"
        prefix, value = address.split(":", 1)
        if prefix.lower() == "smtp":
            address = f"smtp:{value}"
        key = address.lower()
        if key in seen:
            continue
        seen.add(key)
        result.append(address)
    return result


def _exchange_dn(name: str, org: str) -> str:
    escaped = re.sub(r'([,\\#+<>;"=])', r"\\\1", name)
    return f"CN={escaped},OU={org},{EXCHANGE_DN_SUFFIX}"


def _recipient_defaults(type_details: str) -> dict[str, Any]:
    base: dict[str, Any] = {prop: [] for prop in RECIPIENT_LINK_PROPERTIES}
    base.update({
        "HiddenFromAddressListsEnabled": False,
        "RequireSenderAuthenticationEnabled": False,
        "ModerationEnabled": False,
        "SendModerationNotifications": "Always",
        "EmailAddressPolicyEnabled": False,
        "MaxSendSize": "Unlimited",
        "MaxReceiveSize": "Unlimited",
        **{f"CustomAttribute{i}": "" for i in range(1, 16)},
        **{f"ExtensionCustomAttribute{i}": [] for i in range(1, 6)},
    })
    if type_details in GROUP_RECIPIENT_TYPES:
        base.update({
            "GroupType": "Universal, SecurityEnabled" if type_details == "MailUniversalSecurityGroup" else "Universal",
            "RequireSenderAuthenticationEnabled": True,
            "MemberJoinRestriction": "Closed",
            "MemberDepartRestriction": "Closed",
            "ReportToManagerEnabled": False,
            "ReportToOriginatorEnabled": True,
            "SendOofMessageToOriginatorEnabled": False,
            "BypassNestedModerationEnabled": False,
            "HiddenGroupMembershipEnabled": False,
            "Description": [],
            "MailTip": None,
        })
    if type_details in MAIL_USER_RECIPIENT_TYPES or type_details in CONTACT_RECIPIENT_TYPES:
        base["ExternalEmailAddress"] = None
    if type_details in MAILBOX_RECIPIENT_TYPES:
        base.update({"UserPrincipalName": None, "ExchangeGuid": _new_id(), "ForwardingSmtpAddress": None})
    return base


def _registration_defaults() -> dict[str, Any]:
    return {
        "id": None,
        "userPrincipalName": None,
        "userDisplayName": None,
        "userType": "member",
        "isAdmin": False,
        "isSsprRegistered": False,
        "isSsprEnabled": False,
        "isSsprCapable": False,
        "isMfaRegistered": False,
        "isMfaCapable": False,
        "isPasswordlessCapable": False,
        "isSystemPreferredAuthenticationMethodEnabled": True,
        "methodsRegistered": [],
        "systemPreferredAuthenticationMethods": [],
        "userPreferredMethodForSecondaryAuthentication": "none",
        "lastUpdatedDateTime": None,
    }
