"""Lab surface: conditional access and the policies around MFA, as Graph serves them.

Endpoints (Graph v1.0 and beta, the shapes of Microsoft's resource documentation):

- ``GET /identity/conditionalAccess/policies`` and ``/{id}`` (Policy.Read.All; Entra ID P1): the
  ``conditionalAccessPolicy`` resource: ``state`` (``enabled`` / ``disabled`` /
  ``enabledForReportingButNotEnforced``), ``conditions.users`` (include/exclude users, groups, roles,
  guests or external users), ``conditions.applications``/``locations``/``platforms``/``clientAppTypes``,
  ``grantControls`` (``operator``, ``builtInControls``, ``authenticationStrength`` with its
  ``allowedCombinations`` inline, as the list answers);
- ``GET /policies/authenticationStrengthPolicies`` (built-in ...0002 multifactor, ...0003 passwordless,
  ...0004 phishing-resistant, plus custom ones);
- ``GET /policies/identitySecurityDefaultsEnforcementPolicy`` (``isEnabled``);
- ``GET /directoryRoles`` and ``/directoryRoles/{id}/members`` (activated roles carry their
  ``roleTemplateId``, which is what ``includeRoles`` names);
- ``GET /auditLogs/signIns`` (AuditLog.Read.All; P1): the ``signIn`` resource with
  ``appliedConditionalAccessPolicies`` (``result``: ``success``, ``failure``, ``notApplied``, ``notEnabled``,
  and for report-only policies ``reportOnlySuccess``, ``reportOnlyFailure``, ``reportOnlyNotApplied``,
  ``reportOnlyInterrupted``), newest first; ``$filter`` on ``createdDateTime`` and ``userId``; ``$top``
  paging with ``@odata.nextLink``.

Its data lives in tables of its own in the lab store's database (created on first use), so the store's
schema is untouched. No Django here.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

# Microsoft's documented built-in strengths: one definition, shared with the portal's evaluation
from portal.connectors.graph_policies import BUILT_IN_STRENGTHS, STRENGTH_PASSWORDLESS, STRENGTH_PHISHING_RESISTANT

from .store import CloudStore, iso, utc_now

# --------------------------------------------------------------------------------------------
# well-known ids

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
SECURITY_ADMIN = "194ae4cb-b126-40b2-bd5b-6091b380977d"
HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
ROLE_NAMES = {GLOBAL_ADMIN: "Global Administrator", SECURITY_ADMIN: "Security Administrator",
              HELPDESK_ADMIN: "Helpdesk Administrator", EXCHANGE_ADMIN: "Exchange Administrator",
              USER_ADMIN: "User Administrator"}
ROLE_TEMPLATES = {name: tid for tid, name in ROLE_NAMES.items()}

SECURITY_DEFAULTS_ID = "00000000-0000-0000-0000-000000000005"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ca_policies (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                                        doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ca_strengths (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS directory_roles (id TEXT PRIMARY KEY, template_id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ca_signins (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                                       created TEXT NOT NULL, user_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS directory_role_members (role_id TEXT NOT NULL, member_id TEXT NOT NULL,
                                                   PRIMARY KEY (role_id, member_id));
"""
TABLES = ("ca_policies", "ca_strengths", "directory_roles", "directory_role_members", "ca_signins")
SECURITY_DEFAULTS_KEY = "security_defaults_enabled"


# --------------------------------------------------------------------------------------------
# store side (functions over a CloudStore, so the store's class stays as it is)


def ensure_schema(store: CloudStore) -> None:
    if not getattr(store._local, "ca_schema", False):
        # one statement at a time: executescript would commit a transaction the caller has open
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                store._execute(statement)
        store._local.ca_schema = True


def wipe(store: CloudStore) -> None:
    ensure_schema(store)
    with store.transaction():
        for table in TABLES:
            store._execute(f"DELETE FROM {table}")


def _strength_doc(sid: str, body: Mapping[str, Any], policy_type: str, when: str) -> dict[str, Any]:
    return {"id": sid, "createdDateTime": when, "modifiedDateTime": when, "displayName": body["displayName"],
            "description": body.get("description"), "policyType": policy_type,
            "requirementsSatisfied": body.get("requirementsSatisfied", "mfa"),
            "allowedCombinations": list(body["allowedCombinations"]), "combinationConfigurations": []}


