"""Reads of the conditional access side of an MFA snapshot: its policies, their users, the outcome counts."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from ..models import MfaPolicy, MfaSnapshot, MfaUserRow
from .choices import POLICY_OUTCOME_COLOURS, PolicyOutcome

POLICY_USER_STATUSES = {"able": "Able to answer", "interrupted": "Will be interrupted", "unknown": "Not evaluated",
                        "excluded": "Excluded", "other": "Not an MFA demand"}


def snapshot_policies(snapshot: MfaSnapshot) -> QuerySet[MfaPolicy]:
    return MfaPolicy.objects.filter(snapshot=snapshot)


def policy(pk: int) -> MfaPolicy | None:
    return MfaPolicy.objects.select_related("snapshot").filter(pk=pk).first()


def policy_users(p: MfaPolicy, *, status: str = "") -> QuerySet[MfaUserRow]:
    """The snapshot's users a policy took in (or excluded), optionally one status of them."""
    rows = MfaUserRow.objects.filter(snapshot_id=p.snapshot_id).defer("evidence")
    if status in POLICY_USER_STATUSES:
        return rows.filter(policy_key__contains=f",{p.policy_id}={status},")
    return rows.filter(policy_key__contains=f",{p.policy_id}=")


def hit_of(row: MfaUserRow, policy_id: str) -> dict[str, Any] | None:
    return next((h for h in row.policy_hits or () if h.get("policy_id") == policy_id), None)


def outcome_breakdown(snapshot: MfaSnapshot) -> list[dict[str, Any]]:
    total = sum(int(v) for v in (snapshot.outcome_counts or {}).values())
    out = []
    for o in PolicyOutcome:
        n = int((snapshot.outcome_counts or {}).get(o.value, 0))
        out.append({"value": o.value, "label": o.label, "count": n, "colour": POLICY_OUTCOME_COLOURS[o],
                    "pct": round(100.0 * n / total, 1) if total else 0.0})
    return out


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
