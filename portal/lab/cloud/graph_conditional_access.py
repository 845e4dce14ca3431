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

Its data: ``store/conditional_access.py``. No Django here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .api import ApiRequest, ApiResponse
from .errors import graph_error
from .store import CloudStore
from .store.common import iso
from .store.query import And, Compare

SECURITY_DEFAULTS_ID = "00000000-0000-0000-0000-000000000005"
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
            route("GET", rf"/users/{seg}/authentication/requirements", self._per_user_mfa),
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

    def _ca_policies(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, *READ_POLICY)
        self._premium(req)
        by_id = {s["id"]: s for s in self.store.auth_strengths()}
        items = [self._expanded(p, by_id) for p in self.store.ca_policies()]
        return ApiResponse(200, {"@odata.context": self._context(req, "identity/conditionalAccess/policies"),
                                 "value": items})

    def _ca_policy(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, *READ_POLICY)
        self._premium(req)
        doc = self.store.get_ca_policy(policy_id=match.group(1))
        if doc is None:
            raise graph_error(404, "ResourceNotFound", f"Could not find policy with id '{match.group(1)}'.", req)
        by_id = {s["id"]: s for s in self.store.auth_strengths()}
        return ApiResponse(200, {"@odata.context": self._context(req, "identity/conditionalAccess/policies/$entity"),
                                 **self._expanded(doc, by_id)})

    def _ca_strengths(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, *READ_POLICY, "Policy.ReadWrite.AuthenticationMethod")
        return ApiResponse(200, {"@odata.context": self._context(req, "policies/authenticationStrengthPolicies"),
                                 "value": self.store.auth_strengths()})

    def _security_defaults(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, *READ_POLICY)
        return ApiResponse(200, {
            "@odata.context": self._context(req, "policies/identitySecurityDefaultsEnforcementPolicy/$entity"),
            "id": SECURITY_DEFAULTS_ID, "displayName": "Security Defaults",
            "description": "Security defaults is a set of basic identity security mechanisms recommended by "
                           "Microsoft. When enabled, these recommendations will be automatically enforced in your "
                           "organization.",
            "isEnabled": self.store.security_defaults()})

    def _directory_roles(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, *READ_ROLES)
        return ApiResponse(200, {"@odata.context": self._context(req, "directoryRoles"),
                                 "value": self.store.directory_roles()})

    def _directory_role_members(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, *READ_ROLES)
        key = match.group(1).lower()
        by_template = "roleTemplateId=" in match.group(0)
        role = next((r for r in self.store.directory_roles()
                     if (r["roleTemplateId"] if by_template else r["id"]) == key), None)
        if role is None:
            raise graph_error(404, "Request_ResourceNotFound", f"Resource '{match.group(1)}' does not exist or one of "
                              "its queried reference-property objects are not present.", req)
        members = []
        for mid in self.store.role_member_ids(role_id=role["id"]):
            obj = self.store.get_object(object_id=mid)
            if obj is not None:
                members.append({"@odata.type": f"#microsoft.graph.{obj.get('kind', 'user')}", "id": obj["id"],
                                "displayName": obj.get("displayName"),
                                "userPrincipalName": obj.get("userPrincipalName")})
        return ApiResponse(200, {"@odata.context": self._context(req, "directoryObjects"), "value": members})


    def _per_user_mfa(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        """Beta only: ``strongAuthenticationRequirements`` with ``perUserMfaState`` (disabled/enabled/enforced)."""
        if req.version != "beta":
            raise graph_error(400, "BadRequest", "Resource not found for the segment 'requirements'.", req)
        self._require(req, "Policy.Read.All", "UserAuthenticationMethod.Read.All")
        user = self._object_or_404(req, match.group(1), "user")
        return ApiResponse(200, {"@odata.context": self._context(
            req, f"users('{match.group(1)}')/authentication/requirements/$entity"),
            "perUserMfaState": self.store.per_user_mfa(user_id=user["id"])})

    def _sign_ins(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
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
        items, next_seq = self.store.list_sign_ins(limit=self._top(req),
                                        before_seq=int(token) if token else None, **bounds)
        body: dict[str, Any] = {"@odata.context": self._context(req, "auditLogs/signIns")}
        link = self._next_link(req, "/auditLogs/signIns", str(next_seq) if next_seq is not None else None)
        if link:
            body["@odata.nextLink"] = link
        body["value"] = items
        return ApiResponse(200, body)


