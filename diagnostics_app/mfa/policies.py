"""What conditional access demands of one user, and whether the user's usable methods meet it.

Pure functions: no Graph, no ORM. The snapshot (collect.py) reads the policies, strengths, roles and group
memberships; this module decides, per user and policy:

- **scope**: included by "All", by name, by a group (transitive: nested groups count), by a directory role
  (``includeRoles`` names role *template* ids), or as a guest; an exclusion of any kind wins over every
  inclusion (Microsoft: "exclusions take precedence");
- **demand**: the ``mfa`` grant control, or an authentication strength (built-in MFA, passwordless MFA,
  phishing-resistant MFA, or custom) with its ``allowedCombinations``; ``block`` and device/app controls are
  listed but are not an MFA demand; an ``OR`` with a device or app control means MFA can be avoided by it
  (not evaluated: devices are listed, not evaluated);
- **outcome**: only *enabled* policies enforce. Report-only (``enabledForReportingButNotEnforced``) and
  disabled ones are evaluated the same way and shown, never counted as enforcing. Security defaults (which
  exclude conditional access) ask every user for the Microsoft Authenticator app.

Method families (choices.MethodFamily) map to Graph's ``authenticationMethodModes``; a strength is met when
one of its combinations is made only of modes the user holds (everyone holds ``password``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .choices import MethodFamily as F
from .choices import PolicyOutcome as O
from .classify import MFA_FAMILIES, families_label

ENABLED = "enabled"
REPORT_ONLY = "enabledForReportingButNotEnforced"
DISABLED = "disabled"
STATE_LABELS = {ENABLED: "Enabled", REPORT_ONLY: "Report-only", DISABLED: "Disabled"}

# what each family lets a user present, in authenticationMethodModes terms. The Authenticator's passwordless
# sign-in is "deviceBasedPush"; macOS platform credentials are offered by strengths under "Windows Hello for
# Business / Platform Credential", so they count as windowsHelloForBusiness.
FAMILY_MODES: dict[str, frozenset[str]] = {
    F.AUTHENTICATOR: frozenset({"microsoftAuthenticatorPush"}),
    F.AUTHENTICATOR_PASSWORDLESS: frozenset({"deviceBasedPush", "microsoftAuthenticatorPush"}),
    F.SOFTWARE_OATH: frozenset({"softwareOath"}),
    F.HARDWARE_OATH: frozenset({"hardwareOath"}),
    F.FIDO2: frozenset({"fido2"}),
    F.WINDOWS_HELLO: frozenset({"windowsHelloForBusiness"}),
    F.PLATFORM: frozenset({"windowsHelloForBusiness"}),
    F.PHONE: frozenset({"sms", "voice"}),
    F.TAP: frozenset({"temporaryAccessPassOneTime", "temporaryAccessPassMultiUse"}),
    F.EMAIL: frozenset({"email"}),
}
MODE_LABELS = {
    "password": "password", "microsoftAuthenticatorPush": "Authenticator push", "deviceBasedPush":
    "Authenticator passwordless", "softwareOath": "software OATH code", "hardwareOath": "hardware OATH token",
    "fido2": "FIDO2 / passkey", "windowsHelloForBusiness": "Windows Hello / platform credential", "sms": "SMS",
    "voice": "voice call", "temporaryAccessPassOneTime": "one-time TAP", "temporaryAccessPassMultiUse":
    "multi-use TAP", "email": "email", "x509CertificateMultiFactor": "certificate (multifactor)",
    "x509CertificateSingleFactor": "certificate (single factor)", "federatedMultiFactor": "federated MFA",
    "federatedSingleFactor": "federated single factor",
}
KNOWN_CONTROLS = frozenset({"block", "mfa", "compliantdevice", "domainjoineddevice", "approvedapplication",
                            "compliantapplication", "passwordchange"})
DEVICE_OR_APP = frozenset({"compliantdevice", "domainjoineddevice", "approvedapplication", "compliantapplication"})
GUEST_TYPES = frozenset({"internalguest", "b2bcollaborationguest", "b2bcollaborationmember", "b2bdirectconnectuser",
                         "otherexternaluser", "serviceprovider"})
# Security defaults: "users must register for MFA using the Microsoft Authenticator app (notifications); codes
# from it or from an OATH app also answer". SMS alone makes a user register the app.
SECURITY_DEFAULTS_FAMILIES = frozenset({F.AUTHENTICATOR, F.AUTHENTICATOR_PASSWORDLESS, F.SOFTWARE_OATH, F.FIDO2,
                                        F.WINDOWS_HELLO, F.PLATFORM, F.HARDWARE_OATH})


def combination_label(combination: str) -> str:
    return " + ".join(MODE_LABELS.get(p, p) for p in combination.split(","))


# --------------------------------------------------------------------------------------------
# inputs


@dataclass(frozen=True)
class Demand:
    kind: str  # mfa | strength | block | none
    label: str
    combinations: tuple[str, ...] = ()  # a strength's allowedCombinations
    strength_id: str | None = None
    alternatives: tuple[str, ...] = ()  # device/app controls that, with OR, let a user through without MFA
    problems: tuple[str, ...] = ()

    @property
    def asks_mfa(self) -> bool:
        return self.kind in ("mfa", "strength")

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "combinations": list(self.combinations),
                "strength_id": self.strength_id, "alternatives": list(self.alternatives),
                "problems": list(self.problems)}


@dataclass(frozen=True)
class Policy:
    """A conditional access policy as the evaluation needs it (from the connector's ConditionalAccessPolicy)."""

    id: str
    name: str
    state: str
    users: Mapping[str, Any]
    demand: Demand

    @property
    def enforcing(self) -> bool:
        return self.state == ENABLED

    @cached_property
    def targets(self) -> Targets:
        return Targets.of(self.users)


@dataclass(frozen=True)
class UserContext:
    id: str
    upn: str = ""
    user_type: str = ""
    groups: frozenset[str] = frozenset()  # transitive group ids
    roles: frozenset[str] = frozenset()  # role template ids
    usable: tuple[str, ...] = ()  # usable method families (classify.Verdict.usable)
    can_satisfy_mfa: bool | None = None  # None: not evaluated
    per_user_mfa: str = ""  # legacy per-user MFA: disabled | enabled | enforced ("" when not read)

    @property
    def guest_type(self) -> str | None:
        if (self.user_type or "").lower() != "guest":
            return None
        return "b2bCollaborationGuest" if "#ext#" in (self.upn or "").lower() else "internalGuest"


def demand_from(*, built_in_controls: Iterable[str], operator: str, strength_id: str | None,
                strength_name: str | None, combinations: Sequence[str] | None,
                custom_controls: Iterable[str] = (), terms_of_use: Iterable[str] = ()) -> Demand:
    """The MFA demand of a policy's grant controls, with what could not be understood kept as a problem."""
    controls = [c for c in built_in_controls]
    lower = {c.lower() for c in controls}
    problems = [f"Unknown grant control '{c}': listed, not evaluated." for c in controls
                if c.lower() not in KNOWN_CONTROLS]
    if list(custom_controls):
        problems.append("Custom controls (third-party MFA) are listed, not evaluated.")
    if list(terms_of_use):
        problems.append("Terms of use are required as well (not an MFA demand).")
    alternatives = tuple(sorted(c for c in controls if c.lower() in DEVICE_OR_APP)) if operator.upper() == "OR" \
        else ()
    if "block" in lower:
        return Demand("block", "Block access", problems=tuple(problems))
    if strength_id:
        if combinations is None:
            problems.append(f"Authentication strength {strength_id} could not be read (deleted, or no permission): "
                            "its users are shown as not evaluated.")
        return Demand("strength", strength_name or strength_id, tuple(combinations or ()), strength_id,
                      alternatives, tuple(problems))
    if "mfa" in lower:
        return Demand("mfa", "Require multifactor authentication", alternatives=alternatives,
                      problems=tuple(problems))
    label = ", ".join(controls) or "no grant control"
    return Demand("none", f"Not an MFA demand ({label})", problems=tuple(problems))


MFA_GRANT = demand_from(built_in_controls=("mfa",), operator="OR", strength_id=None, strength_name=None,
                        combinations=None)


# --------------------------------------------------------------------------------------------
# scope


def _ids(users: Mapping[str, Any], key: str) -> frozenset[str]:
    return frozenset(str(v).lower() for v in users.get(key) or ())


@dataclass(frozen=True)
class Targets:
    """A policy's users condition as sets of lower-case ids: made once per policy, not once per user."""

    include_users: frozenset[str]
    exclude_users: frozenset[str]
    include_groups: frozenset[str]
    exclude_groups: frozenset[str]
    include_roles: frozenset[str]
    exclude_roles: frozenset[str]
    include_guests: Any
    exclude_guests: Any

    @classmethod
    def of(cls, users: Mapping[str, Any]) -> Targets:
        return cls(_ids(users, "includeUsers"), _ids(users, "excludeUsers"), _ids(users, "includeGroups"),
                   _ids(users, "excludeGroups"), _ids(users, "includeRoles"), _ids(users, "excludeRoles"),
                   users.get("includeGuestsOrExternalUsers"), users.get("excludeGuestsOrExternalUsers"))


def _guest_match(block: Any, guest_type: str | None) -> bool:
    if not guest_type or not isinstance(block, Mapping):
        return False
    kinds = {k.strip().lower() for k in str(block.get("guestOrExternalUserTypes") or "").split(",") if k.strip()}
    return guest_type.lower() in kinds or not kinds


def scope(users: Mapping[str, Any] | Targets, ctx: UserContext, names: Mapping[str, str] | None = None
          ) -> tuple[bool, str]:
    """Whether the policy's users condition (or its :class:`Targets`) takes in ``ctx``, and why (in words)."""
    names = names or {}
    t = users if isinstance(users, Targets) else Targets.of(users)
    uid = ctx.id.lower()
    guest = ctx.guest_type

    def named(ids: Iterable[str]) -> str:
        return ", ".join(sorted(names.get(i, i) for i in ids))

    # exclusions first: they win over any inclusion
    if uid in t.exclude_users:
        return False, "excluded by name"
    if guest and "guestsorexternalusers" in t.exclude_users:
        return False, "excluded as a guest"
    hit = t.exclude_groups & ctx.groups
    if hit:
        return False, f"excluded through group {named(hit)}"
    hit = t.exclude_roles & ctx.roles
    if hit:
        return False, f"excluded through role {named(hit)}"
    if _guest_match(t.exclude_guests, guest):
        return False, "excluded as a guest or external user"
    if "all" in t.include_users:
        return True, "all users"
    if uid in t.include_users:
        return True, "named in the policy"
    if guest and "guestsorexternalusers" in t.include_users:
        return True, "guest or external user"
    hit = t.include_groups & ctx.groups
    if hit:
        return True, f"member of {named(hit)}"
    hit = t.include_roles & ctx.roles
    if hit:
        return True, f"holds role {named(hit)}"
    if _guest_match(t.include_guests, guest):
        return True, "guest or external user"
    return False, ""


# --------------------------------------------------------------------------------------------
# demand against methods


def user_modes(usable: Iterable[str]) -> set[str]:
    modes = {"password"}
    for family in usable:
        modes |= FAMILY_MODES.get(family, frozenset())
    return modes


def meets(demand: Demand, ctx: UserContext) -> tuple[bool | None, str]:
    """Whether the user's usable methods answer ``demand`` (None: cannot tell), and the reason in words."""
    if ctx.can_satisfy_mfa is None:
        return None, "methods not evaluated"
    if demand.kind == "mfa":
        usable = [f for f in ctx.usable if f in MFA_FAMILIES or f == F.TAP]
        if ctx.can_satisfy_mfa and usable:
            return True, "answers with " + families_label(usable)
        return False, "no usable MFA method"
    if demand.kind == "strength":
        if not demand.combinations:
            return None, "strength unreadable"
        if not ctx.can_satisfy_mfa:
            return False, f"no usable method for {demand.label}"
        modes = user_modes(ctx.usable)
        good = [c for c in demand.combinations if set(c.split(",")) <= modes]
        if good:
            return True, "answers with " + combination_label(good[0])
        accepted = sorted({combination_label(c) for c in demand.combinations})[:6]
        return False, (f"{demand.label} accepts {', '.join(accepted)}; the user has "
                       + (families_label(ctx.usable) or "no usable method"))
    return None, demand.label


# --------------------------------------------------------------------------------------------
# one user against every policy


@dataclass(frozen=True)
class Hit:
    policy_id: str
    name: str
    state: str
    in_scope: bool
    why: str  # why in or out of scope
    demand: str
    satisfied: bool | None
    detail: str
    evidence: str = ""  # the latest sign-in's result for this policy (reportOnlySuccess, reportOnlyInterrupted...)
    evidence_time: str = ""

    @property
    def status(self) -> str:
        """For the per-policy key: able | interrupted | unknown | excluded | other."""
        if not self.in_scope:
            return "excluded"
        if self.satisfied is True:
            return "able"
        if self.satisfied is False:
            return "interrupted"
        return "unknown" if self.detail in ("methods not evaluated", "strength unreadable") else "other"

    def as_json(self) -> dict[str, Any]:
        return {"policy_id": self.policy_id, "name": self.name, "state": self.state, "in_scope": self.in_scope,
                "why": self.why, "demand": self.demand, "satisfied": self.satisfied, "detail": self.detail,
                "status": self.status, "evidence": self.evidence, "evidence_time": self.evidence_time}


@dataclass(frozen=True)
class Evaluation:
    outcome: str  # choices.PolicyOutcome
    reasons: tuple[str, ...]
    hits: tuple[Hit, ...] = field(default_factory=tuple)

    def key(self) -> str:
        """",policy=status," for every policy that took the user in or left them out by exclusion."""
        parts = [f"{h.policy_id}={h.status}" for h in self.hits]
        return ("," + ",".join(parts) + ",") if parts else ""


SECURITY_DEFAULTS = "security-defaults"
PER_USER_MFA = "per-user-mfa"


def evaluate(ctx: UserContext, policies: Sequence[Policy], *, security_defaults: bool = False,
             names: Mapping[str, str] | None = None) -> Evaluation:
    hits: list[Hit] = []
    for policy in policies:
        inside, why = scope(policy.targets, ctx, names)
        if not inside and not why:
            continue  # not targeted at all: not listed
        ok, detail = meets(policy.demand, ctx) if inside else (None, "")
        hits.append(Hit(policy.id, policy.name, policy.state, inside, why, policy.demand.label, ok, detail))
    reasons: list[str] = []
    if security_defaults:
        usable = set(ctx.usable) & SECURITY_DEFAULTS_FAMILIES
        ok = None if ctx.can_satisfy_mfa is None else bool(ctx.can_satisfy_mfa and usable)
        detail = ("methods not evaluated" if ok is None else "answers with " + families_label(usable)
                  if ok else "security defaults ask for the Microsoft Authenticator app; the user has "
                  + (families_label(ctx.usable) or "no usable method"))
        hits.insert(0, Hit(SECURITY_DEFAULTS, "Security defaults", ENABLED, True, "every user", "Require MFA "
                           "(Microsoft Authenticator)", ok, detail))
    # block and device-only policies are listed but decide nothing about MFA
    if ctx.per_user_mfa in ("enabled", "enforced"):
        # legacy per-user MFA asks for MFA at every sign-in, whatever conditional access says
        ok, detail = meets(MFA_GRANT, ctx)
        hits.insert(0, Hit(PER_USER_MFA, f"Per-user MFA (legacy, {ctx.per_user_mfa})", ENABLED, True,
                           "per-user MFA state", "Require MFA", ok, detail))
    enforcing = [h for h in hits if h.state == ENABLED and h.status in ("able", "interrupted", "unknown")]
    if ctx.can_satisfy_mfa is None and any(h.in_scope and h.state == ENABLED for h in hits):
        outcome = O.NOT_EVALUATED
        reasons.append("Covered by an enabled policy, but the user's methods were not evaluated.")
    elif any(h.satisfied is False for h in enforcing):
        outcome = O.INTERRUPTED
        for h in enforcing:
            if h.satisfied is False:
                reasons.append(f"{h.name}: {h.detail}.")
    elif any(h.satisfied is True for h in enforcing):
        outcome = O.ABLE
        names_ = ", ".join(h.name for h in enforcing if h.satisfied)
        reasons.append(f"Covered by {names_}, and able to answer.")
    elif any(h.status == "unknown" for h in enforcing):
        outcome = O.NOT_EVALUATED
        reasons.append("Covered by an enabled policy whose demand could not be evaluated.")
    else:
        outcome = O.NOT_COVERED
        reasons.append("No enabled policy asks this user for MFA.")
    for h in hits:
        if h.in_scope and h.state == REPORT_ONLY and h.satisfied is False:
            reasons.append(f"Report-only {h.name} would interrupt: {h.detail} (not enforced).")
    return Evaluation(outcome, tuple(reasons), tuple(hits))


class Evaluator:
    """:func:`evaluate` for every user of a snapshot. Users alike in all the policies look at (named in one or
    not, guest kind, the groups and roles the policies name, usable methods, per-user MFA) get the same
    evaluation, so it is worked out once per such context and shared: a 100,000-user tenant has a few hundred
    of them, and evaluating each user against each policy was as costly as classifying them."""

    def __init__(self, policies: Sequence[Policy], *, security_defaults: bool = False,
                 names: Mapping[str, str] | None = None) -> None:
        self.policies = tuple(policies)
        self.security_defaults = security_defaults
        self.names = names
        targets = [p.targets for p in self.policies]
        self._users = frozenset().union(*(t.include_users | t.exclude_users for t in targets))
        self._groups = frozenset().union(*(t.include_groups | t.exclude_groups for t in targets))
        self._roles = frozenset().union(*(t.include_roles | t.exclude_roles for t in targets))
        self._done: dict[tuple[Any, ...], Evaluation] = {}

    def __call__(self, ctx: UserContext) -> Evaluation:
        uid = ctx.id.lower()
        key = (uid if uid in self._users else "", ctx.guest_type, self._groups & ctx.groups, self._roles & ctx.roles,
               ctx.usable, ctx.can_satisfy_mfa, ctx.per_user_mfa)
        found = self._done.get(key)
        if found is None:
            found = self._done[key] = evaluate(ctx, self.policies, security_defaults=self.security_defaults,
                                               names=self.names)
        return found


# --------------------------------------------------------------------------------------------
# sign-in evidence against the prediction

EVIDENCE_LABELS = {
    "reportOnlySuccess": "answered MFA (report-only: success)",
    "reportOnlyInterrupted": "would have been prompted (report-only: user action required)",
    "reportOnlyFailure": "would have been refused (report-only: failure)",
    "reportOnlyNotApplied": "not applied (report-only)",
    "success": "satisfied", "failure": "refused", "notApplied": "not applied", "notEnabled": "not enabled",
}


def agreement(predicted: str, evidence: str) -> str:
    """How a sign-in's report-only result bears on the prediction (status able / interrupted).

    "Prompted" fits both: an able user is prompted and answers; a user without a method is sent to register.
    A success contradicts "will be interrupted"; a failure contradicts "able".
    """
    if not evidence:
        return "no evidence"
    if evidence in ("reportOnlyNotApplied", "notApplied", "notEnabled"):
        return "not applied"
    if evidence == "reportOnlyInterrupted":
        return "agrees" if predicted == "interrupted" else "prompted (able to answer)"
    if evidence in ("reportOnlySuccess", "success"):
        return "agrees" if predicted == "able" else "disagrees"
    if evidence in ("reportOnlyFailure", "failure"):
        return "agrees" if predicted == "interrupted" else "disagrees"
    return "unknown result"
