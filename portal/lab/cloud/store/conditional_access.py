"""Conditional access and what sits beside it: policies, custom authentication strengths, security defaults,
activated directory roles and their members, sign-ins with their conditional access results."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

# Microsoft's documented built-in strengths: one definition, shared with the portal's evaluation
from portal.connectors.graph.policies import BUILT_IN_STRENGTHS

from .common import iso, utc_now

ROLE_NAMES = {"62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
              "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
              "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
              "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
              "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator"}
SECURITY_DEFAULTS_KEY = "security_defaults_enabled"
POLICY_STATES = ("enabled", "disabled", "enabledForReportingButNotEnforced")


def _strength_doc(sid: str, body: Mapping[str, Any], policy_type: str, when: str) -> dict[str, Any]:
    return {"id": sid, "createdDateTime": when, "modifiedDateTime": when, "displayName": body["displayName"],
            "description": body.get("description"), "policyType": policy_type,
            "requirementsSatisfied": body.get("requirementsSatisfied", "mfa"),
            "allowedCombinations": list(body["allowedCombinations"]), "combinationConfigurations": []}


def _users_block(users: Mapping[str, Any] | None) -> dict[str, Any]:
    users = dict(users or {})
    block: dict[str, Any] = {}
    for key in ("includeUsers", "excludeUsers", "includeGroups", "excludeGroups", "includeRoles", "excludeRoles"):
        block[key] = list(users.get(key) or [])
    block["includeGuestsOrExternalUsers"] = users.get("includeGuestsOrExternalUsers")
    block["excludeGuestsOrExternalUsers"] = users.get("excludeGuestsOrExternalUsers")
    return block


class ConditionalAccessStoreMixin:
    """Conditional access policies and the rest of this surface; part of ``CloudStore``."""

    # -- authentication strengths

    def auth_strengths(self) -> list[dict[str, Any]]:
        when = "2023-01-01T00:00:00Z"
        out = [_strength_doc(sid, body, "builtIn", when) for sid, body in BUILT_IN_STRENGTHS.items()]
        out += [json.loads(r[0]) for r in self._execute("SELECT doc FROM ca_strengths ORDER BY id").fetchall()]
        return out

    def add_auth_strength(self, *, display_name: str, allowed: Sequence[str], strength_id: str | None = None
                          ) -> dict[str, Any]:
        sid = strength_id or str(uuid.uuid4())
        doc = _strength_doc(sid, {"displayName": display_name, "allowedCombinations": list(allowed)}, "custom",
                            iso(utc_now()))
        self._execute("INSERT OR REPLACE INTO ca_strengths (id, doc) VALUES (?, ?)", (sid, json.dumps(doc)))
        return doc

    # -- policies

    def add_ca_policy(self, *, display_name: str, state: str, users: Mapping[str, Any],
                      built_in_controls: Sequence[str] = ("mfa",), strength_id: str | None = None,
                      operator: str = "OR", client_app_types: Sequence[str] = ("all",),
                      locations: Mapping[str, Any] | None = None, platforms: Mapping[str, Any] | None = None,
                      policy_id: str | None = None, include_applications: Sequence[str] = ("All",)) -> dict[str, Any]:
        """One conditional access policy as Graph stores it (the strength is referenced, expanded on read)."""
        if state not in POLICY_STATES:
            raise ValueError(f"unknown policy state {state!r}")
        pid = policy_id or str(uuid.uuid4())
        doc = {
            "id": pid, "templateId": None, "displayName": display_name,
            "createdDateTime": iso(utc_now() - timedelta(days=40)),
            "modifiedDateTime": iso(utc_now() - timedelta(days=2)), "state": state, "sessionControls": None,
            "conditions": {
                "userRiskLevels": [], "signInRiskLevels": [], "clientAppTypes": list(client_app_types),
                "servicePrincipalRiskLevels": [], "insiderRiskLevels": None,
                "platforms": dict(platforms) if platforms else None,
                "locations": dict(locations) if locations else None,
                "devices": None, "clientApplications": None, "times": None, "deviceStates": None,
                "applications": {"includeApplications": list(include_applications), "excludeApplications": [],
                                 "includeUserActions": [], "includeAuthenticationContextClassReferences": [],
                                 "applicationFilter": None},
                "users": _users_block(users),
            },
            "grantControls": {"operator": operator, "builtInControls": list(built_in_controls),
                              "customAuthenticationFactors": [], "termsOfUse": [],
                              "authenticationStrength": {"id": strength_id} if strength_id else None},
        }
        self._execute("INSERT OR REPLACE INTO ca_policies (id, doc) VALUES (?, ?)", (pid, json.dumps(doc)))
        return doc

    def get_ca_policy(self, *, policy_id: str) -> dict[str, Any] | None:
        row = self._execute("SELECT doc FROM ca_policies WHERE id = ?", (policy_id.lower(),)).fetchone()
        return json.loads(row[0]) if row else None

    def set_ca_policy_state(self, *, policy_id: str, state: str) -> None:
        doc = self.get_ca_policy(policy_id=policy_id)
        if doc is None or state not in POLICY_STATES:
            raise ValueError(f"no policy {policy_id}, or unknown state {state!r}")
        doc["state"] = state
        self._execute("UPDATE ca_policies SET doc = ? WHERE id = ?", (json.dumps(doc), policy_id.lower()))

    def ca_policies(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self._execute("SELECT doc FROM ca_policies ORDER BY seq").fetchall()]

    # -- security defaults

    def security_defaults(self) -> bool:
        return self._meta(SECURITY_DEFAULTS_KEY) == "1"

    def set_security_defaults(self, enabled: bool) -> None:
        self._set_meta(SECURITY_DEFAULTS_KEY, "1" if enabled else "0")

    # -- legacy per-user MFA (beta /users/{id}/authentication/requirements)

    def per_user_mfa(self, *, user_id: str) -> str:
        row = self._execute("SELECT state FROM per_user_mfa WHERE user_id = ?", (user_id.lower(),)).fetchone()
        return row[0] if row else "disabled"

    def set_per_user_mfa(self, *, user_id: str, state: str) -> None:
        if state not in ("disabled", "enabled", "enforced"):
            raise ValueError(f"unknown per-user MFA state {state!r}")
        self._execute("INSERT OR REPLACE INTO per_user_mfa (user_id, state) VALUES (?, ?)", (user_id.lower(), state))

    # -- directory roles

    def activate_role(self, *, template_id: str, member_ids: Iterable[str] = ()) -> dict[str, Any]:
        """An activated directory role (its object id differs from its template id, as in Entra ID) and members."""
        row = self._execute("SELECT doc FROM directory_roles WHERE template_id = ?", (template_id,)).fetchone()
        if row:
            doc = json.loads(row[0])
        else:
            doc = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lab-role/{template_id}")),
                   "displayName": ROLE_NAMES.get(template_id, template_id), "description": None,
                   "roleTemplateId": template_id}
            self._execute("INSERT INTO directory_roles (id, template_id, doc) VALUES (?, ?, ?)",
                          (doc["id"], template_id, json.dumps(doc)))
        for mid in member_ids:
            self._execute("INSERT OR IGNORE INTO directory_role_members (role_id, member_id) VALUES (?, ?)",
                          (doc["id"], mid.lower()))
        return doc

    def directory_roles(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self._execute("SELECT doc FROM directory_roles ORDER BY id").fetchall()]

    def role_member_ids(self, *, role_id: str) -> list[str]:
        return [r[0] for r in self._execute("SELECT member_id FROM directory_role_members WHERE role_id = ? "
                                            "ORDER BY member_id", (role_id,)).fetchall()]

    # -- sign-ins

    def add_sign_in(self, *, user: Mapping[str, Any], when: Any, applied: Sequence[Mapping[str, Any]],
                    app: str = "Office 365 Exchange Online", client_app: str = "Browser") -> dict[str, Any]:
        """One interactive sign-in and the conditional access results it recorded (``applied``: id, name, result)."""
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
                {"id": a["id"], "displayName": a.get("displayName"),
                 "enforcedGrantControls": list(a.get("grant") or []), "enforcedSessionControls": [],
                 "result": a["result"]} for a in applied],
        }
        self._execute("INSERT INTO ca_signins (id, created, user_id, doc) VALUES (?, ?, ?, ?)",
                       (doc["id"], created, user["id"].lower(), json.dumps(doc)))
        return doc

    def list_sign_ins(self, *, since: str | None = None, until: str | None = None,
                      user_id: str | None = None, limit: int = 100, before_seq: int | None = None
                      ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first; returns the page and the seq to continue below (None at the end)."""
        sql, args = "SELECT seq, doc FROM ca_signins WHERE 1=1", []
        for clause, value in (("created >= ?", since), ("created <= ?", until), ("user_id = ?", user_id),
                              ("seq < ?", before_seq)):
            if value is not None:
                sql += f" AND {clause}"
                args.append(value)
        rows = self._execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return [json.loads(r[1]) for r in rows], (rows[-1][0] if more and rows else None)
