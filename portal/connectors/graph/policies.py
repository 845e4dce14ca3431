"""Graph reads of what decides when MFA is asked: conditional access, authentication strengths, security
defaults, directory roles, sign-in logs. A mixin of :class:`.client.EntraGraph` (it uses the connector's
``_pages``/``_get``/``_config``); the values it returns are defined here too.

Requests are built with msgraph-sdk's request builders and read as JSON, like the rest of the connector.
Permissions: Policy.Read.All (policies, strengths, security defaults), RoleManagement.Read.Directory
(roles). Conditional access needs Entra ID P1: without it the read raises ``LicenceRequired``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Microsoft's built-in authentication strengths (read-only in every tenant; Graph
# /policies/authenticationStrengthPolicies lists them with these ids and allowedCombinations).
STRENGTH_MFA = "00000000-0000-0000-0000-000000000002"
STRENGTH_PASSWORDLESS = "00000000-0000-0000-0000-000000000003"
STRENGTH_PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004"

_PHISHING_RESISTANT = ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"]
_PASSWORDLESS = [*_PHISHING_RESISTANT, "deviceBasedPush"]
_MFA = [*_PASSWORDLESS, "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse",
        "password,microsoftAuthenticatorPush", "password,softwareOath", "password,hardwareOath", "password,sms",
        "password,voice", "federatedMultiFactor", "microsoftAuthenticatorPush,federatedSingleFactor",
        "softwareOath,federatedSingleFactor", "hardwareOath,federatedSingleFactor", "sms,federatedSingleFactor",
        "voice,federatedSingleFactor"]
BUILT_IN_STRENGTHS: dict[str, dict[str, Any]] = {
    STRENGTH_MFA: {"displayName": "Multifactor authentication", "requirementsSatisfied": "mfa",
                   "description": "Combinations of methods that satisfy strong authentication, such as a password + "
                                  "SMS", "allowedCombinations": _MFA},
    STRENGTH_PASSWORDLESS: {"displayName": "Passwordless MFA", "requirementsSatisfied": "mfa",
                            "description": "Passwordless methods that satisfy strong authentication, such as "
                                           "Passwordless sign-in with the Microsoft Authenticator",
                            "allowedCombinations": _PASSWORDLESS},
    STRENGTH_PHISHING_RESISTANT: {"displayName": "Phishing-resistant MFA", "requirementsSatisfied": "mfa",
                                  "description": "Phishing-resistant, Passwordless methods for the strongest "
                                                 "authentication, such as a FIDO2 security key",
                                  "allowedCombinations": _PHISHING_RESISTANT},
}


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _list(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or () if v is not None)


@dataclass(frozen=True)
class AuthStrength:
    id: str
    display_name: str
    policy_type: str  # builtIn | custom
    allowed_combinations: tuple[str, ...]  # "password,microsoftAuthenticatorPush", "fido2", ...

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "displayName": self.display_name, "policyType": self.policy_type,
                "allowedCombinations": list(self.allowed_combinations)}


@dataclass(frozen=True)
class ConditionalAccessPolicy:
    id: str
    display_name: str
    state: str  # enabled | disabled | enabledForReportingButNotEnforced
    users: Mapping[str, Any]  # conditions.users as Graph sends it
    operator: str
    built_in_controls: tuple[str, ...]
    custom_controls: tuple[str, ...]
    terms_of_use: tuple[str, ...]
    strength: AuthStrength | None
    strength_id: str | None
    conditions: Mapping[str, Any] = field(default_factory=dict)  # the rest of conditions (listed, not evaluated)
    modified: datetime | None = None


@dataclass(frozen=True)
class DirectoryRole:
    id: str
    template_id: str
    display_name: str
    member_ids: tuple[str, ...]  # users (and service principals, groups) holding the role


@dataclass(frozen=True)
class SignIn:
    """One sign-in and the conditional access results it recorded: (policy id, name, result) each."""

    id: str
    user_id: str
    created: datetime | None
    policies: tuple[tuple[str, str, str], ...]


def _sign_in(doc: Mapping[str, Any]) -> SignIn:
    return SignIn(id=str(doc.get("id")), user_id=str(doc.get("userId") or "").lower(),
                  created=_when(doc.get("createdDateTime")),
                  policies=tuple((str(p.get("id") or "").lower(), p.get("displayName") or "", p.get("result") or "")
                                 for p in doc.get("appliedConditionalAccessPolicies") or () if isinstance(p, dict)))


def _strength(doc: Mapping[str, Any] | None) -> AuthStrength | None:
    if not doc or not doc.get("id"):
        return None
    if "allowedCombinations" not in doc:
        return None  # a bare reference: resolved against the strengths list
    return AuthStrength(id=str(doc["id"]).lower(), display_name=doc.get("displayName") or str(doc["id"]),
                        policy_type=doc.get("policyType") or "", allowed_combinations=_list(
                            doc.get("allowedCombinations")))


def _policy(doc: Mapping[str, Any]) -> ConditionalAccessPolicy:
    conditions = dict(doc.get("conditions") or {})
    users = conditions.pop("users", None) or {}
    grant = doc.get("grantControls") or {}
    ref = grant.get("authenticationStrength") or None
    return ConditionalAccessPolicy(
        id=str(doc.get("id")), display_name=doc.get("displayName") or str(doc.get("id")),
        state=doc.get("state") or "", users=users, operator=(grant.get("operator") or "OR").upper(),
        built_in_controls=_list(grant.get("builtInControls")),
        custom_controls=_list(grant.get("customAuthenticationFactors")), terms_of_use=_list(grant.get("termsOfUse")),
        strength=_strength(ref), strength_id=str(ref["id"]).lower() if ref and ref.get("id") else None,
        conditions={k: v for k, v in conditions.items() if v not in (None, [], {})},
        modified=_when(doc.get("modifiedDateTime")),
    )


class PolicyReadsMixin:
    """Conditional access and the policies beside it; every method pages through ``_pages``."""

    def conditional_access_policies(self) -> Iterator[ConditionalAccessPolicy]:
        return self._pages(  # type: ignore[attr-defined]
            "read conditional access policies",
            lambda c: c.identity.conditional_access.policies.to_get_request_information(), _policy)

    def authentication_strengths(self) -> Iterator[AuthStrength]:
        return self._pages(  # type: ignore[attr-defined]
            "read authentication strength policies",
            lambda c: c.policies.authentication_strength_policies.to_get_request_information(),
            lambda d: _strength(d) or AuthStrength(str(d.get("id")), str(d.get("id")), "", ()))

    def security_defaults_enabled(self) -> bool:
        doc = self._get(  # type: ignore[attr-defined]
            "read the security defaults policy",
            lambda c: c.policies.identity_security_defaults_enforcement_policy.to_get_request_information())
        return bool(doc.get("isEnabled"))

    def sign_ins(self, *, filter: Any = None, top: int | None = None) -> Iterator[SignIn]:  # noqa: A002
        """Sign-in logs (``auditLogs/signIns``, Entra ID P1), newest first, with their conditional access results."""
        from msgraph.generated.audit_logs.sign_ins.sign_ins_request_builder import SignInsRequestBuilder

        from .query import _filter_text

        query = SignInsRequestBuilder.SignInsRequestBuilderGetQueryParameters(filter=_filter_text(filter), top=top)
        config = self._config(query)  # type: ignore[attr-defined]
        return self._pages(  # type: ignore[attr-defined]
            "read the sign-in logs", lambda c: c.audit_logs.sign_ins.to_get_request_information(config), _sign_in)

    def per_user_mfa_state(self, user_id: str) -> str:
        """Legacy per-user MFA (beta ``/users/{id}/authentication/requirements``): disabled, enabled or enforced."""
        from urllib.parse import quote

        url = f"{self.settings.beta}/users/{quote(user_id, safe='')}/authentication/requirements"  # type: ignore[attr-defined]
        doc = self._get_json(f"read the per-user MFA state of {user_id}", url)  # type: ignore[attr-defined]
        return str(doc.get("perUserMfaState") or "disabled")

    def per_user_mfa_states(self, user_ids: Iterable[str]) -> dict[str, str | None]:
        """Legacy per-user MFA of many users: user -> disabled, enabled, enforced, or None where Graph answered
        that item with an error (a user deleted since, say). The reads go through the connector's paging core
        (``pages_together`` on beta): 20 to a ``$batch`` post, ``batch_concurrency`` posts in flight, a throttled
        item asked again in the next round after its Retry-After."""
        from urllib.parse import quote

        from .together import Listing

        ids = list(dict.fromkeys(user_ids))
        out: dict[str, str | None] = dict.fromkeys(ids)
        reads = [Listing(uid, f"/users/{quote(uid, safe='')}/authentication/requirements", dict,
                         f"read the per-user MFA state of {uid}", single=True) for uid in ids]
        for page in self.pages_together(reads, beta=True):  # type: ignore[attr-defined]
            if page.error is None and page.items:
                out[page.key] = str(page.items[0].get("perUserMfaState") or "disabled")
        return out

    def directory_roles(self) -> list[DirectoryRole]:
        """Activated directory roles with their members (one listing, then one read per role)."""
        out = []
        roles = list(self._pages(  # type: ignore[attr-defined]
            "read directory roles", lambda c: c.directory_roles.to_get_request_information(), dict))
        for role in roles:
            rid = str(role.get("id"))
            members = tuple(str(m.get("id")).lower() for m in self._pages(  # type: ignore[attr-defined]
                f"read members of directory role {role.get('displayName') or rid}",
                lambda c, rid=rid: c.directory_roles.by_directory_role_id(rid).members.to_get_request_information(),
                dict) if m.get("id"))
            out.append(DirectoryRole(id=rid.lower(), template_id=str(role.get("roleTemplateId") or "").lower(),
                                     display_name=role.get("displayName") or rid, member_ids=members))
        return out
