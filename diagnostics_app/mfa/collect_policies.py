"""The snapshot's policy reads: conditional access, strengths, security defaults, roles, and the memberships
of every group a policy names (nested groups through ``transitiveMembers``). No ORM; the evaluation itself is
policies.py.

Calls: one page of policies, one of strengths, one security-defaults read, one roles listing plus one read per
activated role, and one transitive-members read per policy group the group phase did not already read; then,
only when a policy is report-only or disabled, the sign-in logs of the audit window (bounded) for its
report-only results.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from portal.connectors.graph import Forbidden, GraphError, LicenceRequired, NotFound, odata_ge

from . import policies as mp
from .choices import PolicyOutcome as O


@dataclass
class PolicyRead:
    read: bool = False
    security_defaults: bool | None = None
    message: str = ""
    policies: list[mp.Policy] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)  # per policy: what the page shows
    names: dict[str, str] = field(default_factory=dict)  # group / role / user id -> display name
    roles: dict[str, set[str]] = field(default_factory=dict)  # user id -> role template ids
    problems: list[str] = field(default_factory=list)
    evidence: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # user -> policy -> (result, when)
    per_user: dict[str, str] = field(default_factory=dict)  # user -> legacy per-user MFA state
    sign_ins_read: int = 0


def _note(read: PolicyRead, say: Any, text: str) -> None:
    read.problems.append(text)
    say.warning(text)


def read_policies(graph: Any, result: Any, say: Any) -> PolicyRead:
    """Fill ``result.policy_read`` and add the policy groups' members to ``result.users[...].groups``."""
    read = PolicyRead()
    try:
        read.security_defaults = graph.security_defaults_enabled()
    except GraphError as exc:
        _note(read, say, f"Security defaults could not be read ({exc}); they are left out of the evaluation.")
    try:
        raw = list(graph.conditional_access_policies())
    except LicenceRequired:
        read.message = ("Conditional access needs Microsoft Entra ID P1: this tenant has no such licence, so there "
                        "are no policies to read" + (" (security defaults are on)." if read.security_defaults
                                                     else "."))
        say.warning(read.message)
        return read
    except Forbidden as exc:
        read.message = f"The portal's app may not read conditional access policies (Policy.Read.All): {exc}"
        say.warning(read.message)
        return read
    read.read = True
    strengths: dict[str, Any] = {}
    try:
        strengths = {s.id.lower(): s for s in graph.authentication_strengths()}
    except GraphError as exc:
        _note(read, say, f"Authentication strengths could not be read ({exc}); policies carry their own copy.")
    try:
        for role in graph.directory_roles():
            read.names[role.template_id] = role.display_name
            for member in role.member_ids:
                read.roles.setdefault(member, set()).add(role.template_id)
    except GraphError as exc:
        _note(read, say, f"Directory roles could not be read ({exc}): role-targeted policies are shown as "
                         "covering nobody by role.")
    read.names.update(result.groups)
    wanted_groups: set[str] = set()
    for p in raw:
        strength = p.strength or (strengths.get(p.strength_id) if p.strength_id else None)
        demand = mp.demand_from(
            built_in_controls=p.built_in_controls, operator=p.operator, strength_id=p.strength_id,
            strength_name=strength.display_name if strength else None,
            combinations=strength.allowed_combinations if strength else None,
            custom_controls=p.custom_controls, terms_of_use=p.terms_of_use)
        users = {k: v for k, v in dict(p.users).items()}
        read.policies.append(mp.Policy(p.id.lower(), p.display_name, p.state, users, demand))
        for key in ("includeGroups", "excludeGroups"):
            wanted_groups |= {str(g).lower() for g in users.get(key) or ()}
        read.details.append({"policy_id": p.id.lower(), "display_name": p.display_name, "state": p.state,
                             "users": users, "demand": demand.as_json(), "conditions": dict(p.conditions),
                             "controls": {"operator": p.operator, "builtInControls": list(p.built_in_controls),
                                          "customAuthenticationFactors": list(p.custom_controls),
                                          "termsOfUse": list(p.terms_of_use)},
                             "modified": p.modified.isoformat() if p.modified else None, "problems": []})
        if p.state not in mp.STATE_LABELS:
            _note(read, say, f"Policy {p.display_name} has a state this portal does not know ({p.state!r}): "
                             "shown, never counted as enforcing.")
    # members of policy groups the group phase did not read (max_groups, or any group: nested ones count)
    for gid in sorted(wanted_groups - set(result.groups)):
        try:
            group = graph.get_group(gid, select=("id", "displayName"))
            read.names[gid] = group.display_name or gid
            for member in graph.iter_group_transitive_members(gid, select=("id",)):
                rec = result.users.get((member.id or "").lower())
                if rec is not None and gid not in rec.groups:
                    rec.groups.append(gid)
        except GraphError as exc:
            gone = isinstance(exc, NotFound)
            read.names[gid] = f"(deleted group {gid})" if gone else f"(unreadable group {gid})"
            text = (f"Names group {gid}, which no longer exists: it matches nobody." if gone else
                    f"Names group {gid}, whose members could not be read ({exc}): it matches nobody here.")
            for detail in read.details:
                if gid in {str(g).lower() for k in ("includeGroups", "excludeGroups")
                           for g in detail["users"].get(k) or ()}:
                    detail["problems"].append(text)
    # a user known only from a report row was deleted between the reads: not in the directory
    known = {uid for uid, rec in result.users.items() if not rec.facts.deleted}
    for detail in read.details:
        for key in ("includeUsers", "excludeUsers"):
            for uid in detail["users"].get(key) or ():
                low = str(uid).lower()
                if low in ("all", "none", "guestsorexternalusers"):
                    continue
                if low in known:
                    read.names[low] = result.users[low].facts.upn or low
                else:
                    detail["problems"].append(f"Names user {uid}, who is not in the directory: ignored.")
        for key in ("includeRoles", "excludeRoles"):
            for tid in detail["users"].get(key) or ():
                if str(tid).lower() not in read.names:
                    read.names[str(tid).lower()] = f"role {tid} (no one holds it, or it could not be read)"
        detail["problems"].extend(detail["demand"]["problems"])
    say.info(f"Conditional access: {len(read.policies)} policies "
             f"({sum(1 for p in read.policies if p.enforcing)} enabled), security defaults "
             f"{'on' if read.security_defaults else 'off' if read.security_defaults is False else 'unknown'}.")
    if read.security_defaults and any(p.enforcing for p in read.policies):
        _note(read, say, "Security defaults are on while enabled conditional access policies exist: Entra ID does "
                         "not allow both; check the tenant.")
    return read


