"""Reads of the conditional access side of an MFA snapshot: its policies, their users, the outcome counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, QuerySet

from portal.connectors.graph.policies import BUILT_IN_STRENGTHS

from ..figures import cached_figure
from ..models import MfaPolicy, MfaSnapshot, MfaUserRow
from . import policies as mp
from . import selectors
from .choices import POLICY_OUTCOME_COLOURS, PolicyOutcome

POLICY_USER_STATUSES = {"able": "Able to answer", "interrupted": "Will be interrupted", "unknown": "Not evaluated",
                        "excluded": "Excluded", "other": "Not an MFA demand"}


def snapshot_policies(snapshot: MfaSnapshot) -> QuerySet[MfaPolicy]:
    return MfaPolicy.objects.filter(snapshot=snapshot)


def policy(pk: int) -> MfaPolicy | None:
    return MfaPolicy.objects.select_related("snapshot").filter(pk=pk).first()


def policy_users(p: MfaPolicy, *, status: str = "") -> QuerySet[MfaUserRow]:
    """The snapshot's enabled accounts a policy took in (or excluded), optionally one status of them: the
    accounts its counts count (disabled and deleted ones are left out, as in the report's figures)."""
    rows = MfaUserRow.objects.filter(selectors.TARGETED, snapshot_id=p.snapshot_id, deleted=False).defer("evidence")
    if status in POLICY_USER_STATUSES:
        return rows.filter(policy_key__contains=f",{p.policy_id}={status},")
    return rows.filter(policy_key__contains=f",{p.policy_id}=")


def hit_of(row: MfaUserRow, policy_id: str) -> dict[str, Any] | None:
    return next((h for h in row.policy_hits or () if h.get("policy_id") == policy_id), None)


def outcome_breakdown(snapshot: MfaSnapshot) -> list[dict[str, Any]]:
    """Enabled accounts by what today's enabled policies do to them: the same accounts as the registration
    report's "would be interrupted" figure (disabled ones left out: they do not sign in), so that the two
    "interrupted" figures differ only by what they ask. Counted once per snapshot."""
    def count() -> dict[str, int]:
        rows = selectors.scope_rows(snapshot, "").filter(selectors.TARGETED).exclude(policy_outcome="")
        return {r["policy_outcome"]: r["n"] for r in rows.order_by().values("policy_outcome").annotate(n=Count("id"))}

    counts = cached_figure(snapshot, "policy-outcomes", count)
    total = sum(counts.values())
    return [{"value": o.value, "label": o.label, "count": counts.get(o.value, 0), "colour": POLICY_OUTCOME_COLOURS[o],
             "pct": round(100.0 * counts.get(o.value, 0) / total, 1) if total else 0.0, "of": total}
            for o in PolicyOutcome]


def target_lines(p: MfaPolicy) -> list[tuple[str, str]]:
    """The policy's users condition in words: (include/exclude, what), names resolved where the snapshot knew them."""
    names = p.names or {}
    users = p.users or {}
    lines: list[tuple[str, str]] = []
    for side in ("include", "exclude"):
        word = "Includes" if side == "include" else "Excludes"
        for key, kind in (("Users", "user"), ("Groups", "group (members through nested groups count)"),
                          ("Roles", "role")):
            for value in users.get(f"{side}{key}") or ():
                text = str(value)
                if text in ("All", "None", "GuestsOrExternalUsers"):
                    lines.append((word, {"All": "all users", "None": "nobody",
                                         "GuestsOrExternalUsers": "guests and external users"}[text]))
                else:
                    lines.append((word, f"{kind} {names.get(text.lower(), text)}"))
        guests = users.get(f"{side}GuestsOrExternalUsers")
        if guests:
            lines.append((word, "guests or external users: " + str(guests.get("guestOrExternalUserTypes") or "all")))
    return lines


# --------------------------------------------------------------------------------------------
# readiness of one policy (existing or hypothetical), with report-only sign-in evidence


@dataclass
class PolicyReadiness:
    title: str
    demand: str
    state: str = ""
    targeted: int = 0
    ready: int = 0
    unknown: int = 0
    skipped_disabled: int = 0
    interrupted_total: int = 0
    interrupted: list[dict[str, Any]] = field(default_factory=list)
    evidence: dict[str, int] = field(default_factory=dict)  # agreement -> users
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    with_evidence: int = 0

    @property
    def interrupted_pct(self) -> float:
        return round(100.0 * self.interrupted_total / self.targeted, 1) if self.targeted else 0.0


def _context(row: dict[str, Any]) -> mp.UserContext:
    can = row["can_satisfy_mfa"]
    return mp.UserContext(id=row["user_id"], usable=tuple(row["usable"] or ()) if can else (), can_satisfy_mfa=can)


def policy_readiness(snapshot: MfaSnapshot, *, existing: MfaPolicy | None = None, group_id: str = "",
                     demand_key: str = "mfa", list_limit: int | None = 100, list_offset: int = 0,
                     disagreement_limit: int = 50) -> PolicyReadiness:
    """Who the policy would interrupt once enforced (disabled accounts left out), and what the sign-in logs'
    report-only results say about the same users."""
    rows = MfaUserRow.objects.filter(snapshot=snapshot, deleted=False)
    if existing is not None:
        rows = rows.filter(policy_key__contains=f",{existing.policy_id}=")
        result = PolicyReadiness(title=existing.display_name, demand=(existing.demand or {}).get("label", ""),
                                 state=existing.state_label)
        demand = None
    else:
        if group_id:
            rows = rows.filter(groups_key__contains=f",{group_id},")
        demand = _demand(demand_key)
        scope = snapshot.groups.get(group_id, group_id) if group_id else "the whole tenant"
        result = PolicyReadiness(title=f"Hypothetical policy on {scope}", demand=demand.label)
    fields = ("id", "upn", "display_name", "user_id", "department", "enabled", "can_satisfy_mfa", "usable",
              "policy_hits")
    for r in rows.values(*fields).order_by("upn", "id").iterator(chunk_size=2000):
        if r["enabled"] is False:
            result.skipped_disabled += 1
            continue
        evidence = ""
        if existing is not None:
            hit = next((h for h in r["policy_hits"] or () if h.get("policy_id") == existing.policy_id), {})
            status, detail, evidence = hit.get("status"), hit.get("detail", ""), hit.get("evidence", "")
            if status == "excluded":
                continue
        else:
            hit = {}
            ok, detail = mp.meets(demand, _context(r))
            status = "able" if ok else "interrupted" if ok is False else "unknown"
        result.targeted += 1
        if status == "able":
            result.ready += 1
        elif status == "interrupted":
            result.interrupted_total += 1
            shown = result.interrupted_total - 1 - list_offset
            if shown >= 0 and (list_limit is None or shown < list_limit):
                result.interrupted.append({**r, "why": detail, "evidence": mp.EVIDENCE_LABELS.get(evidence, evidence)})
        else:
            result.unknown += 1
        if status in ("able", "interrupted"):
            verdict = mp.agreement(status, evidence)
            result.evidence[verdict] = result.evidence.get(verdict, 0) + 1
            if evidence:
                result.with_evidence += 1
            if verdict == "disagrees" and len(result.disagreements) < disagreement_limit:
                result.disagreements.append({**r, "predicted": status, "evidence": mp.EVIDENCE_LABELS.get(
                    evidence, evidence), "evidence_time": hit.get("evidence_time", "")})
    return result


def _demand(key: str) -> mp.Demand:
    if key and key != "mfa":
        body = BUILT_IN_STRENGTHS.get(key)
        if body is not None:
            return mp.demand_from(built_in_controls=(), operator="OR", strength_id=key,
                                  strength_name=body["displayName"], combinations=body["allowedCombinations"])
    return mp.demand_from(built_in_controls=("mfa",), operator="OR", strength_id=None, strength_name=None,
                          combinations=None)