def strengths(store: CloudStore) -> list[dict[str, Any]]:
    ensure_schema(store)
    when = "2023-01-01T00:00:00Z"
    out = [_strength_doc(sid, body, "builtIn", when) for sid, body in BUILT_IN_STRENGTHS.items()]
    out += [json.loads(r[0]) for r in store._execute("SELECT doc FROM ca_strengths ORDER BY id").fetchall()]
    return out


def add_strength(store: CloudStore, *, display_name: str, allowed: Sequence[str], strength_id: str | None = None
                 ) -> dict[str, Any]:
    ensure_schema(store)
    sid = strength_id or str(uuid.uuid4())
    doc = _strength_doc(sid, {"displayName": display_name, "allowedCombinations": list(allowed)}, "custom",
                        iso(utc_now()))
    store._execute("INSERT OR REPLACE INTO ca_strengths (id, doc) VALUES (?, ?)", (sid, json.dumps(doc)))
    return doc


def _users_block(users: Mapping[str, Any] | None) -> dict[str, Any]:
    users = dict(users or {})
    block: dict[str, Any] = {}
    for key in ("includeUsers", "excludeUsers", "includeGroups", "excludeGroups", "includeRoles", "excludeRoles"):
        block[key] = list(users.get(key) or [])
    block["includeGuestsOrExternalUsers"] = users.get("includeGuestsOrExternalUsers")
    block["excludeGuestsOrExternalUsers"] = users.get("excludeGuestsOrExternalUsers")
    return block


def add_policy(store: CloudStore, *, display_name: str, state: str, users: Mapping[str, Any],
               built_in_controls: Sequence[str] = ("mfa",), strength_id: str | None = None, operator: str = "OR",
               client_app_types: Sequence[str] = ("all",), locations: Mapping[str, Any] | None = None,
               platforms: Mapping[str, Any] | None = None, policy_id: str | None = None,
               include_applications: Sequence[str] = ("All",)) -> dict[str, Any]:
    """One conditional access policy as Graph stores it (the strength is referenced, expanded on read)."""
    if state not in ("enabled", "disabled", "enabledForReportingButNotEnforced"):
        raise ValueError(f"unknown policy state {state!r}")
    ensure_schema(store)
    pid = policy_id or str(uuid.uuid4())
    when = iso(utc_now() - timedelta(days=40))
    doc = {
        "id": pid, "templateId": None, "displayName": display_name, "createdDateTime": when,
        "modifiedDateTime": iso(utc_now() - timedelta(days=2)), "state": state,
        "sessionControls": None,
        "conditions": {
            "userRiskLevels": [], "signInRiskLevels": [], "clientAppTypes": list(client_app_types),
            "servicePrincipalRiskLevels": [], "insiderRiskLevels": None, "platforms": dict(platforms) if platforms
            else None, "locations": dict(locations) if locations else None, "devices": None, "clientApplications": None,
            "times": None, "deviceStates": None,
            "applications": {"includeApplications": list(include_applications), "excludeApplications": [],
                             "includeUserActions": [], "includeAuthenticationContextClassReferences": [],
                             "applicationFilter": None},
            "users": _users_block(users),
        },
        "grantControls": {"operator": operator, "builtInControls": [c for c in built_in_controls],
                          "customAuthenticationFactors": [], "termsOfUse": [],
                          "authenticationStrength": {"id": strength_id} if strength_id else None},
    }
    store._execute("INSERT OR REPLACE INTO ca_policies (id, doc) VALUES (?, ?)", (pid, json.dumps(doc)))
    return doc


def set_policy_state(store: CloudStore, *, policy_id: str, state: str) -> None:
    doc = get_policy(store, policy_id=policy_id)
    if doc is None:
        raise KeyError(policy_id)
    doc["state"] = state
    store._execute("UPDATE ca_policies SET doc = ? WHERE id = ?", (json.dumps(doc), policy_id))


def get_policy(store: CloudStore, *, policy_id: str) -> dict[str, Any] | None:
    ensure_schema(store)
    row = store._execute("SELECT doc FROM ca_policies WHERE id = ?", (policy_id.lower(),)).fetchone()
    return json.loads(row[0]) if row else None