def read_sign_in_evidence(graph: Any, result: Any, read: PolicyRead, *, since: Any, limit: int, say: Any) -> None:
    """The latest report-only result per user and non-enforcing policy, from the sign-in logs since ``since``
    (newest first, at most ``limit`` sign-ins: the evidence is a sample, said so on the page)."""
    watched = {p.id for p in read.policies if not p.enforcing}
    if not watched or limit <= 0:
        return
    try:
        for sign_in in graph.sign_ins(filter=odata_ge("createdDateTime", since), top=999):
            read.sign_ins_read += 1
            mine = read.evidence.setdefault(sign_in.user_id, {})
            for pid, _name, outcome in sign_in.policies:
                if pid in watched and pid not in mine:
                    mine[pid] = (outcome, sign_in.created.isoformat() if sign_in.created else "")
            if read.sign_ins_read >= limit:
                say.warning(f"Sign-in evidence: the newest {limit:,} sign-ins were read; older ones were not.")
                break
    except GraphError as exc:
        _note(read, say, f"The sign-in logs could not be read ({exc}): readiness has no report-only evidence.")
        return
    say.info(f"Sign-in evidence: {read.sign_ins_read:,} sign-ins read, "
             f"{sum(1 for v in read.evidence.values() if v):,} users with a report-only result.")


def evaluate_users(result: Any, read: PolicyRead, only: set[str] | None = None) -> None:
    """Each user's policy outcome (``rec.policy``), once the classification gave the usable methods."""
    evaluate = mp.Evaluator(read.policies, security_defaults=bool(read.security_defaults), names=read.names)
    for uid, rec in result.users.items():
        if only is not None and uid not in only:
            continue
        verdict = rec.verdict
        can = verdict.can_satisfy_mfa if verdict is not None else None
        ctx = mp.UserContext(id=uid, upn=rec.facts.upn or "", user_type=rec.facts.user_type or "",
                             groups=frozenset(rec.groups), roles=frozenset(read.roles.get(uid, ())),
                             usable=tuple(verdict.usable) if verdict is not None and can else (),
                             can_satisfy_mfa=can, per_user_mfa=read.per_user.get(uid, ""))
        rec.policy = evaluate(ctx)
        seen = read.evidence.get(uid)
        if seen:
            hits = tuple(replace(h, evidence=seen[h.policy_id][0], evidence_time=seen[h.policy_id][1])
                         if h.policy_id in seen else h for h in rec.policy.hits)
            rec.policy = replace(rec.policy, hits=hits)


def read_per_user_mfa(graph: Any, result: Any, read: PolicyRead, *, limit: int, say: Any) -> None:
    """Legacy per-user MFA matters where no enabled policy asks for MFA: read it (beta, in $batch) for
    at most ``limit`` of those users, enabled members first, and evaluate them again with it."""
    candidates = [uid for uid, rec in result.users.items()
                  if rec.policy is not None and rec.policy.outcome == O.NOT_COVERED and not rec.facts.deleted
                  and rec.facts.enabled is not False]
    candidates.sort(key=lambda uid: ((result.users[uid].facts.user_type or "").lower() == "guest", uid))
    chosen = candidates[:max(0, limit)]
    if len(candidates) > len(chosen):
        say.warning(f"Per-user MFA state read for {len(chosen):,} of the {len(candidates):,} users no enabled "
                    "policy covers; the others are shown without it.")
    # 20 users to a $batch call: the read that was one call per user is now 1/20 of it.
    try:
        states = graph.per_user_mfa_states(chosen) if chosen else {}
    except GraphError as exc:
        _note(read, say, f"Per-user MFA state could not be read ({exc}); the rest is shown without it.")
        states = {}
    read.per_user.update({uid: state for uid, state in states.items() if state is not None})
    on = sum(1 for v in read.per_user.values() if v in ("enabled", "enforced"))
    say.info(f"Per-user MFA (legacy): read for {len(read.per_user):,} user(s), on for {on:,}.")
    if on:
        evaluate_users(result, read, only={u for u, v in read.per_user.items() if v in ("enabled", "enforced")})
