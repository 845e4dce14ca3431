"""Query conditions (built by the service's OData parser) and their compiler to SQL."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .common import UnsupportedQueryError, iso, iso_precise, parse_datetime

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