def policies(store: CloudStore) -> list[dict[str, Any]]:
    ensure_schema(store)
    return [json.loads(r[0]) for r in store._execute("SELECT doc FROM ca_policies ORDER BY seq").fetchall()]


def security_defaults(store: CloudStore) -> bool:
    return store._meta(SECURITY_DEFAULTS_KEY) == "1"


def set_security_defaults(store: CloudStore, enabled: bool) -> None:
    store._set_meta(SECURITY_DEFAULTS_KEY, "1" if enabled else "0")


def activate_role(store: CloudStore, *, template_id: str, member_ids: Iterable[str] = ()) -> dict[str, Any]:
    """An activated directory role (its object id differs from its template id, as in Entra ID) and members."""
    ensure_schema(store)
    row = store._execute("SELECT doc FROM directory_roles WHERE template_id = ?", (template_id,)).fetchone()
    if row:
        doc = json.loads(row[0])
    else:
        doc = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lab-role/{template_id}")),
               "displayName": ROLE_NAMES.get(template_id, template_id), "description": None,
               "roleTemplateId": template_id}
        store._execute("INSERT INTO directory_roles (id, template_id, doc) VALUES (?, ?, ?)",
                       (doc["id"], template_id, json.dumps(doc)))
    for mid in member_ids:
        store._execute("INSERT OR IGNORE INTO directory_role_members (role_id, member_id) VALUES (?, ?)",
                       (doc["id"], mid.lower()))
    return doc


def roles(store: CloudStore) -> list[dict[str, Any]]:
    ensure_schema(store)
    return [json.loads(r[0]) for r in store._execute("SELECT doc FROM directory_roles ORDER BY id").fetchall()]


def role_member_ids(store: CloudStore, *, role_id: str) -> list[str]:
    ensure_schema(store)
    return [r[0] for r in store._execute("SELECT member_id FROM directory_role_members WHERE role_id = ? "
                                         "ORDER BY member_id", (role_id,)).fetchall()]


def add_sign_in(store: CloudStore, *, user: Mapping[str, Any], when: Any, applied: Sequence[Mapping[str, Any]],
                app: str = "Office 365 Exchange Online", client_app: str = "Browser") -> dict[str, Any]:
    """One interactive sign-in and the conditional access results it recorded (``applied``: id, name, result)."""
    ensure_schema(store)
    created = iso(when)
    failed = any(a["result"] == "failure" for a in applied)
    doc = {
        "id": str(uuid.uuid4()), "createdDateTime": created, "userDisplayName": user.get("displayName"),
        "userPrincipalName": user.get("userPrincipalName"), "userId": user["id"],
        "appId": "00000002-0000-0ff1-ce00-000000000000", "appDisplayName": app, "ipAddress": "203.0.113.7",
        "clientAppUsed": client_app, "correlationId": str(uuid.uuid4()), "isInteractive": True,
        "conditionalAccessStatus": "failure" if failed else "success" if any(
            a["result"] == "success" for a in applied) else "notApplied",
        "status": {"errorCode": 53000 if failed else 0, "failureReason": "Other." if not failed else
                   "Device is not in required device state.", "additionalDetails": None},
        "appliedConditionalAccessPolicies": [
            {"id": a["id"], "displayName": a.get("displayName"), "enforcedGrantControls": list(a.get("grant") or []),
             "enforcedSessionControls": [], "result": a["result"]} for a in applied],
    }
    store._execute("INSERT INTO ca_signins (id, created, user_id, doc) VALUES (?, ?, ?, ?)",
                   (doc["id"], created, user["id"].lower(), json.dumps(doc)))
    return doc


def list_sign_ins(store: CloudStore, *, since: str | None = None, until: str | None = None,
                  user_id: str | None = None, limit: int = 100, before_seq: int | None = None
                  ) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first; returns the page and the seq to continue below (None at the end)."""
    ensure_schema(store)
    sql, args = "SELECT seq, doc FROM ca_signins WHERE 1=1", []
    for clause, value in (("created >= ?", since), ("created <= ?", until), ("user_id = ?", user_id),
                          ("seq < ?", before_seq)):
        if value is not None:
            sql += f" AND {clause}"
            args.append(value)
    rows = store._execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, limit + 1)).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return [json.loads(r[1]) for r in rows], (rows[-1][0] if more and rows else None)


# --------------------------------------------------------------------------------------------
# the HTTP surface (a mixin of LabCloud: uses its _require, _premium, _context, _object_or_404, _render helpers)

READ_POLICY = ("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess")
READ_ROLES = ("RoleManagement.Read.Directory", "RoleManagement.Read.All", "Directory.Read.All")


class GraphConditionalAccessMixin:
    """Conditional access, authentication strengths, security defaults, directory roles."""

    store: CloudStore

    def conditional_access_routes(self, route: Callable[..., Any], seg: str) -> list[Any]:
        return [
            route("GET", r"/identity/conditionalAccess/policies", self._ca_policies),
            route("GET", rf"/identity/conditionalAccess/policies/{seg}", self._ca_policy),
            route("GET", r"/policies/authenticationStrengthPolicies", self._ca_strengths),
            route("GET", r"/identity/conditionalAccess/authenticationStrength/policies", self._ca_strengths),
            route("GET", r"/policies/identitySecurityDefaultsEnforcementPolicy", self._security_defaults),
            route("GET", r"/directoryRoles", self._directory_roles),
            route("GET", rf"/directoryRoles/{seg}/members", self._directory_role_members),
            route("GET", rf"/directoryRoles/roleTemplateId={seg}/members", self._directory_role_members),
            route("GET", r"/auditLogs/signIns", self._sign_ins),
        ]

    def _expanded(self, doc: dict[str, Any], by_id: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        grant = doc.get("grantControls") or {}
        ref = grant.get("authenticationStrength")
        if ref and ref.get("id"):
            strength = by_id.get(ref["id"])
            # a strength deleted since the policy named it: Graph answers the reference alone
            doc = {**doc, "grantControls": {**grant, "authenticationStrength@odata.context": "",
                                            "authenticationStrength": strength or {"id": ref["id"]}}}
        return doc

    def _ca_policies(self, req: Any, match: re.Match[str]) -> Any:
        from .app import ApiResponse

        self._require(req, *READ_POLICY)
        self._premium(req)
        by_id = {s["id"]: s for s in strengths(self.store)}
        items = [self._expanded(p, by_id) for p in policies(self.store)]
        return ApiResponse(200, {"@odata.context": self._context(req, "identity/conditionalAccess/policies"),
                                 "value": items})

    def _ca_policy(self, req: Any, match: re.Match[str]) -> Any:
        from .app import ApiResponse, graph_error

        self._require(req, *READ_POLICY)
        self._premium(req)
        doc = get_policy(self.store, policy_id=match.group(1))
        if doc is None:
            raise graph_error(404, "ResourceNotFound", f"Could not find policy with id '{match.group(1)}'.", req)
        by_id = {s["id"]: s for s in strengths(self.store)}
        return ApiResponse(200, {"@odata.context": self._context(req, "identity/conditionalAccess/policies/$entity"),
                                 **self._expanded(doc, by_id)})

    def _ca_strengths(self, req: Any, match: re.Match[str]) -> Any:
        from .app import ApiResponse

        self._require(req, *READ_POLICY, "Policy.ReadWrite.AuthenticationMethod")
        return ApiResponse(200, {"@odata.context": self._context(req, "policies/authenticationStrengthPolicies"),
                                 "value": strengths(self.store)})

    def _security_defaults(self, req: Any, match: re.Match[str]) -> Any:
        from .app import ApiResponse

        self._require(req, *READ_POLICY)
        return ApiResponse(200, {
            "@odata.context": self._context(req, "policies/identitySecurityDefaultsEnforcementPolicy/$entity"),
            "id": SECURITY_DEFAULTS_ID, "displayName": "Security Defaults",
            "description": "Security defaults is a set of basic identity security mechanisms recommended by "
                           "Microsoft. When enabled, these recommendations will be automatically enforced in your "
                           "organization.",
            "isEnabled": security_defaults(self.store)})

    def _directory_roles(self, req: Any, match: re.Match[str]) -> Any:
        from .app import ApiResponse

        self._require(req, *READ_ROLES)
        return ApiResponse(200, {"@odata.context": self._context(req, "directoryRoles"), "value": roles(self.store)})

    def _directory_role_members(self, req: Any, match: re.Match[str]) -> Any:
        from .app import ApiResponse, graph_error

        self._require(req, *READ_ROLES)
        key = match.group(1).lower()
        by_template = "roleTemplateId=" in match.group(0)
        role = next((r for r in roles(self.store) if (r["roleTemplateId"] if by_template else r["id"]) == key), None)
        if role is None:
            raise graph_error(404, "Request_ResourceNotFound", f"Resource '{match.group(1)}' does not exist or one of "
                              "its queried reference-property objects are not present.", req)
        members = []
        for mid in role_member_ids(self.store, role_id=role["id"]):
            obj = self.store.get_object(object_id=mid)
            if obj is not None:
                members.append({"@odata.type": f"#microsoft.graph.{obj.get('kind', 'user')}", "id": obj["id"],
                                "displayName": obj.get("displayName"),
                                "userPrincipalName": obj.get("userPrincipalName")})
        return ApiResponse(200, {"@odata.context": self._context(req, "directoryObjects"), "value": members})


    def _sign_ins(self, req: Any, match: re.Match[str]) -> Any:
        from .app import ApiResponse, graph_error
        from .store import And, Compare

        self._require(req, "AuditLog.Read.All")
        self._premium(req)
        where = self._filter(req, directory=False)
        bounds: dict[str, Any] = {}
        for cond in (where.items if isinstance(where, And) else (where,) if where is not None else ()):
            path = "/".join(cond.path).lower() if isinstance(cond, Compare) else ""
            if path == "createddatetime" and cond.op in ("ge", "gt", "le", "lt"):
                value = cond.value if isinstance(cond.value, str) else iso(cond.value)
                bounds["since" if cond.op in ("ge", "gt") else "until"] = value
            elif path == "userid" and cond.op == "eq":
                bounds["user_id"] = str(cond.value).lower()
            else:
                # the lab filters sign-ins on these two properties only; say so as Graph says an unsupported one
                raise graph_error(400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause "
                                  "specified for property of resource 'signIn'.", req)
        token = self._skiptoken(req)
        items, next_seq = list_sign_ins(self.store, limit=self._top(req),
                                        before_seq=int(token) if token else None, **bounds)
        body: dict[str, Any] = {"@odata.context": self._context(req, "auditLogs/signIns")}
        link = self._next_link(req, "/auditLogs/signIns", str(next_seq) if next_seq is not None else None)
        if link:
            body["@odata.nextLink"] = link
        body["value"] = items
        return ApiResponse(200, body)


# --------------------------------------------------------------------------------------------
# the seeded policies (shared by the scenario seed and the MFA tenant)


def seed_conditional_access(store: CloudStore, *, users: Sequence[Mapping[str, Any]],
                            admins: Mapping[str, str], guests: Sequence[str] = (), gone_user_id: str | None = None,
                            gone_group_id: str | None = None) -> dict[str, Any]:
    """Roles for ``admins`` (user id -> role template id), groups (one nested), and the policies:

    - *Admins: phishing-resistant MFA* (enabled; roles; strength ...0004; the break-glass group excluded);
    - *Pilot: require MFA* (enabled; the pilot group, whose members include a nested group; a deleted
      user and a deleted group named in its exclusions, as tenants accumulate);
    - *All users: require MFA* (report-only; everyone but the break-glass group and guests);
    - *Finance: passwordless MFA* (disabled; the first department's group; strength ...0003);
    - *Guests: require MFA* (enabled; guests or external users);
    - *Block legacy authentication* (enabled; a block, not an MFA demand).
    """
    ensure_schema(store)
    ids = [u["id"] for u in users]
    out: dict[str, Any] = {"roles": {}, "groups": {}, "policies": {}}
    with store.transaction():
        for template in sorted({GLOBAL_ADMIN, SECURITY_ADMIN, *admins.values()}):
            members = [uid for uid, t in admins.items() if t == template]
            role = activate_role(store, template_id=template, member_ids=members)
            out["roles"][ROLE_NAMES[template]] = {"id": role["id"], "template": template, "members": members}
        nested = store.create_group(display_name="CA pilot - wave 2 (nested)", security_enabled=True)
        nested_members = ids[1::9][:6]
        store.set_members(group_id=nested["id"], member_ids=nested_members)
        pilot = store.create_group(display_name="CA pilot", security_enabled=True)
        pilot_direct = ids[0::7][:8]
        store.set_members(group_id=pilot["id"], member_ids=[*pilot_direct, nested["id"]])
        breakglass = store.create_group(display_name="CA exclusions (break glass)", security_enabled=True)
        excluded = [pilot_direct[0]] if pilot_direct else []
        store.set_members(group_id=breakglass["id"], member_ids=excluded)
        out["groups"] = {"pilot": pilot["id"], "nested": nested["id"], "breakglass": breakglass["id"],
                         "pilot_direct": pilot_direct, "nested_members": nested_members, "excluded": excluded}
        departments = sorted({u.get("department") for u in users if u.get("department")})
        finance = None
        if departments:
            finance = store.create_group(display_name=f"CA {departments[0]} (dynamic stand-in)",
                                         security_enabled=True)
            store.set_members(group_id=finance["id"],
                              member_ids=[u["id"] for u in users if u.get("department") == departments[0]])
            out["groups"]["finance"] = finance["id"]
        guest_block = {"guestOrExternalUserTypes": "internalGuest,b2bCollaborationGuest,b2bCollaborationMember",
                       "externalTenants": {"@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants",
                                           "membershipKind": "all"}}
        made = {
            "admins": add_policy(store, display_name="Admins: phishing-resistant MFA", state="enabled",
                                 users={"includeRoles": [GLOBAL_ADMIN, SECURITY_ADMIN, HELPDESK_ADMIN],
                                        "excludeGroups": [breakglass["id"]]},
                                 built_in_controls=(), strength_id=STRENGTH_PHISHING_RESISTANT),
            "pilot": add_policy(store, display_name="Pilot: require MFA", state="enabled",
                                users={"includeGroups": [pilot["id"]],
                                       "excludeGroups": [breakglass["id"], *([gone_group_id] if gone_group_id else [])],
                                       "excludeUsers": [gone_user_id] if gone_user_id else []},
                                locations={"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}),
            "all_users": add_policy(store, display_name="All users: require MFA",
                                    state="enabledForReportingButNotEnforced",
                                    users={"includeUsers": ["All"], "excludeGroups": [breakglass["id"]],
                                           "excludeGuestsOrExternalUsers": guest_block}),
            "guests": add_policy(store, display_name="Guests: require MFA", state="enabled",
                                 users={"includeGuestsOrExternalUsers": guest_block}),
            "legacy": add_policy(store, display_name="Block legacy authentication", state="enabled",
                                 users={"includeUsers": ["All"], "excludeGroups": [breakglass["id"]]},
                                 built_in_controls=("block",), client_app_types=("exchangeActiveSync", "other")),
        }
        if finance is not None:
            made["finance"] = add_policy(store, display_name="Finance: passwordless MFA", state="disabled",
                                         users={"includeGroups": [finance["id"]]}, built_in_controls=(),
                                         strength_id=STRENGTH_PASSWORDLESS)
        out["policies"] = {k: v["id"] for k, v in made.items()}
        out["guests"] = list(guests)
    return out


def seed_sign_ins(store: CloudStore, *, users: Sequence[Mapping[str, Any]], able: Mapping[str, bool],
                  report_only: Mapping[str, str], block: Mapping[str, str] | None = None, limit: int = 2_000
                  ) -> int:
    """Sign-ins of the last days under a report-only MFA policy (``report_only``: id, displayName), as Entra ID
    logs them: a user who already answered MFA in the session shows ``reportOnlySuccess``, one who would have
    been prompted ``reportOnlyInterrupted`` (users without a usable method always are: they would be sent to
    register). Users absent from ``able`` get no sign-in (no evidence)."""
    now = utc_now().replace(microsecond=0)
    made = 0
    with store.transaction():
        for n, user in enumerate(u for u in users if u["id"] in able):
            if made >= limit:
                break
            result = "reportOnlySuccess" if able[user["id"]] and n % 2 == 0 else "reportOnlyInterrupted"
            applied = [{"id": report_only["id"], "displayName": report_only["displayName"], "grant": ["Mfa"],
                        "result": result}]
            if block:
                applied.append({"id": block["id"], "displayName": block["displayName"], "result": "notApplied"})
            add_sign_in(store, user=user, when=now - timedelta(hours=1 + n % 72), applied=applied)
            made += 1
    return made
